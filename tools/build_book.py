"""Execute the notebooks and render the HTML book (Sphinx + MyST-NB + sphinx-book-theme, Jupyter Book 1's stack).

    python -m tools.build_book [--smoke] [--only 00_getting_started] [--build build] [--no-run]

Each notebook is executed with papermill (``tools.run_notebook``) into ``<build>/smoke/`` or ``<build>/full/``
(the same place ``python -m tools.run_notebook`` and the notebook tests write to), its wall time and peak memory
appended to ``<build>/notebook_runs.csv``. The book is then rendered from every executed notebook of that mode
present there, without running anything again (MyST-NB's ``nb_execution_mode = "off"``): ``<build>/book/index.html``
is the course map (generated from the notebooks' titles and section headings, with each chapter's last run),
followed by one page per chapter in order, with the chapter navigation, full-text search (``search.html``), the
stored plots, tables and audio players, and exercise solutions collapsed behind a toggle. ``--no-run`` renders
the notebooks already executed (for example by ``make test``) without running any. A failing notebook is
rendered too (its error cell shows) and makes the command exit non-zero at the end.
"""
from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from tools.course import NAME_RE
from tools.run_notebook import ROOT, append_csv, run_notebook

CONF_DIR = ROOT / "tools" / "book"
#: Debian's ``libjs-mathjax`` (MathJax 2.7, requirements/apt.txt): the book's maths renders offline from it.
DEBIAN_MATHJAX = Path("/usr/share/javascript/mathjax")
#: The parts of MathJax 2 that the combined ``TeX-AMS_CHTML`` configuration loads (about 1.3 MB of its 54 MB).
MATHJAX_PARTS = ("MathJax.js", "config/TeX-AMS_CHTML.js", "extensions", "jax/input/TeX", "jax/output/CommonHTML",
                 "jax/element", "localization/en", "fonts/HTML-CSS/TeX/woff")
#: ``mathjax_path`` (relative to the site's ``_static``) when the local copy is used.
LOCAL_MATHJAX_PATH = "mathjax/MathJax.js?config=TeX-AMS_CHTML"


def local_mathjax() -> Path | None:
    """Debian's MathJax folder when it is installed with every part the book copies, else ``None`` (CDN)."""
    ok = all((DEBIAN_MATHJAX / part).exists() for part in MATHJAX_PARTS)
    return DEBIAN_MATHJAX if ok else None


def copy_mathjax(site: Path) -> None:
    """Copy the parts of the local MathJax the pages use into ``site/_static/mathjax`` (nothing without one)."""
    src = local_mathjax()
    if src is None:
        return
    dest = site / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        target = dest / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if (src / part).is_dir():
            shutil.copytree(src / part, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src / part, target)
SOLUTION_START = "# Solution to exercise"
#: Section headings every chapter has; the course map lists the others.
_STANDARD_HEADINGS = {"parameters", "results", "exercises", "summary", "going further", "the course map"}
_NUMBERED = re.compile(r"^\s*\d+[a-z]?\s*·\s*")


def title_of(nb_path: Path) -> str:
    """The chapter title: the first ``# `` heading of the first markdown cell that has one."""
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return nb_path.stem


def sections_of(nb_path: Path) -> list[str]:
    """The chapter's own ``## `` section headings (numbering and the standard closing ones left out)."""
    nb = nbformat.read(nb_path, as_version=4)
    out = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("## "):
                h = _NUMBERED.sub("", line[3:].strip())
                if h.lower() not in _STANDARD_HEADINGS:
                    out.append(h)
    return out


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SOLUTION_START)


def _prepare(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Collapse every hidden input: cells tagged ``hide-input``, with ``jupyter.source_hidden``, or starting
    ``# Solution to exercise`` (the exercise solutions, which carry both) render behind a toggle."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.setdefault("tags", [])
        hidden = cell.metadata.get("jupyter", {}).get("source_hidden") or is_solution(cell)
        if hidden and "hide-input" not in tags:
            tags.append("hide-input")
        if is_solution(cell):
            mystnb = cell.metadata.setdefault("mystnb", {})
            mystnb.setdefault("code_prompt_show", "Show the solution")
            mystnb.setdefault("code_prompt_hide", "Hide the solution")
        if not tags:
            del cell.metadata["tags"]
    return nb


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an unchanged file alone, so that Sphinx's incremental build skips its page."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def course_map(chapters: list[tuple[str, str, list[str], bool]], runs: dict[str, dict] | None) -> str:
    """A MyST table: number, chapter (linked when rendered), its sections, and (with ``runs``) its last run."""
    head = "| # | chapter | sections |" + (" run | wall time | peak memory |" if runs is not None else "")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for stem, title, sections, rendered in chapters:
        title = _cell(re.sub(rf"^{stem[:2]}\s*·\s*", "", title))
        link = f"[{title}]({stem}.ipynb)" if rendered else title
        row = f"| {stem[:2]} | {link} | {_cell(' · '.join(sections))} |"
        if runs is not None:
            r = runs.get(stem)
            if r is None:
                row += (" executed (run not logged) | | |" if rendered else " not run | | |")
            else:
                status = "ok" if r["ok"] else "**failed**"
                mode = "smoke" if r["smoke"] else "full"
                row += (f" {status} ({mode}, {r.get('finished', '')}) | {float(r['seconds']) / 60:.1f} min"
                        f" | {float(r['peak_rss_mb']) / 1024:.1f} GiB |")
        rows.append(row)
    return "\n".join(rows)


def render_book(notebooks: list[Path], out: Path, *, work: Path | None = None, runs: dict[str, dict] | None = None,
                title: str = "Synthetic Data Workshop", intro: str = "", listed: list[Path] | None = None,
                quiet: bool = True) -> Path:
    """Render executed ``notebooks`` (in this order) into a static site in ``out``; return its index.html.

    ``work`` holds the Sphinx source folder and its doctree cache (default: ``out``'s sibling
    ``<out>-src``); ``runs`` maps a notebook stem to its last run (``RunResult`` fields) for the course map;
    ``listed`` adds chapters to the course map that have no executed notebook (shown without a link).
    Nothing is executed. Raises ``RuntimeError`` with Sphinx's output when the build fails.
    """
    out = Path(out).resolve()
    work = Path(work).resolve() if work else out.parent / (out.name + "-src")
    work.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in notebooks}
    for stale in work.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    rendered = {p.stem for p in notebooks}
    by_stem = {p.stem: p for p in listed or []} | {p.stem: p for p in notebooks}  # executed copies win
    chapters = [(stem, title_of(p), sections_of(p), stem in rendered) for stem, p in sorted(by_stem.items())]
    for p in notebooks:
        nb = _prepare(nbformat.read(p, as_version=4))
        _write_if_changed(work / p.name, nbformat.writes(nb) + "\n")
    toctree = "\n".join(p.stem for p in notebooks)
    _write_if_changed(work / "index.md", f"""# {title}

{intro}

## Course map

{course_map(chapters, runs)}

Use the navigation on the left to read the chapters in order, and the search box for any term.

```{{toctree}}
:hidden:
:maxdepth: 1
:caption: Chapters

{toctree}
```
""")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(CONF_DIR), "-d", str(work / "_doctrees"),
           "-w", str(work / "warnings.txt"), "--keep-going"] + (["-q"] if quiet else []) + [str(work), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (out / "index.html").exists():
        raise RuntimeError(f"sphinx failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    copy_mathjax(out)
    sources = out / "_sources"
    if sources.is_dir() and not any(sources.iterdir()):
        sources.rmdir()
    return out / "index.html"


def last_runs(csv_path: Path, smoke: bool) -> dict[str, dict]:
    """The last logged run of each notebook in this mode, from ``notebook_runs.csv``, by stem."""
    runs: dict[str, dict] = {}
    if not csv_path.exists():
        return runs
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            if (row.get("smoke") == "True") != smoke:
                continue
            row["ok"], row["smoke"] = row.get("ok") == "True", smoke
            runs[Path(row["notebook"]).stem] = row
    return runs


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="run the quick smoke versions")
    ap.add_argument("--only", nargs="*", default=None, help="notebook stems to run (default: all)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per notebook")
    ap.add_argument("--no-run", action="store_true", help="render the notebooks executed before, run none")
    args = ap.parse_args(argv)
    build = ROOT / args.build
    mode = "smoke" if args.smoke else "full"
    executed_dir = build / mode
    executed_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if NAME_RE.match(p.name))
    nbs = sources
    if args.only:
        nbs = [p for p in sources if p.stem in set(args.only) or p.name in set(args.only)]
        if not nbs:
            print(f"no notebook matches {args.only}")
            return 2
    csv_path = build / "notebook_runs.csv"
    t_all = time.perf_counter()
    failed = []
    if not args.no_run:
        for nb in nbs:
            executed = executed_dir / nb.name
            print(f"running {nb.name} ({mode}) ...", flush=True)
            res = run_notebook(nb, executed, smoke=args.smoke, timeout=args.timeout, cell_timeout=args.timeout)
            append_csv(csv_path, res)
            print(f"  {'ok' if res.ok else 'FAILED'} in {res.seconds:.0f}s, peak {res.peak_rss_mb:.0f} MB -> {executed}")
            if not res.ok:
                failed.append(nb.name)
                print("  " + res.error.replace("\n", "\n  ")[-2500:])
    runs = last_runs(csv_path, args.smoke)
    if args.no_run:
        failed = [nb.name for nb in nbs if nb.stem in runs and not runs[nb.stem]["ok"]]
    # The book holds every chapter executed in this mode, not only the ones run now.
    executed = [executed_dir / p.name for p in sources if (executed_dir / p.name).exists()]
    intro = ("Generating, verifying, filtering and using synthetic training data, with real small models. "
             f"Rendered on {time.strftime('%Y-%m-%d %H:%M')} from the notebooks executed in **{mode}** mode "
             f"(`{executed_dir.relative_to(ROOT) if executed_dir.is_relative_to(ROOT) else executed_dir}`).")
    t_render = time.perf_counter()
    try:
        index = render_book(executed, build / "book", work=build / "book-src", runs=runs, intro=intro,
                            listed=sources)
    except RuntimeError as e:
        print(e)
        return 1
    warnings = build / "book-src" / "warnings.txt"
    warned = [line for line in warnings.read_text().splitlines() if "WARNING" in line] if warnings.exists() else []
    n_warn = len(warned)
    for line in warned[:5]:
        print("  " + line[-300:])
    print(f"book: {index} ({len(executed)} chapters, rendered in {time.perf_counter() - t_render:.0f}s, "
          f"{time.perf_counter() - t_all:.0f}s in all; {n_warn} Sphinx warnings in {warnings})"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
