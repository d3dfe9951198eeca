"""Browsable views of data and audio that work with and without a notebook front end.

Every view prints a static HTML table (so executed notebooks, the HTML book and
papermill runs show the data), and adds an interactive ipywidgets control when a live
front end can render it. Set ``SDW_NO_WIDGETS=1`` (the test-suite and book builder do)
to get the static part only.
"""
from __future__ import annotations

import html
import os
from typing import Any, Callable, Sequence

import numpy as np

NO_WIDGETS_ENV = "SDW_NO_WIDGETS"


def widgets_enabled() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed, unless ``SDW_NO_WIDGETS`` is set."""
    if os.environ.get(NO_WIDGETS_ENV, "").lower() in {"1", "true", "yes"}:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _cell(value: Any, max_chars: int) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    if len(text) > max_chars:
        text = text[:max_chars] + f"… [+{len(text) - max_chars} chars]"
    return html.escape(text).replace("\n", "<br>")


def table_html(rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None, max_chars: int = 300) -> str:
    """An HTML table of ``rows`` (dicts), long values cut to ``max_chars``."""
    if not rows:
        return "<p><i>(no rows)</i></p>"
    fields = list(fields or rows[0].keys())
    head = "".join(f"<th style='text-align:left'>{html.escape(str(f))}</th>" for f in fields)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left;vertical-align:top'>{_cell(r.get(f, ''), max_chars)}</td>"
                         for f in fields) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _show_html(text: str) -> None:
    try:
        from IPython.display import HTML, display

        display(HTML(text))
    except ImportError:  # plain Python: print something readable
        import re

        print(re.sub(r"<[^>]+>", " ", text))


def browse(rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None, *, n: int = 5,
           page_size: int = 5, max_chars: int = 300, title: str | None = None) -> None:
    """Show the first ``n`` rows as a table, plus (live front end) a pager and text search.

    Args:
        rows: list of dicts (e.g. ``list(dataset)`` or ``df.to_dict("records")``).
        fields: columns to show (default: the first row's keys).
        n: rows in the static table.
        page_size: rows per page in the interactive pager.
        max_chars: long values are cut to this many characters.
        title: a heading over the view.
    """
    rows = list(rows)
    head = f"<b>{html.escape(title)}</b> " if title else ""
    _show_html(f"{head}<i>{len(rows)} rows; first {min(n, len(rows))} shown</i>" + table_html(rows[:n], fields, max_chars))
    if not widgets_enabled() or len(rows) <= n:
        return
    import ipywidgets as w
    from IPython.display import display

    search = w.Text(placeholder="filter: text contained in any field", description="Search")
    page = w.IntSlider(min=0, max=max(0, (len(rows) - 1) // page_size), description="Page")
    out = w.HTML()

    def refresh(*_: Any) -> None:
        q = search.value.lower().strip()
        hits = [r for r in rows if not q or any(q in str(v).lower() for v in r.values())]
        page.max = max(0, (len(hits) - 1) // page_size)
        sel = hits[page.value * page_size:(page.value + 1) * page_size]
        out.value = f"<i>{len(hits)} matching rows</i>" + table_html(sel, fields, max_chars)

    search.observe(refresh, "value")
    page.observe(refresh, "value")
    refresh()
    display(w.VBox([w.HBox([search, page]), out]))


def threshold_explorer(rows: Sequence[dict[str, Any]], score: str, *, fields: Sequence[str] | None = None,
                       initial: float | None = None, keep_above: bool = True, n: int = 3,
                       max_chars: int = 200) -> None:
    """Show what a threshold on ``rows[i][score]`` keeps and drops.

    Prints the split at ``initial`` (default: the median) with ``n`` examples on each side;
    in a live front end a slider moves the threshold.
    """
    rows = [r for r in rows if r.get(score) is not None and np.isfinite(r[score])]
    if not rows:
        _show_html("<i>(no scored rows)</i>")
        return
    vals = np.array([r[score] for r in rows], dtype=float)
    thr0 = float(np.median(vals)) if initial is None else float(initial)

    def render(thr: float) -> str:
        kept = [r for r in rows if (r[score] >= thr) == keep_above]
        dropped = [r for r in rows if (r[score] >= thr) != keep_above]
        kept = sorted(kept, key=lambda r: r[score], reverse=keep_above)
        dropped = sorted(dropped, key=lambda r: r[score], reverse=keep_above)
        return (f"<b>{score} {'≥' if keep_above else '<'} {thr:.4g}</b>: keeps {len(kept)} / {len(rows)} "
                f"({len(kept) / len(rows):.0%})<br><i>kept (best first)</i>" + table_html(kept[:n], fields, max_chars)
                + "<i>dropped (closest to the line last)</i>" + table_html(dropped[-n:], fields, max_chars))

    if not widgets_enabled():
        _show_html(render(thr0))
        return
    import ipywidgets as w
    from IPython.display import display

    slider = w.FloatSlider(value=thr0, min=float(vals.min()), max=float(vals.max()),
                           step=float(vals.max() - vals.min()) / 100 or 1.0, description=score,
                           continuous_update=False, readout_format=".3g")
    out = w.HTML(render(thr0))
    slider.observe(lambda ch: setattr(out, "value", render(ch["new"])), "value")
    display(w.VBox([slider, out]))


def audio(data: "str | os.PathLike | np.ndarray", rate: int | None = None, caption: str | None = None) -> None:
    """Inline audio player for a file path or a float array (``rate`` needed for arrays)."""
    from IPython.display import Audio, display

    if caption:
        _show_html(f"<b>{html.escape(caption)}</b>")
    if isinstance(data, np.ndarray):
        if rate is None:
            raise ValueError("rate is needed to play an array")
        display(Audio(data, rate=rate, normalize=True))
    else:
        display(Audio(filename=str(data)))


def audio_table(items: Sequence[dict[str, Any]], audio_field: str = "path", fields: Sequence[str] = ()) -> None:
    """A few players, each with its fields printed above it (e.g. text, voice, WER)."""
    for it in items:
        cap = " | ".join(f"{f}: {it.get(f)}" for f in fields)
        audio(it[audio_field], rate=it.get("rate") or it.get("sampling_rate"), caption=cap or None)




__all__: list[str] = ["widgets_enabled", "table_html", "browse", "threshold_explorer", "audio", "audio_table"]
