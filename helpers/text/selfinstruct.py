"""Self-Instruct / Alpaca bootstrapping pieces, and random attribute injection.

The loop of Self-Instruct (Wang et al. 2023, arXiv:2212.10560) and Stanford Alpaca (Taori et al.
2023), one step per function here:

1. :func:`load_seed_tasks` reads the hand-written seed tasks (``data/seed_tasks.jsonl``).
2. :func:`fewshot_conversation` samples a few tasks from the pool into a prompt, optionally
   with a random topic, persona, difficulty and output format (:func:`sample_attributes`,
   the trick of phi-1, Cosmopedia and Persona Hub).
3. :func:`parse_instruction` cleans one model reply into one instruction, or says why it is
   malformed (counted, never raised).
4. :func:`heuristic_reject` drops too short or long instructions, ones that ask for images or
   files, and replies that are not an instruction, with a named reason.
5. :class:`NoveltyFilter` keeps an instruction only when its ROUGE-L F-measure against every
   instruction already in the pool is below 0.7 (the Self-Instruct rule). It tokenises each
   text once with ``rouge_score``'s tokenizer and skips most pairs with a cheap bound, so it
   stays fast for pools of many thousands.
6. :func:`response_conversation` asks the model to answer each kept instruction.
7. the notebook saves the result with :func:`helpers.core.io.save_dataset` (rows plus dataset card).

:class:`FilterLog` counts every drop by reason and keeps a few examples of each, so a
notebook can show what each step removed.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from helpers.core.env import data_dir
from helpers.core.textutil import latin_ratio

#: Keys every seed task has (``input`` may be empty).
SEED_KEYS = ("instruction", "input", "output", "category")
#: ROUGE-L threshold of Self-Instruct and Alpaca: a new instruction must score below it.
ROUGE_THRESHOLD = 0.7
#: The four attribute lists and the files that hold them.
ATTRIBUTE_FILES = {"topic": "topics.txt", "persona": "personas.txt",
                   "difficulty": "difficulty.txt", "format": "formats.txt"}

#: Words that mark tasks a text-only model cannot do (Self-Instruct's blacklist, extended).
BLACKLIST = ("image", "images", "picture", "pictures", "photo", "photos", "graph", "graphs",
             "draw", "drawing", "plot", "chart", "diagram", "flowchart", "video", "videos",
             "audio", "recording", "file", "files", "attached", "attachment", "upload",
             "download", "map", "maps", "screenshot", "go to", "click", "url")
# "video call" is a topic, not a request for a video
_BLACKLIST_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in BLACKLIST) + r")\b(?! call)", re.I)

#: Openings that show the reply is chatter or an answer, not an instruction.
_NOT_INSTRUCTION_RE = re.compile(
    r"^(sure|okay|ok|certainly|of course|here is|here are|here's|i am|i'm|i have|i will|i'll|"
    r"as an ai|as a language model|sorry|i apologize|i apologise|output|input|answer|response|"
    r"example|note|thank you|thanks|great|what a|hello|hi\b|dear)\b", re.I)
#: Words that show the model talked about the prompt instead of writing a task.
_META_RE = re.compile(r"\b(task instruction|new instruction|new task|persona|difficulty level|ai assistant|"
                      r"write it the way|would ask it|reply with the task)\b"
                      r"|\b(difficulty|format|topic)\s*:", re.I)

_PREFIX_RE = re.compile(
    r"^\s*(?:[-*•#>]+\s*|\(?\d{1,3}[.):](?:\s+|$)|(?:new\s+)?(?:task|instruction|question|prompt)"
    r"(?:\s*\d+)?\s*[:.\-]\s*)+", re.I)


# ---------------------------------------------------------------------------- data files
def load_seed_tasks(path: str | Path | None = None) -> tuple[list[dict[str, str]], Counter]:
    """Read seed tasks from a JSON-lines file.

    Returns the valid tasks and a :class:`~collections.Counter` of skipped lines by reason
    (``"invalid json"``, ``"not an object"``, ``"missing instruction"``, ``"duplicate"``), so
    a broken line is counted, never silently lost and never a crash.
    """
    path = Path(path) if path else data_dir() / "seed_tasks.jsonl"
    tasks: list[dict[str, str]] = []
    skipped: Counter = Counter()
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            skipped["invalid json"] += 1
            continue
        if not isinstance(obj, dict):
            skipped["not an object"] += 1
            continue
        ins = str(obj.get("instruction") or "").strip()
        if not ins:
            skipped["missing instruction"] += 1
            continue
        key = " ".join(ins.lower().split())
        if key in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(key)
        task = {k: str(obj.get(k) or "").strip() for k in SEED_KEYS}
        task["category"] = task["category"] or "unknown"
        if "id" in obj:
            task["id"] = str(obj["id"])
        tasks.append(task)
    return tasks, skipped


def read_list(path: str | Path) -> list[str]:
    """Non-empty lines of a text file, without ``#`` comment lines and duplicates (order kept)."""
    out: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in out:
            out.append(line)
    return out


def load_attributes(folder: str | Path | None = None) -> dict[str, list[str]]:
    """The topic, persona, difficulty and format lists (``data/*.txt``)."""
    folder = Path(folder) if folder else data_dir()
    attrs = {key: read_list(folder / name) for key, name in ATTRIBUTE_FILES.items()}
    empty = [k for k, v in attrs.items() if not v]
    if empty:
        raise ValueError(f"attribute lists are empty: {empty}")
    return attrs


def sample_attributes(rng: random.Random, attributes: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """One random value from each attribute list."""
    return {key: rng.choice(list(values)) for key, values in attributes.items()}


def attribute_space(attributes: Mapping[str, Sequence[str]]) -> int:
    """How many distinct attribute combinations the lists allow."""
    n = 1
    for values in attributes.values():
        n *= len(values)
    return n


# ---------------------------------------------------------------------------- prompts
#: The request used in every few-shot turn.
REQUEST = "Write one new task for an AI assistant."


def attribute_request(attrs: Mapping[str, str]) -> str:
    """The final request of a randomized prompt, built from sampled attributes."""
    parts = [REQUEST]
    if "topic" in attrs:
        parts.append(f"It must be about {attrs['topic']}.")
    if "persona" in attrs:
        parts.append(f"Write it the way {attrs['persona']} would ask it.")
    if "difficulty" in attrs:
        parts.append(f"Difficulty: {attrs['difficulty'].split(':')[0]}.")
    if "format" in attrs:
        parts.append(f"The answer should be {attrs['format']}.")
    parts.append("Reply with the task only.")
    return " ".join(parts)


def format_task(task: Mapping[str, str]) -> str:
    """A seed task as the model should write one: the instruction, then its input if any."""
    ins = task.get("instruction", "").strip()
    inp = (task.get("input") or "").strip()
    return f"{ins}\n{inp}" if inp else ins


def fewshot_conversation(examples: Sequence[Mapping[str, str]],
                         attributes: Mapping[str, str] | None = None,
                         with_input: bool = False) -> list[dict[str, str]]:
    """A chat conversation that shows ``examples`` as earlier turns and asks for one more.

    Each example becomes a user turn (:data:`REQUEST`) and an assistant turn (the example
    instruction). Small chat models copy this shape much more reliably than a numbered
    list in one message. With ``attributes`` the last request also names a topic, persona,
    difficulty and format (:func:`attribute_request`); without them it is the plain
    Self-Instruct prompt. ``with_input=False`` shows instructions only (shorter prompts).
    """
    msgs: list[dict[str, str]] = []
    for ex in examples:
        msgs.append({"role": "user", "content": REQUEST})
        msgs.append({"role": "assistant", "content": format_task(ex) if with_input
                     else ex.get("instruction", "").strip()})
    last = attribute_request(attributes) if attributes else REQUEST
    msgs.append({"role": "user", "content": last})
    return msgs


def sample_examples(rng: random.Random, seeds: Sequence[Mapping[str, str]], k: int,
                    machine: Sequence[Mapping[str, str]] = (), k_machine: int = 0) -> list[Mapping[str, str]]:
    """``k`` human seed tasks plus ``k_machine`` generated ones, shuffled (Self-Instruct uses 6 + 2)."""
    picked = rng.sample(list(seeds), min(k, len(seeds)))
    if machine and k_machine:
        picked += rng.sample(list(machine), min(k_machine, len(machine)))
    rng.shuffle(picked)
    return picked


def response_conversation(instruction: str, input_text: str = "") -> list[dict[str, str]]:
    """The prompt that asks the model to carry out one instruction (Alpaca's second step)."""
    content = instruction.strip()
    if input_text and input_text.strip():
        content += "\n\n" + input_text.strip()
    return [{"role": "user", "content": content}]


# ---------------------------------------------------------------------------- parsing
@dataclass
class Parsed:
    """One model reply turned into an instruction, or the reason it could not be."""

    raw: str
    instruction: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_instruction(text: Any, truncated: bool = False, max_chars: int = 2000) -> Parsed:
    """Clean one reply into one instruction.

    Strips list markers and ``Task:`` labels, keeps the first non-empty paragraph (a task
    with its input stays together when the input follows on the next lines), and drops
    surrounding quotes. Errors: ``"empty"``, ``"not text"``, ``"truncated"`` (the reply hit
    the length limit mid-sentence), ``"too long"`` (over ``max_chars`` before cleaning).
    """
    if not isinstance(text, str):
        return Parsed(repr(text), error="not text")
    raw = text
    if len(raw) > max_chars:
        return Parsed(raw[:max_chars], error="too long")
    body = raw.strip()
    if not body:
        return Parsed(raw, error="empty")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    first = paragraphs[0]
    lines = [ln.strip() for ln in first.splitlines() if ln.strip()]
    # a numbered list of several tasks: keep only the first one
    if len(lines) > 1 and all(re.match(r"^\(?\d{1,3}[.):]\s", ln) for ln in lines[:2]):
        lines = lines[:1]
    cleaned = [_PREFIX_RE.sub("", ln, count=1).strip() for ln in lines]
    cleaned = [ln for ln in cleaned if ln]
    if not cleaned:
        return Parsed(raw, error="empty")
    ins = "\n".join(cleaned).strip().strip('"“”').strip()
    if not ins:
        return Parsed(raw, error="empty")
    if truncated and len(paragraphs) == 1 and not re.search(r"[.?!:)\]\"”]$", ins):
        return Parsed(raw, ins, error="truncated")
    return Parsed(raw, ins)


# ---------------------------------------------------------------------------- heuristics
def heuristic_reject(instruction: str, min_words: int = 3, max_words: int = 150) -> str | None:
    """Why an instruction should be dropped, or ``None`` to keep it.

    Reasons (checked in this order): ``"empty"``, ``"too short"``, ``"too long"``,
    ``"not english"`` (under half the letters are ASCII, or no ROUGE tokens at all),
    ``"needs image or file"`` (Self-Instruct's blacklist), ``"not an instruction"`` (starts
    like chatter or an answer, or starts with punctuation), ``"talks about the prompt"``,
    ``"repetitive"`` (the same words over and over).
    """
    text = (instruction or "").strip()
    if not text:
        return "empty"
    words = text.split()
    if len(words) < min_words:
        return "too short"
    if len(words) > max_words:
        return "too long"
    if not latin_ratio(text, ascii_only=True) >= 0.5 or not rouge_tokens(text):  # nan (no letters) fails too
        return "not english"
    if _BLACKLIST_RE.search(text):
        return "needs image or file"
    if not text[0].isalnum() or _NOT_INSTRUCTION_RE.match(text):
        return "not an instruction"
    if _META_RE.search(text):
        return "talks about the prompt"
    toks = [w.lower() for w in re.findall(r"\w+", text)]
    if len(toks) >= 8 and len(set(toks)) / len(toks) < 0.4:
        return "repetitive"
    return None


# ---------------------------------------------------------------------------- ROUGE-L novelty
_TOKENIZER = None


def rouge_tokens(text: str) -> list[str]:
    """Tokens exactly as ``rouge_score`` makes them (lower-case ASCII words, no stemming)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from rouge_score.tokenizers import DefaultTokenizer

        _TOKENIZER = DefaultTokenizer(use_stemmer=False)
    return _TOKENIZER.tokenize(text or "")


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else (prev[j + 1] if prev[j + 1] > cur[j] else cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(a: Sequence[Any], b: Sequence[Any]) -> float:
    """ROUGE-L F-measure of two token lists (equals ``rouge_score``'s ``rougeL`` fmeasure)."""
    if not a or not b:
        return 0.0
    lcs = lcs_length(a, b)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(b), lcs / len(a)
    return 2 * p * r / (p + r)


@dataclass
class NoveltyCheck:
    """Result of one :meth:`NoveltyFilter.check`: best ROUGE-L against the pool, and with what."""

    score: float
    nearest: int  # index into the pool, -1 when the pool is empty
    exact_pairs: int  # how many pairs needed the full LCS (the rest were ruled out by the bound)

    def novel(self, threshold: float = ROUGE_THRESHOLD) -> bool:
        return self.score < threshold


class NoveltyFilter:
    """A growing pool of instructions; a new one is novel when ROUGE-L < ``threshold`` to all.

    Each text is tokenised once and its token counts go into an inverted index. For a
    candidate, the LCS with any pool item is at most the bag-of-words overlap
    ``sum_t min(count_a(t), count_b(t))``, so ``2 * overlap / (len_a + len_b)`` bounds the
    ROUGE-L F-measure. Only pool items whose bound reaches the threshold get the exact LCS;
    for short instructions that is a tiny share of the pool. Results equal a brute-force
    ``rouge_score`` comparison (see the tests).

    >>> f = NoveltyFilter(["Write a poem about the sea."])
    >>> f.add_if_novel("Write a poem about the sea today.")   # too close
    (False, ...)
    """

    def __init__(self, texts: Iterable[str] = (), threshold: float = ROUGE_THRESHOLD) -> None:
        self.threshold = threshold
        self.texts: list[str] = []
        self.tokens: list[list[str]] = []
        self._lengths: list[int] = []
        self._vocab: dict[str, int] = {}
        self._postings: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        self.pairs_checked = 0
        self.pairs_exact = 0
        for t in texts:
            self.add(t)

    def __len__(self) -> int:
        return len(self.texts)

    def _ids(self, toks: Sequence[str], grow: bool) -> list[int]:
        out = []
        for t in toks:
            i = self._vocab.get(t)
            if i is None:
                if not grow:
                    i = -1
                else:
                    i = self._vocab[t] = len(self._vocab)
            out.append(i)
        return out

    def add(self, text: str) -> int:
        """Put ``text`` into the pool (no check); returns its index."""
        toks = rouge_tokens(text)
        idx = len(self.texts)
        self.texts.append(text)
        self.tokens.append(toks)
        self._lengths.append(len(toks))
        for tid, c in Counter(self._ids(toks, grow=True)).items():
            rows, counts = self._postings[tid]
            rows.append(idx)
            counts.append(c)
        return idx

    def check(self, text: str) -> NoveltyCheck:
        """Best ROUGE-L F-measure of ``text`` against the pool (0 for an empty pool or text)."""
        toks = rouge_tokens(text)
        n = len(self.texts)
        if not toks or n == 0:
            return NoveltyCheck(0.0, -1, 0)
        overlap = np.zeros(n, dtype=np.int32)
        for tid, c in Counter(self._ids(toks, grow=False)).items():
            if tid < 0 or tid not in self._postings:
                continue
            rows, counts = self._postings[tid]
            np.add.at(overlap, np.asarray(rows), np.minimum(np.asarray(counts), c))
        lengths = np.asarray(self._lengths)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(lengths > 0, 2.0 * overlap / (len(toks) + lengths), 0.0)
        order = np.argsort(-bound)
        best, best_i, exact = 0.0, -1, 0
        for j in order:
            if bound[j] <= best or bound[j] == 0:
                break  # no remaining item can beat the best exact score found so far
            exact += 1
            s = rouge_l(self.tokens[j], toks)
            if s > best:
                best, best_i = s, int(j)
            if best >= self.threshold:
                break  # already not novel; the exact maximum does not matter
        self.pairs_checked += n
        self.pairs_exact += exact
        return NoveltyCheck(float(best), best_i, exact)

    def add_if_novel(self, text: str) -> tuple[bool, NoveltyCheck]:
        """Add ``text`` when it is novel; returns (added, check)."""
        res = self.check(text)
        ok = res.novel(self.threshold)
        if ok:
            self.add(text)
        return ok, res


def rouge_l_max_bruteforce(text: str, pool: Sequence[str]) -> float:
    """Slow reference: best ``rouge_score`` rougeL F-measure of ``text`` against ``pool``."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return max((scorer.score(p, text)["rougeL"].fmeasure for p in pool), default=0.0)


# ---------------------------------------------------------------------------- bookkeeping
@dataclass
class FilterLog:
    """Counts of every item seen, kept, and dropped by reason, with a few examples each."""

    seen: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    max_examples: int = 5

    def keep(self) -> None:
        self.seen += 1
        self.kept += 1

    def drop(self, reason: str, example: str = "") -> None:
        self.seen += 1
        self.dropped[reason] += 1
        if len(self.examples[reason]) < self.max_examples:
            self.examples[reason].append(example)

    def check(self) -> None:
        """Every item is either kept or dropped for a counted reason (no silent loss)."""
        assert self.kept + sum(self.dropped.values()) == self.seen, "filter counts do not add up"

    def table(self) -> "Any":
        """A ``pandas.DataFrame``: one row per outcome with count and share."""
        import pandas as pd

        rows = [("kept", self.kept)] + self.dropped.most_common()
        df = pd.DataFrame(rows, columns=["outcome", "count"])
        df["share"] = df["count"] / max(self.seen, 1)
        return df

    def __str__(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in self.dropped.most_common()) or "none"
        return f"{self.kept}/{self.seen} kept; dropped: {parts}"


@dataclass
class Candidate:
    """One generated instruction on its way through the filters."""

    method: str
    raw: str
    instruction: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # None = kept
    rouge_max: float = float("nan")
    nearest: str = ""


def filter_candidates(replies: Sequence[str], truncated: Sequence[bool], novelty: NoveltyFilter,
                      method: str = "", attributes: Sequence[Mapping[str, str]] | None = None,
                      log: FilterLog | None = None, **heuristic_kwargs: Any) -> list[Candidate]:
    """Parse, heuristic-filter and novelty-filter model replies, in order.

    Each kept instruction joins ``novelty``'s pool at once, so two near-identical replies in
    the same batch cannot both survive. Every reply comes back as a :class:`Candidate` with
    ``reason=None`` (kept) or the reason it was dropped; ``log`` counts them.
    """
    log = log if log is not None else FilterLog()
    out: list[Candidate] = []
    for k, text in enumerate(replies):
        attrs = dict(attributes[k]) if attributes is not None else {}
        parsed = parse_instruction(text, truncated=bool(truncated[k]) if truncated else False)
        cand = Candidate(method, parsed.raw, parsed.instruction, attrs)
        if not parsed.ok:
            cand.reason = f"malformed: {parsed.error}"
        else:
            why = heuristic_reject(parsed.instruction, **heuristic_kwargs)
            if why:
                cand.reason = why
            else:
                added, res = novelty.add_if_novel(parsed.instruction)
                cand.rouge_max = res.score
                cand.nearest = novelty.texts[res.nearest] if res.nearest >= 0 else ""
                if not added:
                    cand.reason = f"rouge-l >= {novelty.threshold}"
        if cand.reason is None:
            log.keep()
        else:
            log.drop(cand.reason, cand.instruction or cand.raw[:200])
        out.append(cand)
    return out


# ---------------------------------------------------------------------------- one round of the loop
ATTRIBUTE_KEYS = tuple(ATTRIBUTE_FILES)


def round_items(method: str, round_idx: int, n: int, rng: random.Random,
                seeds: Sequence[Mapping[str, str]], machine: Sequence[Mapping[str, str]] = (),
                attributes: Mapping[str, Sequence[str]] | None = None,
                k_seed: int = 6, k_machine: int = 2) -> list[dict[str, Any]]:
    """The ``n`` prompts of one bootstrapping round, as job items with a unique ``id``.

    Each prompt shows ``k_seed`` human seeds plus ``k_machine`` instructions the loop made
    earlier (none in round 0), as Self-Instruct does. With ``attributes`` every prompt also
    gets one random topic, persona, difficulty and format. Attribute columns are always
    present (empty strings for plain prompts) so the rows form one table.
    """
    items = []
    for i in range(n):
        examples = sample_examples(rng, seeds, k_seed, machine, k_machine)
        attrs = sample_attributes(rng, attributes) if attributes else {}
        item: dict[str, Any] = {"id": f"{method}-r{round_idx}-{i:05d}", "method": method, "round": round_idx,
                                "conversation": fewshot_conversation(examples, attrs or None)}
        item.update({k: attrs.get(k, "") for k in ATTRIBUTE_KEYS})
        items.append(item)
    return items


def generate_replies(lm: Any, items: Sequence[Mapping[str, Any]], *, seed: int | None = None,
                     **chat_kwargs: Any) -> list[dict[str, Any]]:
    """Run ``lm.chat`` on the items' conversations; one row per item (ready for a job shard)."""
    gens = lm.chat([it["conversation"] for it in items], seed=seed, progress=False, **chat_kwargs)
    rows = []
    for it, g in zip(items, gens):
        row = {k: v for k, v in it.items() if k != "conversation"}
        row.update(raw=g.text, truncated=g.finish_reason == "length", new_tokens=g.new_tokens)
        rows.append(row)
    return rows


def shard_seed(base: int, items: Sequence[Mapping[str, Any]]) -> int:
    """A seed that depends on the run seed and which items a shard holds (stable on resume)."""
    import zlib

    return (base * 1_000_003 + zlib.crc32(str(items[0]["id"]).encode())) % (2**31) if items else base


@dataclass
class LoopResult:
    """What :func:`bootstrap` produced for each method: every candidate, the counts, the cost."""

    candidates: dict[str, list[Candidate]]
    logs: dict[str, FilterLog]
    new_tokens: dict[str, int]
    seconds: float

    def kept(self, method: str) -> list[Candidate]:
        """The candidates of ``method`` that passed every filter."""
        return [c for c in self.candidates[method] if c.reason is None]

    def well_formed(self, method: str) -> list[Candidate]:
        """Candidates that passed parsing and the heuristics (kept, or dropped only as not novel)."""
        return [c for c in self.candidates[method] if c.reason is None or c.reason.startswith("rouge")]


def bootstrap(lm: Any, seeds: Sequence[Mapping[str, str]], attributes: Mapping[str, Sequence[str]], *,
              n_prompts: int, rounds: int, job_root: str | Path, config: Mapping[str, Any],
              methods: Sequence[str] = ("plain", "randomized"), k_seed: int = 6, k_machine: int = 2,
              seed: int = 0, threshold: float = ROUGE_THRESHOLD, batch_size: int = 16,
              log: Any = print, **gen_kwargs: Any) -> LoopResult:
    """Run the Self-Instruct loop for each method at the same budget, resumably.

    For every round and method: build the prompts (:func:`round_items`; ``"randomized"``
    prompts also name a random topic, persona, difficulty and format), generate the replies as
    a :class:`~helpers.core.jobs.ResumableJob` under ``job_root`` (one folder per method and round,
    keyed by ``config`` plus everything else that shapes the replies: the rendered prompts of the
    round, the model's name and path, ``seed``, ``batch_size`` and ``gen_kwargs``; so a re-run
    continues where it stopped and a changed prompt or setting starts afresh), then parse, heuristic-filter and novelty-filter them
    (:func:`filter_candidates`) against that method's own pool, which starts with the seed tasks.
    From the second round on each prompt also shows ``k_machine`` instructions the loop kept
    earlier. ``n_prompts`` is the budget per method, split evenly over the rounds;
    ``gen_kwargs`` go to ``lm.chat`` (``max_new_tokens``, ``temperature``, ``top_p``).
    """
    import time

    from helpers.core.jobs import ResumableJob, fingerprint
    from helpers.lm.generation import generator_id

    bad = [m for m in methods if m not in ("plain", "randomized")]
    if bad:
        raise ValueError(f"unknown methods {bad}: use 'plain' and/or 'randomized'")
    base_config = dict(config) | {"_model": str(getattr(lm, "name", "?")),
                                  "_model_path": generator_id(lm),
                                  "_seed": seed, "_batch_size": batch_size, "_gen_kwargs": dict(gen_kwargs)}
    per_round = [n_prompts // rounds + (r < n_prompts % rounds) for r in range(rounds)]
    result = LoopResult({m: [] for m in methods}, {m: FilterLog() for m in methods}, {m: 0 for m in methods}, 0.0)
    pools = {m: NoveltyFilter([s["instruction"] for s in seeds], threshold=threshold) for m in methods}
    t0 = time.perf_counter()
    for r in range(rounds):
        for method in methods:
            rng = random.Random(f"{seed}-{method}-{r}")
            machine = [{"instruction": c.instruction} for c in result.kept(method)]
            items = round_items(method, r, per_round[r], rng, seeds, machine,
                                attributes if method == "randomized" else None, k_seed, k_machine if r else 0)
            job = ResumableJob(job_root, name=f"{method}-r{r}", key="id", shard_size=batch_size * 2, log=log or None,
                               config=base_config | {"method": method, "round": r,
                                                     "prompts": fingerprint([[it["id"], it["conversation"]] for it in items])})
            job.run(items, lambda batch: generate_replies(lm, batch, seed=shard_seed(seed, batch),
                                                          batch_size=batch_size, **gen_kwargs),
                    desc=f"{method} round {r + 1}")
            rows = sorted(job.rows(), key=lambda row: row["id"])
            result.new_tokens[method] += sum(row["new_tokens"] for row in rows)
            found = filter_candidates([row["raw"] for row in rows], [row["truncated"] for row in rows], pools[method],
                                      method=method, attributes=[{k: row[k] for k in ATTRIBUTE_KEYS} for row in rows],
                                      log=result.logs[method])
            for c in found:
                c.attributes["round"] = r
            result.candidates[method] += found
            if log:
                log(f"round {r + 1} {method:10s}: {len(rows)} replies -> {sum(c.reason is None for c in found)} kept")
    result.seconds = time.perf_counter() - t0
    return result


def mentions_topic(text: str, topic: str) -> bool:
    """Whether ``text`` contains a word (longer than 3 letters) of ``topic``: a cheap check that
    a generator followed the topic it was given."""
    return any(w.lower() in text.lower() for w in topic.split() if len(w) > 3)


def topic_follow_rate(candidates: Sequence[Candidate], topics: Sequence[str], seed: int = 0) -> float:
    """Share of candidates that mention their injected topic.

    Candidates without a topic (plain prompts) are checked against a topic drawn at random from
    ``topics``: what chance alone gives, the baseline to compare with. ``nan`` when empty.
    """
    rng = random.Random(seed)
    hits = [mentions_topic(c.instruction, c.attributes.get("topic") or rng.choice(list(topics))) for c in candidates]
    return float(np.mean(hits)) if hits else float("nan")


# ---------------------------------------------------------------------------- comparing sets
def diversity_table(texts: Mapping[str, Sequence[str]], embeddings: Mapping[str, np.ndarray], *,
                    n: int | None = None, repeats: int = 20, seed: int = 0,
                    threshold: float = 0.9) -> "Any":
    """Diversity metrics per set, on equal-size random subsets (mean and std over ``repeats``).

    distinct-n depends on how much text there is, so every set is cut to the same ``n``
    items (default: the smallest set) before measuring; repeating the draw shows how much the
    numbers move. Columns: ``distinct_1``, ``distinct_2``, ``mean_pairwise_cosine``,
    ``near_dup_rate`` (mean) and the same with ``_std``. A set with fewer than 2 (or fewer than
    ``n``) items gets NaN metrics rather than an error, so a collapsed method shows up as such.
    """
    import pandas as pd

    from helpers.text.diversity import diversity_report

    n = n or min(len(v) for v in texts.values())
    rng = np.random.default_rng(seed)
    rows = []
    cols = ("distinct_1", "distinct_2", "mean_pairwise_cosine", "near_dup_rate")
    for name, items in texts.items():
        emb = embeddings[name]
        if n < 2 or len(items) < n:  # too few to compare: say so with NaN instead of crashing
            rows.append({"method": name, "n": min(n, len(items))} | {c + s: float("nan") for c in cols for s in ("", "_std")})
            continue
        reps = []
        for _ in range(repeats if len(items) > n else 1):
            idx = rng.choice(len(items), size=n, replace=False)
            reps.append(diversity_report([items[i] for i in idx], emb[idx], threshold))
        df = pd.DataFrame(reps)
        row = {"method": name, "n": n}
        for col in cols:
            row[col] = float(df[col].mean())
            row[col + "_std"] = float(df[col].std(ddof=0))
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")
