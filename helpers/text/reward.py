"""A small reward model trained in the notebook: preference pairs by corruption + a Bradley-Terry head.

No text reward model ships offline, so we build one the cheap way:

1. **Preference pairs by corruption.** Take a good (prompt, response) and spoil the
   response in a known way: cut it short (``truncated``), answer a different prompt
   (``off_topic``), shuffle its sentences (``shuffled``), or insert a factual error
   (``factual_error``: a changed number, a flipped comparison word, or a false sentence).
   The original is *chosen*, the spoilt copy *rejected*. Ouyang et al. (2022, InstructGPT)
   and Llama 2/3 train reward models on human or model preference pairs; corruptions give
   labels for free, at the price of only teaching what the corruptions cover.
2. **Bradley-Terry head on frozen embeddings.** A tiny MLP ``r(prompt, response)`` on top of
   frozen MiniLM sentence embeddings, trained with the Bradley-Terry loss
   ``-log sigmoid(r(chosen) - r(rejected))`` (Bradley & Terry, 1952; the loss InstructGPT uses).
3. **Held-out pairwise accuracy**, overall and per corruption kind: the share of unseen pairs
   where the chosen response scores higher. Split by *source row*, never by pair.
4. **Scoring and top-quartile selection** of new data (Llama 3 keeps the highest-scoring
   samples per prompt, section 4.2.2).

>>> pairs, skipped = make_preference_pairs(rows, seed=0)
>>> rm = RewardModel(Embedder.load("minilm"))
>>> history = rm.fit(train_pairs)
>>> rm.pairwise_accuracy(test_pairs).by_kind
>>> keep = top_fraction(rm.score(prompts, responses), 0.25)
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

#: The corruptions :func:`make_preference_pairs` knows.
CORRUPTIONS: tuple[str, ...] = ("truncated", "off_topic", "shuffled", "factual_error")

# False statements, written for this course, inserted by the ``factual_error`` corruption
# when a response holds no number or comparison word to flip.
FALSE_FACTS: tuple[str, ...] = (
    "Water boils at 50 degrees Celsius at sea level.",
    "The Sun goes around the Earth once a year.",
    "Python lists are indexed starting from 1.",
    "The Pacific is the smallest ocean on Earth.",
    "Sound travels faster than light.",
    "A week has nine days.",
    "The chemical symbol for gold is Ag.",
    "Humans have three lungs.",
    "Paris is the capital of Germany.",
    "Multiplying any number by zero gives the number itself.",
    "HTML is a compiled programming language.",
    "The Moon is larger than the Earth.",
)

# Word pairs whose swap turns a true sentence false (both directions are used).
FLIP_WORDS: tuple[tuple[str, str], ...] = (
    ("increase", "decrease"), ("increases", "decreases"), ("larger", "smaller"), ("more", "less"),
    ("higher", "lower"), ("before", "after"), ("always", "never"), ("true", "false"),
    ("faster", "slower"), ("maximum", "minimum"), ("first", "last"), ("above", "below"),
    ("north", "south"), ("east", "west"), ("positive", "negative"), ("cannot", "can"),
)
_FLIP = {a: b for a, b in FLIP_WORDS} | {b: a for a, b in FLIP_WORDS}
# Whole words only, and never part of a contraction or hyphenated word: "can't" must not become
# "cannot't", nor "first-class" "last-class". A non-word would be a surface clue that gives the
# corruption away without any knowledge of facts.
_FLIP_RX = re.compile(r"(?<![\w'’-])(" + "|".join(sorted(_FLIP, key=len, reverse=True)) + r")(?![\w'’-])", re.I)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,6})(?![\w.])")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\s*\n\s*")


def split_sentences(text: str) -> list[str]:
    """Split on sentence ends and line breaks (good enough for corruptions, not for linguistics)."""
    return [s.strip() for s in _SENT_SPLIT.split(text) if s and s.strip()]


def _units_and_separators(text: str, sep: "re.Pattern[str]") -> tuple[list[str], list[str]]:
    """``text`` cut at ``sep``: ``units[0] + seps[0] + units[1] + ... == text`` exactly."""
    units, seps, last = [], [], 0
    for m in sep.finditer(text):
        if m.end() == m.start():
            continue
        units.append(text[last:m.start()])
        seps.append(m.group(0))
        last = m.end()
    units.append(text[last:])
    return units, seps


# --------------------------------------------------------------------------- corruptions
def truncate(text: str, rng: random.Random, keep: tuple[float, float] = (0.2, 0.5), min_words: int = 8) -> str | None:
    """Cut ``text`` after 20-50 % of its words, mid-sentence (``None`` if it has under ``min_words`` words).

    The kept part is the original text up to the end of the last kept word, line breaks and
    spacing included: only the ending is missing, nothing else gives the cut away.
    """
    words = list(re.finditer(r"\S+", text))
    if len(words) < min_words:
        return None
    k = max(2, int(len(words) * rng.uniform(*keep)))
    return text[:words[k - 1].end()]


_WORD_SEP = re.compile(r"\s+")


def shuffle_units(text: str, rng: random.Random, min_units: int = 3, min_words: int = 6) -> tuple[str, str] | None:
    """Shuffle the sentences of ``text`` (or its words, if it has fewer than ``min_units`` sentences).

    Returns ``(shuffled, unit)`` with ``unit`` ``"sentence"`` or ``"word"``, or ``None`` when
    the text is too short for any order change. Only the order changes: every separator
    (spaces, line breaks, indentation) stays where it was, so the shuffled copy has exactly the
    same characters and length as the original.
    """
    for unit, sep, need in (("sentence", _SENT_SPLIT, min_units), ("word", _WORD_SEP, min_words)):
        units, seps = _units_and_separators(text, sep)
        slots = [i for i, u in enumerate(units) if u.strip()]
        if len(slots) < need:
            continue
        contents = [units[i] for i in slots]
        if len(set(contents)) < 2:
            continue
        for _ in range(10):
            perm = contents[:]
            rng.shuffle(perm)
            if perm != contents:
                new = units[:]
                for i, u in zip(slots, perm):
                    new[i] = u
                return "".join(u + sp for u, sp in zip(new, seps + [""])), unit
    return None


def shuffle(text: str, rng: random.Random, min_units: int = 3) -> str | None:
    """Shuffle sentences (or words, if there are fewer than ``min_units`` sentences); see :func:`shuffle_units`.

    ``None`` when the text is too short for any order change.
    """
    res = shuffle_units(text, rng, min_units)
    return res[0] if res else None


def insert_factual_error(text: str, rng: random.Random) -> tuple[str, str] | None:
    """Make ``text`` wrong in one place; returns ``(new_text, how)`` or ``None`` for empty text.

    In order of preference: change a number, flip a comparison word (more/less, before/after,
    ...), or insert one of :data:`FALSE_FACTS` between two sentences.
    """
    if not text.strip():
        return None
    nums = list(_NUMBER.finditer(text))
    choice = rng.random()
    if nums and choice < 0.5:
        m = rng.choice(nums)
        old = int(m.group(1))
        new = old + rng.choice([-1, 1]) * max(1, rng.randint(1, 3) * max(1, old // 3))
        new = abs(new) if new != old and abs(new) != old else old + 7
        return text[:m.start()] + str(new) + text[m.end():], f"number {old} -> {new}"
    flips = list(_FLIP_RX.finditer(text))
    if flips and choice < 0.8:
        m = rng.choice(flips)
        old = m.group(1)
        new = _FLIP[old.lower()]
        new = new.capitalize() if old[0].isupper() else new
        return text[:m.start()] + new + text[m.end():], f"flipped {old!r} -> {new!r}"
    fact = rng.choice(FALSE_FACTS)
    # insert at a sentence boundary of the original text, leaving its spacing and line breaks alone
    body = text.rstrip()
    tail = text[len(body):]
    bounds = [m.start() for m in _SENT_SPLIT.finditer(body) if m.start() > 0]
    slots = [0] + bounds + [len(body)] if bounds else [len(body)]
    at = rng.choice(slots)
    if at == 0:
        lead = len(body) - len(body.lstrip())
        new = body[:lead] + fact + " " + body[lead:]
    else:
        new = body[:at] + " " + fact + body[at:]
    return new + tail, f"inserted {fact!r}"


@dataclass
class PreferencePair:
    """One training example for a reward model.

    Attributes:
        prompt: the user prompt.
        chosen: the better response.
        rejected: the worse response.
        kind: how ``rejected`` was made (a corruption name, or any label).
        group: id of the source row, so train/test splits can keep a row's pairs together.
        note: what the corruption did.
        detail: the variant of the corruption (``factual_error``: ``number``, ``flipped word`` or
            ``inserted sentence``; ``shuffled``: ``sentence`` or ``word`` order), for per-variant accuracy.
    """

    prompt: str
    chosen: str
    rejected: str
    kind: str
    group: int = -1
    note: str = ""
    detail: str = ""


def make_preference_pairs(rows: Sequence[Mapping[str, Any]], kinds: Sequence[str] = CORRUPTIONS, *,
                          per_row: int | None = None, seed: int = 0, prompt_key: str = "prompt",
                          response_key: str = "response") -> tuple[list[PreferencePair], Counter]:
    """Build (chosen = original, rejected = corrupted) pairs from good rows.

    Args:
        rows: dicts with a prompt and a good response.
        kinds: corruptions to use (see :data:`CORRUPTIONS`).
        per_row: corruptions per row, drawn at random from ``kinds`` (default: all of them).
        seed: makes the pairs reproducible.

    Returns:
        ``(pairs, skipped)``: ``skipped`` counts ``kind`` -> rows where that corruption was not
        possible (text too short, no other row to swap with, empty response), so no row is
        lost silently.
    """
    unknown = set(kinds) - set(CORRUPTIONS)
    if unknown:
        raise ValueError(f"unknown corruption(s) {sorted(unknown)}; known: {CORRUPTIONS}")
    rng = random.Random(seed)
    rows = [(str(r.get(prompt_key) or ""), str(r.get(response_key) or "")) for r in rows]
    pairs: list[PreferencePair] = []
    skipped: Counter = Counter()
    for i, (prompt, resp) in enumerate(rows):
        todo = list(kinds) if per_row is None else rng.sample(list(kinds), min(per_row, len(kinds)))
        for kind in todo:
            if not resp.strip():
                skipped[kind] += 1
                continue
            note, detail = "", ""
            bad: str | None
            if kind == "truncated":
                bad = truncate(resp, rng)
                note = "cut mid-sentence"
            elif kind == "shuffled":
                sh = shuffle_units(resp, rng)
                bad, detail = sh if sh else (None, "")
                note = f"{detail} order shuffled"
            elif kind == "off_topic":
                others = [j for j in range(len(rows)) if j != i and rows[j][1].strip() and rows[j][0] != prompt]
                if not others:
                    bad = None
                else:
                    j = rng.choice(others)
                    bad, note = rows[j][1], f"reply to row {j}"
            else:  # factual_error
                res = insert_factual_error(resp, rng)
                bad, note = (res if res else (None, ""))
                detail = {"number": "number", "flipped": "flipped word", "inserted": "inserted sentence"}.get(
                    note.split(" ", 1)[0], "")
            if bad is None or bad.strip() == resp.strip():
                skipped[kind] += 1
                continue
            pairs.append(PreferencePair(prompt, resp, bad, kind, i, note, detail))
    return pairs, skipped


def split_rows(rows: Sequence[Any], test_frac: float = 0.25, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """Random train/test split of rows (split *before* making pairs, so no text crosses over)."""
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_test = max(1, int(round(len(rows) * test_frac))) if len(rows) > 1 else 0
    test = sorted(idx[:n_test])
    train = sorted(idx[n_test:])
    return [rows[i] for i in train], [rows[i] for i in test]


def stratified_sample(items: Sequence[Any], n: int, key: Callable[[Any], Any] = lambda p: p.kind,
                      seed: int = 0) -> list[Any]:
    """``n`` items spread as evenly as possible over the values of ``key`` (by default a pair's kind).

    Items are drawn at random within each stratum, strata taken in turn (round robin), so
    with four corruption kinds and ``n = 20`` each kind gets five items; a stratum with too
    few items gives what it has and the others fill the rest. A stride such as
    ``items[::k]`` would instead pick whatever kind happens to sit at every k-th place.
    """
    rng = random.Random(seed)
    strata: dict[Any, list[Any]] = {}
    for it in items:
        strata.setdefault(key(it), []).append(it)
    for v in strata.values():
        rng.shuffle(v)
    order = sorted(strata, key=str)
    out: list[Any] = []
    depth = 0
    while len(out) < n and any(depth < len(strata[k]) for k in order):
        for k in order:
            if depth < len(strata[k]) and len(out) < n:
                out.append(strata[k][depth])
        depth += 1
    return out


# --------------------------------------------------------------------------- features
def surface_features(texts: Sequence[str]) -> np.ndarray:
    """Three cheap surface features per text: log word count, ends like a finished sentence, newline share.

    Optional extras for :class:`RewardModel` (``surface=True``): they make truncation easy to
    see, and also teach the model that longer is better, a known reward-hacking route.
    """
    out = np.zeros((len(texts), 3), dtype=np.float32)
    for i, t in enumerate(texts):
        t = t or ""
        n = len(t.split())
        out[i, 0] = math.log1p(n) / 6.0
        out[i, 1] = float(t.rstrip().endswith((".", "!", "?", "```", ")", ":", '"')))
        out[i, 2] = t.count("\n") / max(1, len(t)) * 20
    return out


@dataclass
class PairwiseReport:
    """Held-out pairwise accuracy: overall and per kind (share of pairs with chosen > rejected)."""

    accuracy: float
    by_kind: dict[str, float]
    counts: dict[str, int]
    margins: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def correct(self) -> np.ndarray:
        """1.0 for each pair whose chosen reply scored higher, else 0.0 (a NaN margin is wrong), as counted in ``accuracy``."""
        return _right(self.margins).astype(float)

    def table(self):
        import pandas as pd

        rows = [{"kind": k, "pairs": self.counts[k], "accuracy": self.by_kind[k]} for k in sorted(self.by_kind)]
        rows.append({"kind": "ALL", "pairs": int(sum(self.counts.values())), "accuracy": self.accuracy})
        return pd.DataFrame(rows)


@dataclass
class TrainHistory:
    """Per-epoch training loss and validation accuracy; ``best_epoch`` is the one kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    embed_seconds: float = 0.0


class RewardModel:
    """Bradley-Terry reward head on frozen sentence embeddings.

    The input for a (prompt, response) is ``[e_r, e_p * e_r]`` where ``e_p``, ``e_r`` are the
    unit-length embeddings of prompt and response: the first part says what the response
    looks like, the element-wise product whether it is about the prompt. With
    ``surface=True`` three :func:`surface_features` of the response are appended.

    Args:
        embedder: anything with ``encode(texts) -> (n, d) array`` (e.g. :class:`helpers.lm.embeddings.Embedder`).
        hidden: hidden units of the MLP head (0 = a linear head).
        surface: add :func:`surface_features`.
        dropout: dropout in the head.
        cache: an :attr:`embedding_cache` to share (texts already embedded are not embedded again).
    """

    def __init__(self, embedder: Any, hidden: int = 64, surface: bool = False, dropout: float = 0.1,
                 cache: dict[str, np.ndarray] | None = None) -> None:
        self.embedder = embedder
        self.hidden = hidden
        self.surface = surface
        self.dropout = dropout
        self.head: Any = None
        self._cache: dict[str, np.ndarray] = {} if cache is None else cache

    @property
    def embedding_cache(self) -> dict[str, np.ndarray]:
        """Text -> embedding, filled as texts are embedded. Pass it as ``cache=`` to another
        :class:`RewardModel` on the same embedder to reuse the embeddings (they are shared, not copied)."""
        return self._cache

    # ---------------------------------------------------------------- embeddings
    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts``, each distinct text encoded once and cached."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            vecs = np.asarray(self.embedder.encode(todo, batch_size=batch_size), dtype=np.float32)
            for t, v in zip(todo, vecs):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def features(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """The head's input for each (prompt, response)."""
        prompts = [p or "" for p in prompts]
        responses = [r or "" for r in responses]
        ep, er = self.embed(prompts), self.embed(responses)
        parts = [er, ep * er * math.sqrt(er.shape[1])]  # rescale the product to the embedding's size
        if self.surface:
            parts.append(surface_features(responses))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _build(self, dim: int) -> Any:
        import torch.nn as nn

        if self.hidden:
            return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(dim, self.hidden), nn.GELU(),
                                 nn.Dropout(self.dropout), nn.Linear(self.hidden, 1))
        return nn.Sequential(nn.Dropout(self.dropout), nn.Linear(dim, 1))

    # ---------------------------------------------------------------- training
    def fit(self, pairs: Sequence[PreferencePair], *, val_frac: float = 0.15, epochs: int = 200, lr: float = 2e-3,
            weight_decay: float = 1e-2, batch_size: int = 256, patience: int = 25, seed: int = 0,
            verbose: bool = False) -> TrainHistory:
        """Train the head with the Bradley-Terry loss; keep the epoch with the best validation loss.

        The validation part is split by :attr:`PreferencePair.group` so a source row's pairs
        stay on one side.
        """
        import time

        import torch

        if not pairs:
            raise ValueError("no preference pairs to train on")
        hist = TrainHistory()
        t0 = time.perf_counter()
        fc = self.features([p.prompt for p in pairs], [p.chosen for p in pairs])
        fr = self.features([p.prompt for p in pairs], [p.rejected for p in pairs])
        hist.embed_seconds = time.perf_counter() - t0
        groups = sorted({p.group for p in pairs})
        rng = random.Random(seed)
        rng.shuffle(groups)
        n_val = int(len(groups) * val_frac) if len(groups) >= 5 else 0
        val_groups = set(groups[:n_val])
        is_val = np.array([p.group in val_groups for p in pairs])
        torch.manual_seed(seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the head is tiny: one thread is fastest, and it is polite on shared machines
        try:
            self.head = self._build(fc.shape[1])
            self._train_loop(hist, fc, fr, is_val, epochs=epochs, lr=lr, weight_decay=weight_decay,
                             batch_size=batch_size, patience=patience, seed=seed, verbose=verbose)
        finally:
            torch.set_num_threads(threads)
        return hist

    def _train_loop(self, hist: TrainHistory, fc: np.ndarray, fr: np.ndarray, is_val: np.ndarray, *, epochs: int,
                    lr: float, weight_decay: float, batch_size: int, patience: int, seed: int, verbose: bool) -> None:
        import time

        import torch

        opt = torch.optim.AdamW(self.head.parameters(), lr=lr, weight_decay=weight_decay)
        Xc, Xr = torch.from_numpy(fc), torch.from_numpy(fr)
        tr = torch.from_numpy(np.flatnonzero(~is_val))
        va = torch.from_numpy(np.flatnonzero(is_val))
        best, best_state, bad_epochs = float("inf"), None, 0
        gen = torch.Generator().manual_seed(seed)
        t1 = time.perf_counter()
        for epoch in range(epochs):
            self.head.train()
            perm = tr[torch.randperm(len(tr), generator=gen)]
            total = 0.0
            for s in range(0, len(perm), batch_size):
                b = perm[s:s + batch_size]
                margin = self.head(Xc[b]).squeeze(-1) - self.head(Xr[b]).squeeze(-1)
                loss = torch.nn.functional.softplus(-margin).mean()  # = -log sigmoid(margin)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            hist.train_loss.append(total / max(1, len(perm)))
            if len(va):
                self.head.eval()
                with torch.no_grad():
                    m = self.head(Xc[va]).squeeze(-1) - self.head(Xr[va]).squeeze(-1)
                    vl = float(torch.nn.functional.softplus(-m).mean())
                    hist.val_loss.append(vl)
                    hist.val_accuracy.append(float((m > 0).float().mean()))
                if vl < best - 1e-4:
                    best, bad_epochs, hist.best_epoch = vl, 0, epoch
                    best_state = {k: v.clone() for k, v in self.head.state_dict().items()}
                else:
                    bad_epochs += 1
                    if bad_epochs >= patience:
                        break
            if verbose and epoch % 20 == 0:
                va_txt = f", val loss {hist.val_loss[-1]:.3f} acc {hist.val_accuracy[-1]:.3f}" if len(va) else ""
                print(f"epoch {epoch:3d}: train loss {hist.train_loss[-1]:.3f}{va_txt}")
        if best_state is not None:
            self.head.load_state_dict(best_state)
        else:
            hist.best_epoch = len(hist.train_loss) - 1
        self.head.eval()
        hist.seconds = time.perf_counter() - t1

    # ---------------------------------------------------------------- scoring
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Reward for each (prompt, response); higher is better. Empty input gives an empty array."""
        import torch

        if self.head is None:
            raise RuntimeError("call fit() before score()")
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not len(prompts):
            return np.zeros(0, dtype=np.float32)
        with torch.no_grad():
            x = torch.from_numpy(self.features(prompts, responses))
            return self.head(x).squeeze(-1).numpy().astype(np.float32)

    def pairwise_accuracy(self, pairs: Sequence[PreferencePair]) -> PairwiseReport:
        """Share of pairs where ``chosen`` outscores ``rejected``, overall and per kind (ties count as wrong)."""
        if not pairs:
            return PairwiseReport(float("nan"), {}, {})
        sc = self.score([p.prompt for p in pairs], [p.chosen for p in pairs])
        sr = self.score([p.prompt for p in pairs], [p.rejected for p in pairs])
        return pairwise_report(sc - sr, [p.kind for p in pairs])


def _right(margins: np.ndarray) -> np.ndarray:
    """Margin > 0 per pair; a NaN margin (no score) counts as wrong."""
    return np.nan_to_num(margins, nan=-1.0) > 0


def pairwise_report(margins: Sequence[float], kinds: Sequence[str]) -> PairwiseReport:
    """Accuracy (margin > 0) overall and per kind from per-pair score margins (NaN margins count as wrong)."""
    m = np.asarray(margins, dtype=float)
    ok = _right(m)
    by, counts = {}, {}
    for k in sorted(set(kinds)):
        sel = np.array([x == k for x in kinds])
        by[k] = float(ok[sel].mean())
        counts[k] = int(sel.sum())
    return PairwiseReport(float(ok.mean()) if len(ok) else float("nan"), by, counts, m)


def top_fraction(scores: Sequence[float], fraction: float = 0.25) -> np.ndarray:
    """Boolean mask of the best ``fraction`` of rows by score (at least one row; NaN never kept).

    Ties at the cut are broken by position, so the mask holds exactly
    ``ceil(fraction * n_finite)`` rows.
    """
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    s = np.asarray(scores, dtype=float)
    finite = np.flatnonzero(np.isfinite(s))
    mask = np.zeros(len(s), dtype=bool)
    if len(finite) == 0:
        return mask
    k = max(1, math.ceil(fraction * len(finite)))
    order = finite[np.argsort(-s[finite], kind="stable")]
    mask[order[:k]] = True
    return mask


def top_fraction_per_group(scores: Sequence[float], groups: Sequence[Any], fraction: float = 0.25) -> np.ndarray:
    """:func:`top_fraction` applied within each group (e.g. per prompt, as Llama 3 does)."""
    s = np.asarray(scores, dtype=float)
    mask = np.zeros(len(s), dtype=bool)
    by: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    for idx in by.values():
        mask[idx] = top_fraction(s[idx], fraction)
    return mask


def rank_agreement(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """How well two scorers agree: Spearman rank correlation and pairwise order agreement.

    Pairs tied on either side are left out of the pairwise figure; NaNs are dropped first.
    Returns ``{"n", "spearman", "pairwise_agreement", "pairs_compared"}``.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    out = {"n": float(n), "spearman": float("nan"), "pairwise_agreement": float("nan"), "pairs_compared": 0.0}
    if n < 3:
        return out
    from scipy.stats import spearmanr

    if np.ptp(x) > 0 and np.ptp(y) > 0:
        out["spearman"] = float(spearmanr(x, y).statistic)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(n, 1)
    dx, dy = dx[iu], dy[iu]
    both = (dx != 0) & (dy != 0)
    if both.any():
        out["pairwise_agreement"] = float((dx[both] == dy[both]).mean())
    out["pairs_compared"] = float(both.sum())
    return out
