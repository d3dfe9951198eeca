"""Execute every notebook and render the HTML book.

    python -m tools.build_book [--smoke] [--only 00_getting_started] [--build build]

Executed notebooks go to ``<build>/book/executed/``, HTML pages to ``<build>/book/``, and an
``index.html`` lists every chapter with its status, wall time and peak memory. A failing
notebook is rendered too (its error cell shows) and makes the command exit non-zero at the end.
"""
from __future__ import annotations

import argparse
import html
import sys
import time
from pathlib import Path

import nbformat

from tools.run_notebook import ROOT, append_csv, run_notebook


def title_of(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    for line in nb.cells[0].source.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return nb_path.stem


def render_html(executed: Path, target: Path) -> None:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    target.write_text(body, encoding="utf-8")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="run the quick smoke versions")
    ap.add_argument("--only", nargs="*", default=None, help="notebook stems to run (default: all)")
    ap.add_argument("--build", default="build")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per notebook")
    args = ap.parse_args(argv)
    book = ROOT / args.build / "book"
    (book / "executed").mkdir(parents=True, exist_ok=True)
    nbs = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.only:
        nbs = [p for p in nbs if p.stem in set(args.only) or p.name in set(args.only)]
        if not nbs:
            print(f"no notebook matches {args.only}")
            return 2
    rows = []
    t_all = time.perf_counter()
    for nb in nbs:
        executed = book / "executed" / nb.name
        print(f"running {nb.name} ({'smoke' if args.smoke else 'full'}) ...", flush=True)
        res = run_notebook(nb, executed, smoke=args.smoke, timeout=args.timeout, cell_timeout=args.timeout)
        append_csv(ROOT / args.build / "notebook_runs.csv", res)
        page = book / f"{nb.stem}.html"
        if executed.exists():
            render_html(executed, page)
        status = "ok" if res.ok else "FAILED"
        print(f"  {status} in {res.seconds:.0f}s, peak {res.peak_rss_mb:.0f} MB -> {page}")
        if not res.ok:
            print("  " + res.error.replace("\n", "\n  ")[-2500:])
        rows.append((nb, title_of(nb), res, page.exists()))
    items = "\n".join(
        f"<tr><td>{html.escape(nb.stem[:2])}</td><td>"
        + (f"<a href='{nb.stem}.html'>{html.escape(title)}</a>" if has_page else html.escape(title))
        + f"</td><td>{'ok' if r.ok else '<b>failed</b>'}</td><td>{r.seconds / 60:.1f} min</td>"
          f"<td>{r.peak_rss_mb / 1024:.1f} GiB</td></tr>"
        for nb, title, r, has_page in rows)
    mode = "smoke" if args.smoke else "full"
    (book / "index.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>Synthetic Data Workshop</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
td,th{{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}}</style></head><body>
<h1>Synthetic Data Workshop</h1>
<p>Generating, verifying, filtering and using synthetic training data, with real small models.
Executed in <b>{mode}</b> mode on {time.strftime('%Y-%m-%d %H:%M')}.</p>
<table><tr><th>#</th><th>chapter</th><th>status</th><th>wall time</th><th>peak memory</th></tr>
{items}</table></body></html>""", encoding="utf-8")
    failed = [r.notebook for _, _, r, _ in rows if not r.ok]
    print(f"book: {book / 'index.html'} ({len(rows)} notebooks, {time.perf_counter() - t_all:.0f}s)"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
