"""The book builder renders executed notebooks and an index (the run itself is stubbed here;
tests/test_notebooks.py executes every notebook for real)."""
import shutil

from tools import build_book
from tools.run_notebook import ROOT, RunResult


def test_book_index_and_pages(tmp_path, monkeypatch):
    calls = []

    def fake_run(nb, out, **kw):
        calls.append((nb.name, kw["smoke"]))
        shutil.copy(nb, out)
        return RunResult(nb.name, kw["smoke"], True, 12.0, 800.0, True)

    monkeypatch.setattr(build_book, "run_notebook", fake_run)
    monkeypatch.chdir(tmp_path)
    rc = build_book.main(["--smoke", "--only", "00_getting_started", "--build", str(tmp_path / "b")])
    assert rc == 0 and calls == [("00_getting_started.ipynb", True)]
    book = tmp_path / "b" / "book"
    index = (book / "index.html").read_text()
    assert "00_getting_started.html" in index and "Getting started" in index and "smoke" in index
    assert (book / "00_getting_started.html").stat().st_size > 10_000
    assert build_book.main(["--only", "no_such_notebook", "--build", str(tmp_path / "b")]) == 2


def test_failed_notebook_makes_the_build_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(build_book, "run_notebook",
                        lambda nb, out, **kw: RunResult(nb.name, True, False, 1.0, 1.0, True, "boom"))
    assert build_book.main(["--smoke", "--only", "00_getting_started", "--build", str(tmp_path / "b")]) == 1
    assert "failed" in (tmp_path / "b" / "book" / "index.html").read_text()
