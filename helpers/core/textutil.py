"""Small text utilities shared by the stages: fenced code blocks, word tokens, Latin-letter share.

>>> code_blocks("Here:\\n```python\\nprint(1)\\n```\\nand ```json {\\"a\\": 1}```")
['print(1)', '{"a": 1}']
>>> code_blocks(reply, languages=("python", "py", ""))   # only Python (or untagged) blocks
>>> strip_code_blocks("prose ```code``` more prose")
'prose   more prose'
>>> words("Hello, World_2 -- héllo!")
['hello', 'world_2', 'héllo']
>>> latin_ratio("café"), latin_ratio("café", ascii_only=True)
(1.0, 0.75)

Model replies are not always well-formed markdown: a closing fence may sit at the end of the
last code line (`` return x``` ``), a short block may be written on one line, and a reply cut
off by the token limit leaves its last fence open. The fence pattern here accepts all three,
which is why it is a regular expression and not a CommonMark parser (which would treat the
first two as inline code or never close the block).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable

__all__ = ["FENCED_BLOCK", "code_blocks", "strip_code_blocks", "words", "latin_ratio"]

#: One fenced code block: ```` ``` ````, an optional language tag (group 1), then either the
#: rest of the opening line (an info string, dropped) and a newline, or, for a one-line block
#: such as ```` ```json {"a": 1}``` ````, nothing more; the body (group 2) runs to the next
#: ```` ``` ```` or, for a block left open, to the end of the text.
FENCED_BLOCK = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)(?:[^\n`]*\n|[ \t]*)(.*?)(?:```|\Z)", re.S)


def code_blocks(text: str | None, languages: Iterable[str] | None = None) -> list[str]:
    """Bodies of the fenced code blocks in ``text``, in order (an unclosed last block is kept).

    ``languages``: keep only blocks whose tag is one of these, compared case-insensitively
    (``""`` stands for an untagged block); ``None`` keeps every block. Bodies lose their
    trailing whitespace.
    """
    langs = None if languages is None else {x.lower() for x in languages}
    return [m.group(2).rstrip() for m in FENCED_BLOCK.finditer(text or "")
            if langs is None or m.group(1).lower() in langs]


def strip_code_blocks(text: str, repl: str = " ") -> str:
    """``text`` with every fenced code block (fences included) replaced by ``repl``."""
    return FENCED_BLOCK.sub(repl, text)


_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens: runs of letters, digits and underscores, in any script."""
    return _WORD.findall(text.lower())


def latin_ratio(text: str, *, ascii_only: bool = False) -> float:
    """Share of the letters in ``text`` that are Latin script (``nan`` when there are no letters).

    By default any Latin letter counts (``é``, ``ß`` and ``ø`` too: French or German text
    scores 1.0), which is what a script filter wants. ``ascii_only=True`` counts only
    ``A-Z``/``a-z``, a cheap stand-in for "looks English".
    """
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return float("nan")
    if ascii_only:
        latin = sum(ch.isascii() for ch in letters)
    else:
        latin = sum(1 for ch in letters if ch.isascii() or "LATIN" in unicodedata.name(ch, ""))
    return latin / len(letters)
