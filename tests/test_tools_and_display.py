"""The notebook tooling itself: template, conversion, drift check, runner error reporting, display."""
import nbformat
import pytest

from helpers.display import browse, table_html, threshold_explorer, widgets_enabled
from tools.course import badge
from tools.new_notebook import template
from tools.py2nb import notebook_to_script, script_to_notebook, write_notebook
from tools.sync_notebooks import drift


def test_template_round_trips_and_is_in_sync(tmp_path):
    nb = script_to_notebook(template("42", "demo_topic", "Demo"))
    assert notebook_to_script(script_to_notebook(notebook_to_script(nb))) == notebook_to_script(nb)
    path = tmp_path / "42_demo_topic.ipynb"
    write_notebook(nb, path)
    nb = nbformat.read(path, as_version=4)
    assert drift(path, nb) == []
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    nb.cells[1].source += "\nprint('drift')"
    nb.cells[0].source = nb.cells[0].source.replace(badge(path.name), "no badge")
    assert len(drift(path, nb)) == 2


def test_write_notebook_strips_outputs(tmp_path):
    nb = script_to_notebook("# %%\nprint(1)")
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1")]
    nb.cells[0].execution_count = 3
    nb.metadata["widgets"] = {"state": {}}
    write_notebook(nb, tmp_path / "x.ipynb")
    back = nbformat.read(tmp_path / "x.ipynb", as_version=4)
    assert back.cells[0].outputs == [] and back.cells[0].execution_count is None and "widgets" not in back.metadata


@pytest.mark.notebook
def test_runner_reports_the_failing_cell(tmp_path):
    from tools.run_notebook import run_notebook

    nb = script_to_notebook('# %% tags=["parameters"]\nSMOKE = False\n\n# %%\nvalue = 41\n\n# %%\n'
                            'assert value == 42, "measured value is off"')
    src = tmp_path / "99_failing.ipynb"
    write_notebook(nb, src)
    res = run_notebook(src, tmp_path / "out.ipynb", smoke=True, timeout=300)
    assert not res.ok
    assert "measured value is off" in res.error and "assert value == 42" in res.error
    assert res.peak_rss_mb > 10


def test_display_static_views(capsys):
    assert not widgets_enabled()
    html = table_html([{"a": "<b>x</b>", "b": 1.23456789}])
    assert "&lt;b&gt;" in html and "1.235" in html
    assert "+10 chars" in table_html([{"a": "y" * 20}], max_chars=10)
    browse([{"a": i} for i in range(20)], n=3)
    threshold_explorer([{"s": float(i), "t": str(i)} for i in range(10)] + [{"s": float("nan")}], "s", n=2)
    threshold_explorer([], "s")
