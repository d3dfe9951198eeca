"""Every notebook follows the course template and carries no outputs."""
import ast
from pathlib import Path

import nbformat
import pytest

from tools.course import CLOSING_HEADINGS, NAME_RE, SMOKE_CELL_START, badge
from tools.run_notebook import ROOT
from tools.sync_notebooks import drift

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ids = [p.stem for p in NOTEBOOKS]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ holds no notebook"


def literal_only_problems(source: str) -> list[str]:
    """Statements in a parameters cell that are not ``NAME = literal``."""
    problems = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)):
            problems.append(f"line {node.lineno}: not a plain assignment")
            continue
        try:
            ast.literal_eval(node.value)
        except ValueError:
            problems.append(f"line {node.lineno}: value is not a literal")
    return problems


def test_literal_checker_catches_expressions() -> None:
    assert literal_only_problems("A = 1\nB = 'x'\nC = [1, 2.0, None]\nD = {'k': (1, 2)}") == []
    assert literal_only_problems("A = 2 * 3") and literal_only_problems("import os") and literal_only_problems("A = f(1)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_hygiene(path: Path) -> None:
    assert NAME_RE.match(path.name), f"{path.name}: name must be NN_snake_case.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    number = path.name[:2]
    cells = nb.cells
    header = cells[0].source
    assert cells[0].cell_type == "markdown" and header.splitlines()[0] == badge(path.name), "Colab badge missing"
    assert f"# {number} · " in header, "header needs the title '# NN · Technique'"
    for part in ("You will learn", "Prerequisites", "Runtime"):
        assert part in header, f"header lacks '{part}'"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3"
    assert "widgets" not in nb.metadata, "widget state is committed"
    for i, c in enumerate(cells):
        if c.cell_type == "code":
            assert not c.get("outputs"), f"cell {i} has committed outputs"
            assert c.get("execution_count") is None, f"cell {i} has an execution count"
    params = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell must be tagged 'parameters'"
    p = cells[params[0]]
    assert not literal_only_problems(p.source), literal_only_problems(p.source)
    assert "SMOKE" in {t.id for n in ast.parse(p.source).body for t in n.targets}, "parameters need SMOKE"
    nxt = cells[params[0] + 1]
    assert nxt.cell_type == "code" and nxt.source.startswith(SMOKE_CELL_START), \
        "the cell after the parameters must resolve smoke mode first"
    md = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    for heading in CLOSING_HEADINGS:
        assert heading in md, f"missing section '{heading}'"
    results = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Results" in c.source]
    assert results, "missing the '## Results' section (asserts on the measured outcome)"
    after = next((c for c in cells[results[0] + 1:] if c.cell_type == "code"), None)
    assert after is not None and "assert " in after.source, "the Results section needs a code cell with asserts"
    assert drift(path, nb) == [], drift(path, nb)
