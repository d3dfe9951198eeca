"""Keep every notebook's shared cells identical to the course template.

    python -m tools.sync_notebooks --check   # list drift, exit 1 if any (the tests run this)
    python -m tools.sync_notebooks --fix     # rewrite badge / install / setup cells, strip outputs

Shared cells: cell 0 starts with the Colab badge for that file, cell 1 is the Colab install
cell, cell 2 is the setup cell (see ``tools/course.py``). Exercise solution cells (first line
``# Solution to exercise ...``) are collapsed.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from tools.course import INSTALL_CELL, SETUP_CELL, badge, hide_solution, is_solution, solution_is_hidden
from tools.py2nb import write_notebook

ROOT = Path(__file__).resolve().parent.parent


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def drift(path: Path, nb: nbformat.NotebookNode) -> list[str]:
    """What differs from the template in one notebook (empty list: in sync)."""
    problems = []
    cells = nb.cells
    if len(cells) < 3:
        return ["fewer than 3 cells"]
    first = cells[0].source.splitlines()[0] if cells[0].source else ""
    if cells[0].cell_type != "markdown" or first != badge(path.name):
        problems.append("cell 0 does not start with this notebook's Colab badge")
    if cells[1].cell_type != "code" or cells[1].source.strip() != INSTALL_CELL.strip():
        problems.append("cell 1 is not the template's Colab install cell")
    if cells[2].cell_type != "code" or not cells[2].source.startswith(SETUP_CELL):
        problems.append("cell 2 does not start with the template's setup cell")
    shown = [i for i, c in enumerate(cells) if is_solution(c) and not solution_is_hidden(c)]
    if shown:
        problems.append(f"solution cells {shown} are not collapsed")
    return problems


def fix(path: Path, nb: nbformat.NotebookNode) -> None:
    cells = nb.cells
    src0 = cells[0].source.splitlines()
    if src0 and src0[0].startswith("[![Open In Colab]"):
        src0 = src0[1:]
    cells[0].source = "\n".join([badge(path.name)] + src0)
    if cells[1].cell_type == "code" and "google.colab" in cells[1].source:
        cells[1].source = INSTALL_CELL
    else:
        cells.insert(1, nbformat.v4.new_code_cell(INSTALL_CELL))
    if cells[2].cell_type == "code" and "print(env.describe())" in cells[2].source:
        rest = cells[2].source.split("print(env.describe())", 1)
        cells[2].source = SETUP_CELL + (rest[1] if len(rest) == 2 else "")
    else:
        cells.insert(2, nbformat.v4.new_code_cell(SETUP_CELL))
    for cell in cells:
        if is_solution(cell):
            hide_solution(cell)
    write_notebook(nb, path)


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "--check"
    bad = 0
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        problems = drift(path, nb)
        if mode == "--fix":
            fix(path, nb)
            if problems:
                print(f"fixed {path.name}: {'; '.join(problems)}")
        elif problems:
            bad += 1
            print(f"{path.name}: {'; '.join(problems)}")
    if mode == "--check" and not bad:
        print(f"{len(notebooks())} notebooks in sync with the template")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
