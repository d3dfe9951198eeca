"""Convert a percent-format script (``# %%`` cells) to a clean notebook, and back.

    python -m tools.py2nb draft.py notebooks/NN_name.ipynb
    python -m tools.nb2py notebooks/NN_name.ipynb > draft.py

Cell markers: ``# %%`` (code), ``# %% [markdown]`` (markdown: every line starts with
``# ``), ``# %% tags=["parameters"]`` (tagged code). Outputs never exist in the result. A code cell
whose first line is ``# Solution to exercise ...`` is collapsed (``tools.course.hide_solution``).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

from tools.course import hide_solution, is_solution

_MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def script_to_notebook(text: str) -> nbformat.NotebookNode:
    """Parse percent-format text into a notebook with python3 kernelspec."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    cells: list[tuple[str, list[str], list[str]]] = []
    for line in text.splitlines():
        m = _MARK.match(line)
        if m:
            cells.append(("markdown" if m.group("md") else "code", json.loads(m.group("tags") or "[]"), []))
        elif cells:
            cells[-1][2].append(line)
        elif line.strip():
            cells.append(("code", [], [line]))
    for kind, tags, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            src = "\n".join(l[2:] if l.startswith("# ") else l[1:] if l.startswith("#") else l for l in lines)
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell("\n".join(lines))
        if tags:
            cell.metadata["tags"] = tags
        if is_solution(cell):
            hide_solution(cell)  # exercise solutions are collapsed; CI still runs them
        cell.pop("id", None)
        nb.cells.append(cell)
    return nb


def notebook_to_script(nb: nbformat.NotebookNode) -> str:
    """The inverse of :func:`script_to_notebook`."""
    parts = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        tag = f" tags={json.dumps(tags)}" if tags else ""
        if cell.cell_type == "markdown":
            body = "\n".join(("# " + l) if l else "#" for l in cell.source.splitlines())
            parts.append(f"# %% [markdown]{tag}\n{body}")
        else:
            parts.append(f"# %%{tag}\n{cell.source}")
    return "\n\n".join(parts) + "\n"


def write_notebook(nb: nbformat.NotebookNode, path: str | Path) -> None:
    """Write with stable cell ids (from position), no outputs, no widget state."""
    nb.metadata.pop("widgets", None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:03d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for k in ("execution", "papermill", "collapsed", "scrolled"):
            cell.metadata.pop(k, None)
    nb.metadata.pop("papermill", None)
    nbformat.validate(nb)
    Path(path).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    nb = script_to_notebook(Path(argv[0]).read_text(encoding="utf-8"))
    write_notebook(nb, argv[1])
    print(f"wrote {argv[1]} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
