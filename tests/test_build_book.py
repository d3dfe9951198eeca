"""The book builder runs the notebooks into ``<build>/<mode>/`` and renders them with Sphinx + MyST-NB into
``<build>/book/`` (the run itself is stubbed here; tests/test_notebooks.py executes every notebook for real,
and tests/test_book_browser.py loads a rendered book in a headless browser)."""
import shutil

import nbformat

from tools import build_book
from tools.run_notebook import ROOT, RunResult


def _fake_run(calls):
    def fake_run(nb, out, **kw):
        calls.append((nb.name, kw["smoke"]))
        shutil.copy(nb, out)  # the notebook as committed, without outputs
        return RunResult(nb.name, kw["smoke"], True, 12.0, 800.0, True)
    return fake_run


def test_book_index_and_pages(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(build_book, "run_notebook", _fake_run(calls))
    monkeypatch.chdir(tmp_path)
    rc = build_book.main(["--smoke", "--only", "00_getting_started", "--build", str(tmp_path / "b")])
    assert rc == 0 and calls == [("00_getting_started.ipynb", True)]
    assert (tmp_path / "b" / "smoke" / "00_getting_started.ipynb").exists()
    assert "00_getting_started.ipynb,True,True" in (tmp_path / "b" / "notebook_runs.csv").read_text()
    book = tmp_path / "b" / "book"
    index = (book / "index.html").read_text()
    assert "00_getting_started.html" in index and "Getting started" in index and "smoke" in index
    # the course map names the chapters not executed yet, without a link
    assert "Deduplication" in index and "03_deduplication.html" not in index and "not run" in index
    page = (book / "00_getting_started.html").read_text()
    assert len(page) > 10_000
    assert (book / "search.html").exists() and (book / "searchindex.js").exists()
    # nothing was executed while rendering: the copy had no outputs, and the page shows none
    assert "cell_output" not in page
    # exercise solutions are collapsed behind a toggle
    n_solutions = sum(c.source.startswith(build_book.SOLUTION_START)
                      for c in nbformat.read(ROOT / "notebooks" / "00_getting_started.ipynb", 4).cells)
    assert n_solutions and page.count("Show the solution") == n_solutions
    assert build_book.main(["--only", "no_such_notebook", "--build", str(tmp_path / "b")]) == 2


def test_no_run_renders_what_was_executed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(build_book, "run_notebook", _fake_run(calls))
    b = tmp_path / "b"
    (b / "full").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "03_deduplication.ipynb", b / "full")
    assert build_book.main(["--no-run", "--build", str(b)]) == 0 and calls == []
    index = (b / "book" / "index.html").read_text()
    assert "03_deduplication.html" in index and "full" in index and "00_getting_started.html" not in index


def test_failed_notebook_makes_the_build_fail(tmp_path, monkeypatch):
    monkeypatch.setattr(build_book, "run_notebook",
                        lambda nb, out, **kw: RunResult(nb.name, True, False, 1.0, 1.0, True, "boom"))
    assert build_book.main(["--smoke", "--only", "00_getting_started", "--build", str(tmp_path / "b")]) == 1
    assert "failed" in (tmp_path / "b" / "book" / "index.html").read_text()


def test_solution_cells_are_hidden_even_without_the_tag():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# Solution to exercise 1: x\nx = 1"),
        nbformat.v4.new_code_cell("y = 2", metadata={"jupyter": {"source_hidden": True}}),
        nbformat.v4.new_code_cell("z = 3")])
    cells = build_book._prepare(nb).cells
    assert [c.metadata.get("tags") for c in cells] == [["hide-input"], ["hide-input"], None]
    assert cells[0].metadata.mystnb["code_prompt_show"] == "Show the solution"
