"""Heuristic quality filters for (prompt, response) rows, with per-filter counts and examples.

The cheapest quality signal is a rule: empty or tiny replies, huge replies, replies that
repeat one line over and over, replies in a script the pipeline does not expect, code fences
left open by a truncated generation, and the *overused phrases* that instruction-tuned models
pick up ("I'm sorry, but", "As an AI language model", refusals). Llama 3 (Dubey et al., 2024,
section 4.2.3) removes exactly such "overly apologetic tonal issues" and excessive emojis
with rules before any model-based filter runs; Gopher (Rae et al., 2021) introduced the
repetition and symbol-ratio rules used for web text.

>>> report = apply_filters(rows, default_filters())
>>> report.table()                 # how many rows each filter flags and removes
>>> report.examples("repetition")  # what those rows look like
>>> clean = report.kept_rows()

Every row ends up either kept or removed *by a named filter*; a filter that raises is
counted under ``filter_error`` instead of crashing the run, so nothing is lost silently.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from helpers.core.textutil import latin_ratio, strip_code_blocks, words

#: A check takes ``(prompt, response)`` and returns ``None`` to keep the row, or a short
#: string saying why it should go (shown next to the examples).
Check = Callable[[str, str], "str | None"]
#: A row check sees the whole row (e.g. a generator's ``finish_reason``), same return convention.
RowCheck = Callable[[Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class Filter:
    """One named rule.

    Attributes:
        name: short identifier used in reports (``"too_short"``).
        check: ``(prompt, response) -> None | reason``.
        description: one line for learners.
        row_check: optional ``row -> None | reason``; when given it is used instead of
            ``check``, for rules that need other fields of the row than the two texts.
    """

    name: str
    check: Check = field(repr=False)
    description: str = ""
    row_check: RowCheck | None = field(default=None, repr=False)


def as_text(value: Any) -> str:
    """Coerce a cell to text: ``None`` and NaN become ``""``, other non-strings ``str()``."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return value if isinstance(value, str) else str(value)


# --------------------------------------------------------------------------- single rules
def empty_filter() -> Filter:
    """Blank responses (or responses that are only whitespace or punctuation)."""

    def check(prompt: str, response: str) -> str | None:
        return "empty" if not any(ch.isalnum() for ch in response) else None

    return Filter("empty", check, "response is blank or has no letters or digits")


def cut_off_filter(key: str = "finish_reason", values: Sequence[str] = ("length",)) -> Filter:
    """Generations the generator itself reports as cut off by the token limit.

    :meth:`helpers.lm.generation.LM.chat` records ``finish_reason``: ``"stop"`` when the model
    ended its turn, ``"length"`` when it ran into ``max_new_tokens``. A reply stopped by the
    limit ends mid-sentence (or mid-code), which no text rule sees as reliably as this field.
    Rows without the field (real data, say) pass.
    """

    def row_check(row: Mapping[str, Any]) -> str | None:
        v = row.get(key)
        return f"{key}={v!r} (hit the token limit)" if v in values else None

    return Filter("cut_off", lambda prompt, response: None,
                  f"generator stopped at its token limit ({key} {' or '.join(map(repr, values))})", row_check)


def too_short_filter(min_words: int = 3) -> Filter:
    """Responses with fewer than ``min_words`` words."""

    def check(prompt: str, response: str) -> str | None:
        n = len(words(response))
        return f"{n} words < {min_words}" if n < min_words else None

    return Filter("too_short", check, f"fewer than {min_words} words")


def too_long_filter(max_chars: int = 6000) -> Filter:
    """Responses longer than ``max_chars`` characters (runaway generations, pasted dumps)."""

    def check(prompt: str, response: str) -> str | None:
        return f"{len(response):,} chars > {max_chars:,}" if len(response) > max_chars else None

    return Filter("too_long", check, f"more than {max_chars:,} characters")


def script_filter(min_latin: float = 0.8) -> Filter:
    """Prompt or response mostly in a non-Latin script.

    A script test, not a language detector: French passes, Chinese or Russian do not. That
    is what a pipeline for English data wants from a rule that costs nothing; a real
    language-ID model (fastText lid.176, as CCNet and Llama 3 use) separates languages that
    share a script.
    """

    def check(prompt: str, response: str) -> str | None:
        for part, text in (("response", response), ("prompt", prompt)):
            r = latin_ratio(text)
            if r == r and r < min_latin:
                return f"{part} {r:.0%} Latin letters"
        return None

    return Filter("non_latin", check, f"prompt or response under {min_latin:.0%} Latin-script letters")


def repetition_filter(max_dup_line_frac: float = 0.3, max_top_trigram_frac: float = 0.15,
                      min_words: int = 30, min_line_chars: int = 20) -> Filter:
    """Looping text: many duplicated lines, or one word trigram covering a big share.

    Gopher's rules (Rae et al., 2021, appendix A) in a small form. Only lines of at least
    ``min_line_chars`` characters count (a closing ``}`` repeats in any code), and only
    responses with at least ``min_words`` words are tested for trigrams (short texts
    repeat by chance).
    """

    def check(prompt: str, response: str) -> str | None:
        lines = [ln.strip() for ln in response.splitlines() if len(ln.strip()) >= min_line_chars]
        if len(lines) >= 4:
            dup = 1 - len(set(lines)) / len(lines)
            if dup > max_dup_line_frac:
                return f"{dup:.0%} of lines are repeats"
        w = words(response)
        if len(w) >= min_words:
            grams = Counter(zip(w, w[1:], w[2:]))
            gram, count = grams.most_common(1)[0]
            frac = count * 3 / len(w)
            if count > 2 and frac > max_top_trigram_frac:
                return f"trigram {' '.join(gram)!r} covers {frac:.0%} of words"
        return None

    return Filter("repetition", check,
                  f"over {max_dup_line_frac:.0%} duplicate lines or one trigram over {max_top_trigram_frac:.0%} of words")


def symbol_filter(max_symbol_frac: float = 0.3, min_chars: int = 20) -> Filter:
    """Prose that is mostly symbols (markup debris, encoding errors, ASCII art).

    Fenced code blocks are left out (code is legitimately symbol-heavy); texts with fewer
    than ``min_chars`` characters outside code are skipped.
    """

    def check(prompt: str, response: str) -> str | None:
        chars = [ch for ch in strip_code_blocks(response) if not ch.isspace()]
        if len(chars) < min_chars:
            return None
        frac = sum(1 for ch in chars if not ch.isalnum()) / len(chars)
        return f"{frac:.0%} symbols" if frac > max_symbol_frac else None

    return Filter("symbols", check, f"over {max_symbol_frac:.0%} of non-space characters are symbols")


def unclosed_code_filter() -> Filter:
    """An odd number of ````` fences: the reply was cut off inside a code block."""

    def check(prompt: str, response: str) -> str | None:
        n = response.count("```")
        return f"{n} code fences (odd)" if n % 2 else None

    return Filter("unclosed_code", check, "odd number of ``` fences (cut off inside code)")


def broken_json_filter() -> Filter:
    """A reply that starts like JSON (``{`` or ``[``) but does not parse: malformed or cut-off model output."""
    import json

    def check(prompt: str, response: str) -> str | None:
        text = response.strip()
        # "[The camera pans ...]" is a stage direction, not JSON: look at what follows the bracket
        if not (text.startswith("{") or re.match(r"\[\s*(?:[\[{\"\d\]-]|true|false|null)", text)):
            return None
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return f"starts like JSON but does not parse ({err.msg})"
        return None

    return Filter("broken_json", check, "starts like JSON but does not parse")


def prompt_echo_filter(min_chars: int = 20) -> Filter:
    """The response only repeats the prompt."""

    def check(prompt: str, response: str) -> str | None:
        p, r = " ".join(words(prompt)), " ".join(words(response))
        if len(p) >= min_chars and r and (r == p or (r.startswith(p) and len(r) < 1.2 * len(p))):
            return "repeats the prompt"
        return None

    return Filter("prompt_echo", check, "response only repeats the prompt")


# --------------------------------------------------------------------------- overused phrases
#: Phrase families that instruction-tuned models overuse, as case-insensitive regexes.
#: Written for this course; extend the lists for your own data.
OVERUSED_PHRASES: dict[str, list[str]] = {
    "apology": [
        r"\bI(?:'m| am) (?:so |very |truly )?sorry\b",
        r"\bI (?:sincerely )?apologi[sz]e\b",
        r"\bmy apologies\b",
        r"\bsorry for (?:the|any) confusion\b",
    ],
    "as_an_ai": [
        r"\bas an? (?:AI|artificial intelligence)\b",
        r"\bas a (?:large )?language model\b",
        r"\bI(?:'m| am) (?:just )?an? (?:AI|language model|chatbot)\b",
        r"\bI do(?: not|n't) have (?:personal )?(?:opinions|feelings|emotions|beliefs)\b",
    ],
    "refusal": [
        r"\bI (?:cannot|can't|can not|won't|am unable to|'m unable to|am not able to|'m not able to) "
        r"(?:help|assist|provide|fulfil+|comply|do that|answer|generate|create|write)\b",
        r"\bI(?:'m| am) not (?:able|allowed|permitted) to\b",
        r"\b(?:it is|it's) not (?:appropriate|ethical) (?:for me )?to\b",
    ],
    "knowledge_cutoff": [
        r"\b(?:my|the) knowledge cut-?off\b",
        r"\bI do(?: not|n't) have (?:access to )?(?:real-time|current|up-to-date) (?:information|data)\b",
        r"\bas of my (?:last )?(?:training|update)\b",
    ],
}


@dataclass
class PhraseMatcher:
    """Compiled phrase families; :meth:`find` returns ``(family, matched text)`` or ``None``."""

    families: Mapping[str, Sequence[str]] = field(default_factory=lambda: OVERUSED_PHRASES)

    def __post_init__(self) -> None:
        self._compiled = [(fam, re.compile(p, re.I)) for fam, pats in self.families.items() for p in pats]

    def find(self, text: str) -> tuple[str, str] | None:
        """The first family whose pattern matches ``text``, with the matched words."""
        for fam, rx in self._compiled:
            m = rx.search(text)
            if m:
                return fam, m.group(0)
        return None

    def find_all(self, text: str) -> list[tuple[str, str]]:
        """Every ``(family, matched text)`` in ``text``."""
        return [(fam, m.group(0)) for fam, rx in self._compiled for m in rx.finditer(text)]

    def family_counts(self, texts: Iterable[str]) -> Counter:
        """How many texts contain each family (a text counts once per family)."""
        out: Counter = Counter()
        for t in texts:
            out.update({fam for fam, _ in self.find_all(as_text(t))})
        return out


def overused_phrase_filter(families: Mapping[str, Sequence[str]] | None = None,
                           max_exclamations: int = 4, max_emojis: int = 3) -> Filter:
    """Apologies, "As an AI", refusals, knowledge-cutoff disclaimers, and shouting.

    Also flags replies with more than ``max_exclamations`` exclamation marks or
    ``max_emojis`` emojis, the other tonal rule Llama 3 mentions. Fenced code is left out
    (``!=`` is not shouting).
    """
    matcher = PhraseMatcher(families or OVERUSED_PHRASES)

    def check(prompt: str, response: str) -> str | None:
        prose = strip_code_blocks(response)
        hit = matcher.find(prose)
        if hit:
            return f"{hit[0]}: {hit[1]!r}"
        bangs = prose.count("!")
        if bangs > max_exclamations:
            return f"{bangs} exclamation marks"
        emojis = sum(1 for ch in prose if unicodedata.category(ch) == "So" and ord(ch) > 0x2000)
        if emojis > max_emojis:
            return f"{emojis} emojis"
        return None

    return Filter("overused_phrase", check, "apology, 'As an AI', refusal or cutoff phrase; too many ! or emojis")


def default_filters(min_words: int = 3, max_chars: int = 6000, min_latin: float = 0.8) -> list[Filter]:
    """The course's filter chain, cheapest and most certain first."""
    return [
        empty_filter(),
        cut_off_filter(),
        too_short_filter(min_words),
        too_long_filter(max_chars),
        script_filter(min_latin),
        unclosed_code_filter(),
        broken_json_filter(),
        repetition_filter(),
        symbol_filter(),
        prompt_echo_filter(),
        overused_phrase_filter(),
    ]


# --------------------------------------------------------------------------- running a chain
@dataclass
class FilterReport:
    """What a filter chain did to a list of rows.

    Attributes:
        rows: the input rows (dicts).
        filters: the filters, in order.
        removed_by: per row, the name of the *first* filter that flagged it (``None`` = kept).
        reasons: per row, that filter's reason text.
        flagged: per filter, the indices of every row it flags on its own (a row can be
            flagged by several filters; only the first one is charged with removing it).
        errors: filter name -> number of rows on which it raised (those rows are removed
            under ``filter_error``).
    """

    rows: list[dict]
    filters: list[Filter]
    removed_by: list[str | None]
    reasons: list[str | None]
    flagged: dict[str, list[int]]
    errors: Counter = field(default_factory=Counter)

    @property
    def keep(self) -> list[bool]:
        """One boolean per row."""
        return [r is None for r in self.removed_by]

    @property
    def n_kept(self) -> int:
        return sum(self.keep)

    def kept_rows(self) -> list[dict]:
        return [row for row, k in zip(self.rows, self.keep) if k]

    def removed_rows(self) -> list[dict]:
        """Removed rows, each with ``removed_by`` and ``reason`` added."""
        return [dict(row, removed_by=by, reason=why) for row, by, why in zip(self.rows, self.removed_by, self.reasons)
                if by is not None]

    def counts(self) -> Counter:
        """Rows removed per filter (first filter to flag a row is charged); sums to the total removed."""
        return Counter(r for r in self.removed_by if r is not None)

    def table(self):
        """A DataFrame: per filter, rows flagged on its own, rows it removed in the chain, share of input."""
        import pandas as pd

        removed = self.counts()
        n = len(self.rows)
        names = [f.name for f in self.filters] + (["filter_error"] if removed.get("filter_error") else [])
        desc = {f.name: f.description for f in self.filters}
        desc["filter_error"] = "a filter raised on this row (see .errors)"
        data = [{"filter": name, "flagged": len(self.flagged.get(name, [])), "removed": removed.get(name, 0),
                 "removed_%": 100 * removed.get(name, 0) / n if n else 0.0, "rule": desc.get(name, "")}
                for name in names]
        data.append({"filter": "TOTAL", "flagged": sum(1 for r in self.removed_by if r is not None),
                     "removed": n - self.n_kept, "removed_%": 100 * (n - self.n_kept) / n if n else 0.0,
                     "rule": f"{self.n_kept} of {n} rows kept"})
        return pd.DataFrame(data)

    def examples(self, name: str, k: int = 3, width: int = 160, key: str = "response") -> list[dict]:
        """Up to ``k`` rows removed by filter ``name``, texts cut to ``width`` characters."""
        out = []
        for row, by, why in zip(self.rows, self.removed_by, self.reasons):
            if by == name:
                text = as_text(row.get(key)).replace("\n", " ")
                out.append({"reason": why, key: text[:width] + ("..." if len(text) > width else "")})
                if len(out) >= k:
                    break
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = ", ".join(f"{name}: {c[name]}" for name in [f.name for f in self.filters] + ["filter_error"] if c.get(name))
        return f"kept {self.n_kept}/{len(self.rows)} rows; removed by {parts or 'nothing'}"


def apply_filters(rows: Sequence[Mapping[str, Any]], filters: Sequence[Filter] | None = None, *,
                  prompt_key: str = "prompt", response_key: str = "response") -> FilterReport:
    """Run every filter on every row; a row is removed by the first filter that flags it.

    All filters run on all rows (so :attr:`FilterReport.flagged` shows each rule's reach on
    its own); the chain order only decides which filter is charged with a removal. Missing
    keys, ``None`` and non-string cells are treated as text (``None`` -> ``""``).
    """
    filters = list(filters) if filters is not None else default_filters()
    names = [f.name for f in filters]
    if len(set(names)) != len(names):
        raise ValueError(f"filter names must be unique, got {names}")
    rows = [dict(r) for r in rows]
    removed_by: list[str | None] = [None] * len(rows)
    reasons: list[str | None] = [None] * len(rows)
    flagged: dict[str, list[int]] = {f.name: [] for f in filters}
    errors: Counter = Counter()
    for i, row in enumerate(rows):
        prompt, response = as_text(row.get(prompt_key)), as_text(row.get(response_key))
        for f in filters:
            try:
                why = f.row_check(row) if f.row_check is not None else f.check(prompt, response)
            except Exception as err:  # a buggy rule must not kill the run: count it
                errors[f.name] += 1
                if removed_by[i] is None:
                    removed_by[i], reasons[i] = "filter_error", f"{f.name}: {type(err).__name__}: {err}"
                continue
            if why is not None:
                flagged[f.name].append(i)
                if removed_by[i] is None:
                    removed_by[i], reasons[i] = f.name, why
    return FilterReport(rows, filters, removed_by, reasons, flagged, errors)


def frequent_openings(texts: Iterable[str], n_words: int = 3, top: int = 10) -> list[tuple[str, int]]:
    """The most common first ``n_words`` words of the texts: a quick way to *find* overused phrases."""
    c: Counter = Counter()
    for t in texts:
        w = as_text(t).split()[:n_words]
        if len(w) == n_words:
            c[" ".join(w)] += 1
    return c.most_common(top)
