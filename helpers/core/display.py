"""Browsable views of data and audio that work with and without a notebook front end.

Every view first shows a static HTML table (so executed notebooks, the HTML book and
papermill runs show the data), and adds an interactive ipywidgets control when the kernel
belongs to a front end that can render widgets (Jupyter, JupyterLab, VS Code, Colab). A
kernel cannot tell whether anyone is looking, so under papermill the widget is added too
(its saved output is a one-line placeholder) unless ``SDW_NO_WIDGETS=1`` is set (our
runner, test-suite and book builder set it); the static part never depends on it.
"""
from __future__ import annotations

import html
import os
from functools import partial
from typing import Any, Sequence

import numpy as np

NO_WIDGETS_ENV = "SDW_NO_WIDGETS"


def widgets_enabled() -> bool:
    """True inside a kernel whose front end can show ipywidgets, unless ``SDW_NO_WIDGETS`` is set.

    That is a Jupyter kernel (``ZMQInteractiveShell`` or a subclass: Jupyter, VS Code) or
    Google Colab's shell, with ipywidgets installed. Plain Python and terminal IPython get
    ``False``.
    """
    if os.environ.get(NO_WIDGETS_ENV, "").lower() in {"1", "true", "yes"}:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None:
        return False
    cls = type(ip)
    if cls.__module__.startswith("google.colab"):  # Colab's own shell renders ipywidgets
        return True
    return any(c.__name__ == "ZMQInteractiveShell" for c in cls.__mro__)


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


def _finite_rows(rows: Sequence[dict[str, Any]], score: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        v = r.get(score)
        try:
            if v is not None and np.isfinite(float(v)):
                out.append(r)
        except (TypeError, ValueError):
            pass
    return out


def threshold_view(rows: Sequence[dict[str, Any]], score: str, threshold: float, *, fields: Sequence[str] | None = None,
                   keep_above: bool = True, n: int = 3, max_chars: int = 200) -> str:
    """HTML for one threshold: how many rows survive, and the ``n`` rows on each side closest to the line.

    Rows whose ``score`` is missing or not finite are left out (and counted in the header).
    ``keep_above`` keeps rows with ``score >= threshold``; otherwise rows below it.
    """
    scored = _finite_rows(rows, score)
    unscored = len(rows) - len(scored)
    if not scored:
        return "<i>(no scored rows)</i>"
    thr = float(threshold)
    kept = [r for r in scored if (float(r[score]) >= thr) == keep_above]
    dropped = [r for r in scored if (float(r[score]) >= thr) != keep_above]
    near = lambda r: abs(float(r[score]) - thr)  # noqa: E731
    head = (f"<b>{html.escape(score)} {'≥' if keep_above else '<'} {thr:.4g}</b>: keeps {len(kept)} of {len(scored)} "
            f"scored rows ({len(kept) / len(scored):.0%})" + (f"; {unscored} rows without a score" if unscored else ""))
    return (head + f"<br><i>kept, closest to the line first ({min(n, len(kept))} of {len(kept)})</i>"
            + table_html(sorted(kept, key=near)[:n], fields, max_chars)
            + f"<i>dropped, closest to the line first ({min(n, len(dropped))} of {len(dropped)})</i>"
            + table_html(sorted(dropped, key=near)[:n], fields, max_chars))


def survivors_table(values: Sequence[float], thresholds: Sequence[float], keep_above: bool = True) -> str:
    """HTML table: for each threshold, how many of ``values`` survive (NaNs never do)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    cells = []
    for t in thresholds:
        k = int((v >= t).sum()) if keep_above else int((v < t).sum())
        cells.append(f"<tr><td>{t:.4g}</td><td>{k}</td><td>{k / max(1, len(v)):.0%}</td></tr>")
    return ("<table><thead><tr><th>threshold</th><th>rows kept</th><th>share</th></tr></thead><tbody>"
            + "".join(cells) + "</tbody></table>")


def threshold_explorer(rows: Sequence[dict[str, Any]], score: str, *, fields: Sequence[str] | None = None,
                       initial: float | None = None, keep_above: bool = True, n: int = 3,
                       max_chars: int = 200) -> None:
    """Explore a threshold on ``rows[i][score]``: how many rows survive, and the rows either side of the line.

    Always shows a static view (a table of survivors at a few quantile thresholds, then the
    split at ``initial``, default the median, with the ``n`` kept and ``n`` dropped rows
    closest to the line), so papermill runs and the HTML book show it. When
    :func:`widgets_enabled`, a slider below it re-draws the split for any threshold.
    """
    scored = _finite_rows(rows, score)
    if not scored:
        _show_html("<i>(no scored rows)</i>")
        return
    vals = np.array([float(r[score]) for r in scored])
    thr0 = float(np.median(vals)) if initial is None else float(initial)
    tol = 0.005 * float(np.ptp(vals))  # leave out quantiles that sit on the starting threshold
    qs = sorted({q for q in (float(np.quantile(vals, f)) for f in (0.1, 0.25, 0.5, 0.75, 0.9)) if abs(q - thr0) > tol}
                | {thr0})
    view = partial(threshold_view, rows, score, fields=fields, keep_above=keep_above, n=n, max_chars=max_chars)
    _show_html(f"<b>rows kept at a few thresholds on {html.escape(score)}</b>"
               + survivors_table(vals, qs, keep_above) + view(thr0))
    if not widgets_enabled():
        return
    import ipywidgets as w
    from IPython.display import display

    slider = w.FloatSlider(value=thr0, min=float(vals.min()), max=float(vals.max()),
                           step=float(vals.max() - vals.min()) / 200 or 1.0, description=score,
                           continuous_update=False, readout_format=".3g")
    out = w.HTML("<i>Move the slider: the rows either side of the new line appear here "
                 "(the view above is the starting threshold).</i>")
    slider.observe(lambda ch: setattr(out, "value", view(ch["new"])), "value")
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




__all__: list[str] = ["widgets_enabled", "table_html", "browse", "threshold_view", "survivors_table",
                      "threshold_explorer", "audio", "audio_table"]
