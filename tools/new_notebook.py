"""Start a new chapter from the course template.

    python -m tools.new_notebook 07 preference_data_dpo "Preference data and DPO"

Writes ``notebooks/07_preference_data_dpo.ipynb`` with the shared cells (badge, Colab
install, setup, parameters, smoke resolution) and the closing sections, ready to fill.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.course import INSTALL_CELL, NAME_RE, SETUP_CELL, SMOKE_CELL_START, badge
from tools.py2nb import script_to_notebook, write_notebook

ROOT = Path(__file__).resolve().parent.parent


def md(text: str) -> str:
    return "# %% [markdown]\n" + "\n".join(("# " + l) if l else "#" for l in text.strip("\n").splitlines())


def template(number: str, name: str, title: str) -> str:
    fname = f"{number}_{name}.ipynb"
    header = f"""{badge(fname)}

# {number} · {title}

*Why this matters, in one paragraph, and where the technique comes from (cite the paper or report).*

**You will learn**
- ...
- ...
- ...

**Prerequisites**: notebook 00 (getting started).

**Runtime** (2 CPU cores): smoke about 3 min · full about 15 min · GPU: raise the sizes and pick a bigger model in the parameters cell.

**Sources**: ..."""
    return "\n\n".join([
        md(header),
        "# %%\n" + INSTALL_CELL,
        "# %%\n" + SETUP_CELL,
        md("## Parameters\nLiterals only, so papermill and learners can change them. `SMOKE=True` replaces each size by "
           "its value in `SMOKE_SIZES` for a quick check (CI sets it through the `SDW_SMOKE` environment variable)."),
        '# %% tags=["parameters"]\nSMOKE = False\nSEED = 0\nMODEL = "smollm2-135m"  # bundled short name, hub id or local path\n'
        'N_ITEMS = 200\nSMOKE_SIZES = {"N_ITEMS": 16}  # used instead of the sizes above when SMOKE is on',
        "# %%\n" + SMOKE_CELL_START + "\nenv.seed_everything(SEED)\nOUT = env.output_dir("
        f'"{number}_{name}")\nprint(f"items: {{N_ITEMS}}, outputs in {{OUT}}")',
        md("## 1 · The idea\n..."),
        "# %%\n",
        md("## Results\nWhat this run measured, checked (looser in smoke mode)."),
        "# %%\n# assert on measured outcomes here, e.g. assert kept_rate > (0.2 if SMOKE else 0.5), kept_rate",
        md("## Exercises\n1. ...\n\n<details><summary>Solution</summary>\n\nThe cell below runs it.\n</details>"),
        "# %%\n# Solution to exercise 1",
        md("## Summary\n- ..."),
        md("## Going further\n- How large labs do this at scale, and what to change on a GPU."),
    ]) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    number, name, title = argv
    fname = f"{number}_{name}.ipynb"
    if not NAME_RE.match(fname):
        print(f"{fname} does not match NN_snake_case.ipynb")
        return 2
    path = ROOT / "notebooks" / fname
    if path.exists():
        print(f"{path} exists; not overwriting")
        return 1
    write_notebook(script_to_notebook(template(number, name, title)), path)
    print(f"created {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
