"""The notebook tooling itself: template, conversion, drift check, runner error reporting, display."""
import nbformat
import pytest

import numpy as np

from helpers.core.display import survivors_table, table_html, threshold_view, widgets_enabled
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


def test_display_static_views(monkeypatch):
    assert not widgets_enabled()
    html = table_html([{"a": "<b>x</b>", "b": 1.23456789}])
    assert "&lt;b&gt;" in html and "1.235" in html
    assert "+10 chars" in table_html([{"a": "y" * 20}], max_chars=10)
    d, shown, widgets = _capture(monkeypatch)
    d.browse([{"a": f"item{i}"} for i in range(20)], n=3)
    assert "20 rows; first 3 shown" in shown[-1] and "item2" in shown[-1] and "item3" not in shown[-1]
    d.threshold_explorer([{"s": float(i), "t": str(i)} for i in range(10)] + [{"s": float("nan")}], "s", n=2)
    assert "rows kept at a few thresholds on s" in shown[-1] and "1 row" in shown[-1]
    d.threshold_explorer([], "s")
    assert shown[-1] == "<i>(no scored rows)</i>" and widgets == []


ROWS = [{"s": float(i), "t": f"row{i}"} for i in range(10)] + [{"s": float("nan"), "t": "nan"}, {"t": "none"}]


def test_threshold_view_shows_the_rows_either_side_of_the_line():
    html = threshold_view(ROWS, "s", 4.5, fields=["t", "s"], n=2)
    assert "keeps 5 of 10 scored rows (50%)" in html and "2 rows without a score" in html
    kept_part, dropped_part = html.split("dropped, closest")
    # the rows nearest the threshold, not the extremes
    assert "row5" in kept_part and "row6" in kept_part and "row9" not in kept_part
    assert "row4" in dropped_part and "row3" in dropped_part and "row0" not in dropped_part
    assert kept_part.index("row5") < kept_part.index("row6") and dropped_part.index("row4") < dropped_part.index("row3")
    low = threshold_view(ROWS, "s", 2.5, keep_above=False, n=1)  # e.g. perplexity: keep the low scores
    assert "keeps 3 of 10" in low and "row2" in low.split("dropped")[0] and "row3" in low.split("dropped")[1]
    assert "rows kept" in survivors_table([1, 2, 3, np.nan], [2])


def _capture(monkeypatch):
    import IPython.display

    import helpers.core.display as d

    shown, widgets = [], []
    monkeypatch.setattr(d, "_show_html", shown.append)
    monkeypatch.setattr(IPython.display, "display", lambda obj, *a, **k: widgets.append(obj))
    return d, shown, widgets


def test_threshold_explorer_without_a_front_end_prints_a_static_view(monkeypatch):
    d, shown, widgets = _capture(monkeypatch)
    monkeypatch.setenv("SDW_NO_WIDGETS", "1")
    d.threshold_explorer(ROWS, "s", fields=["t", "s"], initial=4.5, n=2)
    assert len(shown) == 1 and widgets == []
    assert "rows kept at a few thresholds" in shown[0] and "keeps 5 of 10" in shown[0] and "row5" in shown[0]


def test_threshold_explorer_with_a_front_end_adds_a_working_slider(monkeypatch):
    pytest.importorskip("ipywidgets")
    d, shown, widgets = _capture(monkeypatch)
    monkeypatch.setattr(d, "widgets_enabled", lambda: True)
    d.threshold_explorer(ROWS, "s", fields=["t", "s"], initial=4.5, n=2)
    assert len(shown) == 1 and "keeps 5 of 10" in shown[0]  # the static view is there either way
    (box,) = widgets
    slider, out = box.children
    assert slider.value == 4.5 and "Move the slider" in out.value
    slider.value = 7.5
    assert "keeps 2 of 10" in out.value and "row8" in out.value and "row7" in out.value


def test_widgets_enabled_knows_jupyter_and_colab(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython

    monkeypatch.delenv("SDW_NO_WIDGETS", raising=False)

    class ZMQInteractiveShell:  # a Jupyter kernel's shell (papermill, JupyterLab, VS Code)
        pass

    class JupyterSubclass(ZMQInteractiveShell):
        pass

    Colab = type("Shell", (), {"__module__": "google.colab._shell"})  # Colab's shell
    Terminal = type("TerminalInteractiveShell", (), {})
    for shell, expected in [(ZMQInteractiveShell(), True), (JupyterSubclass(), True), (Colab(), True),
                            (Terminal(), False), (None, False)]:
        monkeypatch.setattr(IPython, "get_ipython", lambda s=shell: s)
        assert widgets_enabled() is expected, shell
    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    monkeypatch.setenv("SDW_NO_WIDGETS", "1")
    assert widgets_enabled() is False


def test_solution_cells_are_collapsed_and_drift_says_when_not(tmp_path):
    from tools.course import solution_is_hidden

    nb = script_to_notebook(template("42", "demo_topic", "Demo"))
    solutions = [c for c in nb.cells if c.source.startswith("# Solution to exercise")]
    assert solutions and all(solution_is_hidden(c) for c in solutions)
    path = tmp_path / "42_demo_topic.ipynb"
    solutions[0].metadata = {}
    assert any("not collapsed" in p for p in drift(path, nb))
