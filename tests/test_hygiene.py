"""Every notebook follows the course template and carries no outputs."""
import ast
import re
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
    names = {t.id for n in ast.parse(p.source).body for t in n.targets}
    assert "SMOKE" in names, "parameters need SMOKE"
    assert "SMOKE_SIZES" in names, "parameters need SMOKE_SIZES (the smoke value of each size)"
    smoke_sizes = next(ast.literal_eval(n.value) for n in ast.parse(p.source).body
                       if any(t.id == "SMOKE_SIZES" for t in n.targets))
    assert isinstance(smoke_sizes, dict) and set(smoke_sizes) <= names - {"SMOKE", "SMOKE_SIZES"}, \
        f"SMOKE_SIZES keys must be parameters: {sorted(set(smoke_sizes) - names)}"
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
    body = [c.source for i, c in enumerate(cells) if c.cell_type == "code" and i != params[0]]
    hidden = [f for src in body for f in hidden_smoke_sizes(src)]
    assert hidden == [], f"sizes chosen in body cells (put them in the parameters cell and SMOKE_SIZES): {hidden}"


def _is_size_literal(node: ast.AST) -> bool:
    """A number, or a list/tuple of numbers: what a size or a grid looks like."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, (ast.List, ast.Tuple)):
        return bool(node.elts) and all(_is_size_literal(e) for e in node.elts)
    return False


def _mentions_smoke(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "SMOKE" for n in ast.walk(node))


def hidden_smoke_sizes(source: str) -> list[str]:
    """Sizes picked by smoke mode outside the parameters cell: ``n = 10 if SMOKE else 40`` or an
    ``if SMOKE:`` block that assigns numbers. Thresholds inside ``assert`` statements are allowed
    (a smoke run checks directions with looser bounds)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    in_assert = {id(n) for a in ast.walk(tree) if isinstance(a, ast.Assert) for n in ast.walk(a)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and id(node) not in in_assert and _mentions_smoke(node.test) and (
                _is_size_literal(node.body) or _is_size_literal(node.orelse)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.If) and _mentions_smoke(node.test):
            for stmt in node.body + node.orelse:
                if isinstance(stmt, ast.Assign) and _is_size_literal(stmt.value):
                    found.append(f"line {stmt.lineno}: {ast.unparse(stmt)}")
    return found


def test_hidden_size_checker_catches_body_sizes() -> None:
    assert hidden_smoke_sizes("n = 10 if SMOKE else 40")
    assert hidden_smoke_sizes("for k in ([5, 100] if SMOKE else [5, 20, 100]):\n    pass")
    assert hidden_smoke_sizes("if SMOKE:\n    N = 3")
    assert hidden_smoke_sizes("assert x > (0.1 if SMOKE else 0.3)") == []
    assert hidden_smoke_sizes("label = 'smoke' if SMOKE else 'full'") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_data_is_saved_through_save_dataset(path: Path) -> None:
    """Every notebook writes its dataset with helpers.core.io.save_dataset (rows + card), never by hand."""
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert ".save_to_disk(" not in code, "save datasets with helpers.core.io.save_dataset"
    assert not re.search(r"README\.md[\"']\s*\)?\s*\.write_text", code), "cards come from save_dataset"


def test_helpers_save_datasets_in_one_place() -> None:
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "helpers").rglob("*.py")
                   if ".save_to_disk(" in p.read_text())
    assert users == ["helpers/core/io.py"], users


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_code_has_no_undefined_names(path: Path) -> None:
    """pyflakes over the notebook's code cells in order: a name used but never set (a renamed
    parameter, a variable from a deleted cell) fails here in a second instead of minutes into a run."""
    from pyflakes import api, messages
    from pyflakes.reporter import Reporter
    import io

    cells = nbformat.read(path, as_version=4).cells
    code = "\n\n".join("\n".join(("# " + line) if line.lstrip().startswith(("!", "%")) else line
                                  for line in c.source.splitlines())
                         for c in cells if c.cell_type == "code")
    found: list[str] = []

    class Collect(Reporter):
        def __init__(self):
            super().__init__(io.StringIO(), io.StringIO())

        def flake(self, message):
            if isinstance(message, (messages.UndefinedName, messages.UndefinedLocal)):
                found.append(str(message))

    api.check(code, path.name, Collect())
    assert found == [], found
