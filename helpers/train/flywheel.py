"""The self-improvement flywheel and model collapse, on tiny models that train in seconds (chapter 08).

Two experiments, both built on :mod:`helpers.train.tiny`:

**Generate, verify, train, repeat.** Multi-digit addition is a task a tiny transformer can learn and a
program can check. It is written *column by column, least significant digit first*, each column as
``<a digit><b digit>=<sum digit>``, so ``347+825=1172`` becomes ``75=2,42=7,38=1,00=1`` (the last column
holds the final carry). In this layout every sum digit depends only on the few characters before it, which
is what lets a small model trained on short numbers say something sensible about longer ones (Lee et al.
2023 showed that the written form decides whether small transformers learn arithmetic at all). Training
texts start at a random offset (``.`` filler), so that every position of the model is trained and a longer
number does not land on positions it has never seen.

>>> task = AdditionTask()
>>> task.format(347, 825)
'75=2,42=7,38=1,00=1'
>>> model = task.new_model(seed=0)
>>> train_round(model, task, seed_items, steps=400)                  # round 0: a small labelled set
>>> labels = label_items(model, task, pool, temperature=0)             # the model labels harder items
>>> kept = apply_verifier("program", task, pool, labels)               # keep what a check accepts
>>> accuracy(model, task, test_items)

:func:`run_flywheel` runs the whole loop for several *arms* that differ only in what they keep of what
the model labelled (``"oracle"``: the true sums, ``"program"``: labels a program check accepts,
``"vote"``: the majority of several samples where they agree, no check needed, ``"all"``: everything),
with the same pool of new items and the same training steps per round.

**Model collapse.** :func:`run_collapse` trains a character-level tiny model on real text, then retrains
it for several generations on samples of the previous generation under three regimes: ``"replace"``
(only the newest model output), ``"accumulate"`` (real text plus every generation so far) and
``"accumulate+filter"`` (the same, minus samples the real-data model finds unlikely). Per generation it
measures perplexity on held-out real text, distinct-n (:func:`distinct_n`) and the share of rare
characters (:func:`tail_share`): the tails of the distribution are what disappear first (Shumailov et
al., Nature 2024; Gerstgrasser et al., 2024).

Models this small train fastest on one torch thread (:func:`set_threads`): on a 2-core machine shared with
another job, two threads were several times slower than one in this module's benchmarks.

A round with nothing to train on raises :class:`EmptyRoundError` (a ``ValueError``) with the counts,
instead of training on nothing or crashing later.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch

from helpers.train.report import TrainReport
from helpers.train.tiny import CharTokenizer, TinyConfig, TinyLM, generate, perplexity, train_tiny

__all__ = ["AdditionTask", "EmptyRoundError", "Labels", "label_items", "accuracy", "accuracy_by_digits",
           "apply_verifier", "train_round", "run_flywheel", "FlywheelResult", "VERIFIERS",
           "distinct_n", "tail_share", "char_counts", "rare_chars", "run_collapse", "CollapseResult", "REGIMES",
           "set_threads"]


class EmptyRoundError(ValueError):
    """A round has no examples to train on (empty pool, or the verifier rejected every label)."""


def set_threads(n: int = 1) -> int:
    """Set torch's intra-op threads (tiny models train fastest on one); returns the previous value."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    return before


# --------------------------------------------------------------------------- the task
Item = tuple[int, int]


@dataclass
class AdditionTask:
    """Addition of non-negative integers, written column by column for a character-level model.

    Args:
        max_len: the model's context (bos + offset filler + columns); it bounds the longest number.
        filler: the character of the random offset in front of a training text.
        d_model, n_layers, n_heads, d_ff: the shape of the model :meth:`new_model` builds.
    """

    max_len: int = 40
    filler: str = "."
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256

    def __post_init__(self) -> None:
        self.tokenizer = CharTokenizer("0123456789=," + self.filler)
        self.digit_ids = [self.tokenizer.stoi[c] for c in "0123456789"]

    @property
    def max_digits(self) -> int:
        """The most digits an operand may have so that its text fits the context."""
        return (self.max_len - 1) // 5 - 1

    def sample(self, n: int, digits: int | Sequence[int], seed: int = 0, exclude: Iterable[Item] = ()) -> list[Item]:
        """``n`` distinct pairs ``(a, b)`` whose longer operand has exactly ``digits`` digits (or one of several).

        ``a`` always has that many digits; ``b`` has any number up to it. ``exclude`` keeps the pairs of
        another split out (a test set never overlaps a training pool)."""
        levels = [digits] if isinstance(digits, int) else list(digits)
        if not levels or min(levels) < 1 or max(levels) > self.max_digits:
            raise ValueError(f"digits must be between 1 and {self.max_digits} for max_len={self.max_len}, got {levels}")
        rng = random.Random(seed)
        seen, out = set(exclude), []
        space = sum(10 ** (2 * d) - (10 ** (2 * d - 2) if d > 1 else 0) for d in set(levels))
        if n > space - len(seen):
            raise ValueError(f"only about {space} pairs have {levels} digits; asked for {n}")
        while len(out) < n:
            d = rng.choice(levels)
            a = rng.randint(10 ** (d - 1) if d > 1 else 0, 10 ** d - 1)
            b = rng.randint(0, 10 ** d - 1)
            if rng.random() < 0.5:
                a, b = b, a
            if (a, b) not in seen:
                seen.add((a, b))
                out.append((a, b))
        return out

    @staticmethod
    def digits_of(item: Item) -> int:
        """Digits of the longer operand (the item's difficulty)."""
        return max(len(str(item[0])), len(str(item[1])))

    def columns(self, item: Item) -> list[tuple[str, str]]:
        """``(a digit, b digit)`` per column, least significant first, plus one ``(0, 0)`` column for the carry."""
        n = self.digits_of(item) + 1
        a, b = str(item[0]).zfill(n)[::-1], str(item[1]).zfill(n)[::-1]
        return list(zip(a, b))

    def format(self, a: int, b: int, answer: int | None = None) -> str:
        """The model's text of ``a + b``, with the true sum (or ``answer``, a label that may be wrong)."""
        cols = self.columns((a, b))
        s = str(a + b if answer is None else answer).zfill(len(cols))[::-1]
        if len(s) != len(cols):
            raise ValueError(f"answer {answer} has more digits than {a}+{b} has columns")
        return ",".join(f"{x}{y}={z}" for (x, y), z in zip(cols, s))

    def parse(self, text: str) -> tuple[int, int, int]:
        """``(a, b, answer)`` from a text written by :meth:`format` (offset filler allowed)."""
        cols = text.lstrip(self.filler).split(",")
        a = int("".join(c[0] for c in cols)[::-1])
        b = int("".join(c[1] for c in cols)[::-1])
        s = int("".join(c[3] for c in cols)[::-1])
        return a, b, s

    @staticmethod
    def show(a: int, b: int, answer: int | None = None) -> str:
        """The human form, ``347+825=1172``."""
        return f"{a}+{b}={a + b if answer is None else answer}"

    @staticmethod
    def check(item: Item, answer: int | None) -> bool:
        """The program verifier: is ``answer`` the sum?"""
        return answer is not None and int(answer) == item[0] + item[1]

    def training_texts(self, items: Sequence[Item], answers: Sequence[int] | None = None, seed: int = 0,
                       copies: int = 1) -> list[str]:
        """Texts of ``items`` (labelled with ``answers``, default the true sums), each ``copies`` times at a
        random offset so that the whole context gets trained."""
        rng = random.Random(seed)
        out = []
        for i, (a, b) in enumerate(items):
            text = self.format(a, b, None if answers is None else answers[i])
            room = self.max_len - 2 - len(text)  # bos and eos take a position each
            if room < 0:
                raise ValueError(f"{a}+{b} does not fit max_len={self.max_len}")
            out += [self.filler * rng.randint(0, room) + text for _ in range(copies)]
        return out

    def batches(self, items: Sequence[Item], answers: Sequence[int] | None = None, *, batch_size: int = 64,
                seed: int = 0) -> Callable[[int], torch.Tensor]:
        """A function ``step -> (batch_size, max_len)`` token ids for :func:`train_tiny`: each step draws
        ``batch_size`` of the items and puts each at a fresh random offset. It depends only on ``step`` and
        ``seed``, so a resumed run sees the same batches as an uninterrupted one."""
        if len(items) == 0:
            raise EmptyRoundError("no items to make batches of")
        tok = self.tokenizer
        encoded = [tok.encode(self.format(a, b, None if answers is None else answers[i]))
                   for i, (a, b) in enumerate(items)]
        too_long = [i for i, e in enumerate(encoded) if len(e) + 2 > self.max_len]
        if too_long:
            raise ValueError(f"{len(too_long)} items do not fit max_len={self.max_len}, e.g. {items[too_long[0]]}")
        fill = tok.stoi[self.filler]

        def batch(step: int) -> torch.Tensor:
            rng = random.Random(seed * 1_000_003 + step)
            rows = []
            for i in (rng.randrange(len(encoded)) for _ in range(batch_size)):
                e = encoded[i]
                k = rng.randint(0, self.max_len - 2 - len(e))
                rows.append([tok.bos_id] + [fill] * k + e + [tok.eos_id])
            width = max(len(r) for r in rows)
            return torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows], dtype=torch.long)

        return batch

    def new_model(self, seed: int = 0) -> TinyLM:
        """A fresh model of this task's shape."""
        return TinyLM(TinyConfig(vocab_size=self.tokenizer.vocab_size, d_model=self.d_model, n_layers=self.n_layers,
                                 n_heads=self.n_heads, d_ff=self.d_ff, max_len=self.max_len), seed=seed)


# --------------------------------------------------------------------------- labelling and checking
@torch.no_grad()
def label_items(model: TinyLM, task: AdditionTask, items: Sequence[Item], *, temperature: float = 0.0,
                seed: int = 0, batch_size: int = 256) -> list[int]:
    """The model's answer to each item: the operand digits are given column by column, the model writes
    each sum digit (greedy at ``temperature=0``, else sampled; only digits can be written)."""
    was = model.training
    model.eval()
    tok = task.tokenizer
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    digit_ids = torch.tensor(task.digit_ids)
    answers: list[int] = [0] * len(items)
    order = sorted(range(len(items)), key=lambda i: task.digits_of(items[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        cols = [task.columns(items[i]) for i in idx]
        rows = []
        for c in cols:
            room = task.max_len - 1 - (5 * len(c) - 1)
            rows.append([tok.bos_id] + tok.encode(task.filler * rng.randint(0, max(0, room))))
        written: list[list[str]] = [[] for _ in idx]
        for j in range(max(len(c) for c in cols)):
            live = [r for r, c in enumerate(cols) if j < len(c)]
            for r in live:
                if j:
                    rows[r] += tok.encode(",")
                rows[r] += tok.encode(f"{cols[r][j][0]}{cols[r][j][1]}=")
            width = max(len(rows[r]) for r in live)
            ids = torch.tensor([[tok.pad_id] * (width - len(rows[r])) + rows[r] for r in live])
            mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(rows[r]) for r in live])[:, None]).long()
            logits = model(ids, mask)[:, -1, digit_ids].float()
            if temperature > 0:
                pick = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g).squeeze(1)
            else:
                pick = logits.argmax(-1)
            for r, p in zip(live, pick.tolist()):
                rows[r].append(task.digit_ids[p])
                written[r].append(str(p))
        for r, i in enumerate(idx):
            answers[i] = int("".join(written[r])[::-1])
    model.train(was)
    return answers


def accuracy(model: TinyLM, task: AdditionTask, items: Sequence[Item], seed: int = 0) -> list[bool]:
    """Per item: does the model's greedy answer equal the sum?"""
    return [task.check(it, y) for it, y in zip(items, label_items(model, task, items, seed=seed))]


def accuracy_by_digits(model: TinyLM, task: AdditionTask, tests: dict[int, Sequence[Item]], seed: int = 0
                       ) -> dict[int, list[bool]]:
    """:func:`accuracy` for each difficulty of ``tests`` (digits -> items)."""
    return {d: accuracy(model, task, items, seed=seed) for d, items in tests.items()}


@dataclass
class Labels:
    """What one verifier kept of one round's labelled pool.

    ``items``/``answers`` are what the next model trains on; the other lists run over the whole pool."""

    items: list[Item]  # the items kept
    answers: list[int]  # their labels (the model's, or the true sums for the oracle)
    kept: list[bool]  # per pool item
    correct: list[bool]  # per pool item: was the model's greedy label right
    reason: list[str]  # per pool item: "kept", or why it was dropped
    pool: list[Item] = field(default_factory=list)  # every item labelled this round
    greedy: list[int] = field(default_factory=list)  # the model's greedy label of each pool item

    @property
    def n_kept(self) -> int:
        return sum(self.kept)

    @property
    def n_rejected(self) -> int:
        return len(self.kept) - self.n_kept

    @property
    def kept_wrong(self) -> int:
        """Kept labels that are wrong (the noise the next model trains on)."""
        return sum(1 for (a, b), y in zip(self.items, self.answers) if a + b != y)


#: verifier name -> what it keeps
VERIFIERS = {
    "oracle": "every item, with its true sum (the upper bound: a perfect labeller)",
    "program": "the model's greedy label where a program check (a + b == label) accepts it",
    "vote": "the majority of k sampled labels where at least a share `agree` of them agree (no check needed)",
    "all": "every greedy label of the model, right or wrong",
}


def apply_verifier(name: str, task: AdditionTask, items: Sequence[Item], greedy: Sequence[int],
                   samples: Sequence[Sequence[int]] | None = None, agree: float = 0.8) -> Labels:
    """Keep part of a labelled pool. ``greedy``: the model's greedy labels; ``samples``: per item, the
    labels of ``k`` sampled runs (needed for ``"vote"``)."""
    out = _apply_verifier(name, task, list(items), list(greedy), samples, agree)
    out.pool, out.greedy = list(items), list(greedy)
    return out


def _apply_verifier(name: str, task: AdditionTask, items: list[Item], greedy: list[int],
                    samples: Sequence[Sequence[int]] | None, agree: float) -> Labels:
    correct = [task.check(it, y) for it, y in zip(items, greedy)]
    if name == "oracle":
        return Labels(items, [a + b for a, b in items], [True] * len(items), correct, ["kept"] * len(items))
    if name == "all":
        return Labels(items, list(greedy), [True] * len(items), correct, ["kept"] * len(items))
    if name == "program":
        return Labels([it for it, c in zip(items, correct) if c], [y for y, c in zip(greedy, correct) if c],
                      list(correct), correct, ["kept" if c else "wrong sum" for c in correct])
    if name == "vote":
        if samples is None or len(samples) != len(items):
            raise ValueError("the vote verifier needs k sampled labels per item (samples=...)")
        keep_items, keep_ans, kept, reason = [], [], [], []
        for it, row in zip(items, samples):
            top, n = Counter(row).most_common(1)[0]
            ok = n >= agree * len(row)
            kept.append(ok)
            reason.append("kept" if ok else f"only {n}/{len(row)} samples agree")
            if ok:
                keep_items.append(it)
                keep_ans.append(top)
        return Labels(keep_items, keep_ans, kept, correct, reason)
    raise ValueError(f"unknown verifier {name!r}; pick one of {sorted(VERIFIERS)}")


def train_round(model: TinyLM, task: AdditionTask, items: Sequence[Item], answers: Sequence[int] | None = None, *,
                steps: int = 300, lr: float = 1e-2, batch_size: int = 32, seed: int = 0,
                checkpoint_dir: str | None = None, checkpoint_every: int = 100, stop_after: int | None = None,
                what: str = "this round") -> TrainReport:
    """Train ``model`` (in place, continuing from its weights) for ``steps`` steps on ``items`` labelled with
    ``answers`` (default: the true sums), each step a fresh draw at fresh offsets (:meth:`AdditionTask.batches`).

    With ``checkpoint_dir`` it writes checkpoints every ``checkpoint_every`` steps and a second call with the
    same folder resumes from the newest (see :func:`helpers.train.tiny.train_tiny`). Raises
    :class:`EmptyRoundError` when there is nothing to train on; ``what`` names the round in that message."""
    if len(items) == 0:
        raise EmptyRoundError(f"{what}: no examples to train on (the pool was empty or the verifier rejected "
                              f"every label). Stopping here rather than training on nothing: relax the verifier, "
                              f"label more items, or go back to an easier level.")
    batches = task.batches(items, answers, batch_size=batch_size, seed=seed)
    return train_tiny(model, batches, tokenizer=task.tokenizer, steps=steps, lr=lr, batch_size=batch_size,
                      seq_len=task.max_len - 1, seed=seed, checkpoint_dir=checkpoint_dir,
                      checkpoint_every=checkpoint_every, stop_after=stop_after, progress=False,
                      log_every=max(1, steps // 10))


# --------------------------------------------------------------------------- the loop
@dataclass
class FlywheelResult:
    """What :func:`run_flywheel` measured.

    Attributes:
        accuracy: ``(seed, arm, round) -> {digits: [correct per test item]}`` (round 0 is shared by every arm).
        counts: one dict per (seed, arm, round >= 1): pool size, kept, rejected, kept labels that are wrong,
            and the accuracy of the model's greedy labels on the pool.
        labels: ``(seed, arm, round) -> Labels``, to look at what was kept and rejected.
        notes: messages about rounds that kept nothing (``on_empty="note"``).
        reports: ``(seed, arm, round) -> TrainReport`` of each training call.
        models: ``(seed, arm) -> the model after the last round``, and ``(seed, "round0")`` -> the round-0 model.
        tests: the test items, ``digits -> items``.
    """

    accuracy: dict[tuple[int, str, int], dict[int, list[bool]]] = field(default_factory=dict)
    counts: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[tuple[int, str, int], Labels] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reports: dict[tuple[int, str, int], TrainReport] = field(default_factory=dict)
    models: dict[tuple[int, str], TinyLM] = field(default_factory=dict)
    tests: dict[int, list[Item]] = field(default_factory=dict)
    arms: list[str] = field(default_factory=list)
    rounds: int = 0

    def curve(self, arm: str, digits: int) -> list[list[bool]]:
        """Per round 0..rounds: the correct flags of every seed's test items of ``digits``, pooled."""
        seeds = sorted({s for s, _, _ in self.accuracy})
        return [[c for s in seeds for c in self.accuracy[(s, "round0" if r == 0 else arm, r)][digits]]
                for r in range(self.rounds + 1)]

    def table(self):
        """A long ``pandas.DataFrame``: seed, arm, round, digits, n, accuracy (round 0 repeated for every arm)."""
        import pandas as pd

        rows = []
        for (s, arm, r), by_d in self.accuracy.items():
            for a in (self.arms if r == 0 else [arm]):
                for d, flags in by_d.items():
                    rows.append({"seed": s, "arm": a, "round": r, "digits": d, "n": len(flags),
                                 "accuracy": sum(flags) / len(flags)})
        return pd.DataFrame(rows)

    @property
    def seconds(self) -> float:
        """Seconds spent training, over every call."""
        return sum(r.seconds for r in self.reports.values())


def run_flywheel(task: AdditionTask, *, arms: Sequence[str] = ("oracle", "program", "vote", "all"),
                 seeds: Sequence[int] = (0, 1, 2), rounds: int = 3, seed_digits: Sequence[int] = (1, 2),
                 n_seed: int = 500, n_pool: int = 500, n_test: int = 200, steps0: int = 1200, steps: int = 300,
                 lr: float = 1e-2, batch_size: int = 32, k_vote: int = 5, temperature: float = 1.0,
                 agree: float = 0.8, on_empty: str = "raise",
                 progress: Callable[[str], None] | None = print) -> FlywheelResult:
    """Generate, verify, train, repeat, for each arm and seed, with the same pools and steps for every arm.

    Round 0 trains one model per seed on ``n_seed`` labelled items of ``seed_digits`` digits. In round
    ``r`` each arm's current model labels ``n_pool`` new items of ``max(seed_digits) + r`` digits (never
    trained on, the same items for every arm), the arm's verifier keeps some, and the model trains ``steps``
    more steps on everything kept so far plus the labelled seed set. After every round each model is
    tested (greedy) on ``n_test`` held-out items of each length from 1 digit to ``task.max_digits``.

    ``on_empty``: what a round that keeps nothing does: ``"raise"`` (:class:`EmptyRoundError`) or
    ``"note"`` (record a message in :attr:`FlywheelResult.notes`, say it through ``progress``, and train on
    what was kept before).
    """
    import copy

    unknown = [a for a in arms if a not in VERIFIERS]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; pick from {sorted(VERIFIERS)}")
    if on_empty not in ("raise", "note"):
        raise ValueError(f"on_empty must be 'raise' or 'note', got {on_empty!r}")
    top = max(seed_digits) + rounds
    if top > task.max_digits:
        raise ValueError(f"round {rounds} needs {top}-digit items but max_len={task.max_len} fits {task.max_digits}")
    say = progress or (lambda _msg: None)
    res = FlywheelResult(arms=list(arms), rounds=rounds)
    res.tests = {d: task.sample(min(n_test, 50) if d == 1 else n_test, d, seed=10_000 + d)
                 for d in range(1, task.max_digits + 1)}
    held_out = [it for items in res.tests.values() for it in items]
    for s in seeds:
        seed_items = task.sample(n_seed, list(seed_digits), seed=s, exclude=held_out)
        base = task.new_model(seed=s)
        res.models[(s, "round0")] = base
        res.reports[(s, "round0", 0)] = train_round(base, task, seed_items, steps=steps0, lr=lr,
                                                    batch_size=batch_size, seed=s, what="round 0")
        res.accuracy[(s, "round0", 0)] = accuracy_by_digits(base, task, res.tests, seed=s)
        say(f"seed {s} round 0: " + _fmt_acc(res.accuracy[(s, "round0", 0)]))
        pools = [task.sample(n_pool, max(seed_digits) + r, seed=1000 * s + r,
                             exclude=held_out + seed_items) for r in range(1, rounds + 1)]
        for arm in arms:
            model = copy.deepcopy(base)  # every arm starts from the same round-0 model
            data_items, data_answers = list(seed_items), [a + b for a, b in seed_items]
            for r in range(1, rounds + 1):
                pool = pools[r - 1]
                greedy = label_items(model, task, pool, seed=s * 100 + r)
                samples = None
                if arm == "vote":
                    runs = [label_items(model, task, pool, temperature=temperature, seed=s * 100 + r + 7 * (j + 1))
                            for j in range(k_vote)]
                    samples = [list(col) for col in zip(*runs)]
                lab = apply_verifier(arm, task, pool, greedy, samples, agree=agree)
                res.labels[(s, arm, r)] = lab
                res.counts.append({"seed": s, "arm": arm, "round": r, "digits": max(seed_digits) + r,
                                   "pool": len(pool), "kept": lab.n_kept, "rejected": lab.n_rejected,
                                   "kept_wrong": lab.kept_wrong,
                                   "label_accuracy": sum(lab.correct) / len(lab.correct)})
                what = f"seed {s}, arm {arm}, round {r} ({max(seed_digits) + r}-digit items)"
                if lab.n_kept == 0:
                    msg = (f"{what}: the verifier rejected all {len(pool)} labels, so this round adds no data")
                    if on_empty == "raise":
                        raise EmptyRoundError(msg + ". Stopping: relax the verifier, label more items, or go "
                                                    "back to an easier level.")
                    res.notes.append(msg)
                    say("NOTE " + msg + "; training on the data kept so far")
                data_items += lab.items
                data_answers += lab.answers
                res.reports[(s, arm, r)] = train_round(model, task, data_items, data_answers, steps=steps, lr=lr,
                                                       batch_size=batch_size, seed=s * 100 + r, what=what)
                res.accuracy[(s, arm, r)] = accuracy_by_digits(model, task, res.tests, seed=s)
            res.models[(s, arm)] = model
            say(f"seed {s} {arm:>7}: kept " + "/".join(str(c["kept"]) for c in res.counts
                                                       if c["seed"] == s and c["arm"] == arm)
                + f" of {n_pool} per round; last round " + _fmt_acc(res.accuracy[(s, arm, rounds)]))
    return res


def _fmt_acc(by_d: dict[int, list[bool]]) -> str:
    return ", ".join(f"{d}-digit {sum(v) / len(v):.2f}" for d, v in by_d.items())


# --------------------------------------------------------------------------- collapse metrics
def _units(text: str, unit: str) -> list[str]:
    if unit == "char":
        return list(text)
    if unit == "word":
        return text.split()
    raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")


def distinct_n(texts: Iterable[str], n: int = 2, unit: str = "word") -> float:
    """Distinct-n (Li et al., 2016): unique n-grams over all n-grams of ``texts`` (``0.0`` when there are none).

    ``unit``: ``"word"`` (whitespace tokens) or ``"char"``. Falls as text gets repetitive."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    grams: list[tuple[str, ...]] = []
    for t in texts:
        u = _units(t, unit)
        grams += [tuple(u[i:i + n]) for i in range(len(u) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def char_counts(texts: Iterable[str]) -> Counter:
    """How often each character occurs in ``texts``."""
    c: Counter = Counter()
    for t in texts:
        c.update(t)
    return c


def rare_chars(texts: Iterable[str], tail: float = 0.05) -> set[str]:
    """The tail of a corpus: its rarest characters that together make up at most ``tail`` of all characters."""
    if not 0 < tail < 1:
        raise ValueError(f"tail must be between 0 and 1, got {tail}")
    counts = char_counts(texts)
    total = sum(counts.values())
    out, mass = set(), 0
    for ch, n in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])):
        if (mass + n) / total > tail:
            break
        out.add(ch)
        mass += n
    return out


def tail_share(texts: Iterable[str], rare: set[str]) -> float:
    """Share of the characters of ``texts`` that belong to ``rare`` (``0.0`` for no characters)."""
    counts = char_counts(texts)
    total = sum(counts.values())
    return sum(n for ch, n in counts.items() if ch in rare) / total if total else 0.0


# --------------------------------------------------------------------------- the collapse loop
#: regime -> what each generation trains on
REGIMES = {
    "replace": "only the samples of the previous generation (the real text is thrown away)",
    "accumulate": "the real text plus the samples of every generation so far",
    "accumulate+filter": "the same, minus samples the real-data model finds unlikely, and exact duplicates",
}


@dataclass
class CollapseResult:
    """What :func:`run_collapse` measured: one row per (regime, generation) in :attr:`rows`
    (generation 0 is the model trained on real text, shared by every regime; the row with regime
    ``"real text"`` describes the real training text itself), the samples of each generation, the
    rare characters, and the training reports."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    rare: set[str] = field(default_factory=set)
    reports: dict[tuple[str, int], TrainReport] = field(default_factory=dict)
    filter_threshold: float = float("nan")
    log_ppl: dict[tuple[str, int], list[float]] = field(default_factory=dict)  # per held-out real text
    tokenizer: Any = None

    def tail_per_text(self, regime: str, generation: int) -> list[float]:
        """Per sample of that generation: the share of its characters that are rare (``nan`` for an empty one)."""
        return [sum(c in self.rare for c in t) / len(t) if t else float("nan")
                for t in self.samples[(regime, generation)]]

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def value(self, regime: str, generation: int, key: str) -> float:
        for r in self.rows:
            if r["regime"] == regime and r["generation"] == generation:
                return r[key]
        raise KeyError((regime, generation))


def _log_ppl(model: TinyLM, tok: CharTokenizer, texts: Sequence[str]) -> list[float]:
    import math

    return [math.log(p) for p in perplexity(model, tok, list(texts))]


def run_collapse(real_train: Sequence[str], real_test: Sequence[str], *, generations: int = 4,
                 regimes: Sequence[str] = tuple(REGIMES), n_samples: int | None = None, steps: int = 300,
                 lr: float = 1e-2, batch_size: int = 32, temperature: float = 0.8, max_new_tokens: int | None = None,
                 filter_quantile: float = 0.9, tail: float = 0.05, d_model: int = 64, n_layers: int = 2,
                 n_heads: int = 4, max_len: int = 80, seed: int = 0,
                 progress: Callable[[str], None] | None = print) -> CollapseResult:
    """Train a character-level tiny model on real text, then retrain it for ``generations`` generations on
    samples of the previous generation, under each regime of :data:`REGIMES`.

    Every generation trains a fresh model for ``steps`` steps (same compute in every regime) and samples
    ``n_samples`` texts (default: as many as there are real training texts) at ``temperature`` from an empty
    prompt. Measured per generation: perplexity on ``real_test`` (geometric mean over texts), distinct-1/2
    (words) and distinct-3 (characters) of the samples, and the share of the rare characters of the real
    text (its rarest characters that make up ``tail`` of it) in the samples. The filter keeps samples whose
    perplexity under the generation-0 model is at most the ``filter_quantile`` quantile of the real test
    texts' perplexities, dropping empty samples and exact duplicates.
    """
    import math

    import numpy as np

    bad = [r for r in regimes if r not in REGIMES]
    if bad:
        raise ValueError(f"unknown regimes {bad}; pick from {sorted(REGIMES)}")
    real_train, real_test = [t for t in real_train if t], [t for t in real_test if t]
    if not real_train or not real_test:
        raise EmptyRoundError("run_collapse needs non-empty real training and test texts")
    n_samples = n_samples or len(real_train)
    max_new_tokens = max_new_tokens or max_len - 2
    say = progress or (lambda _msg: None)
    tok = CharTokenizer.from_corpus(real_train, min_count=2)
    cfg = TinyConfig(vocab_size=tok.vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                     d_ff=4 * d_model, max_len=max_len)
    res = CollapseResult(rare=rare_chars(real_train, tail))

    def fit(texts: list[str], regime: str, g: int) -> TinyLM:
        if not any(texts):
            raise EmptyRoundError(f"{regime}, generation {g}: no text to train on (every sample was empty or "
                                  f"filtered out). Stopping rather than training on nothing.")
        model = TinyLM(cfg, seed=seed + g)
        res.reports[(regime, g)] = train_tiny(model, texts, tokenizer=tok, steps=steps, lr=lr,
                                              batch_size=batch_size, seq_len=max_len - 1, seed=seed + g,
                                              progress=False, log_every=max(1, steps // 10))
        return model

    def sample(model: TinyLM, g: int, regime: str) -> list[str]:
        out = generate(model, tok, [""] * n_samples, max_new_tokens=max_new_tokens, temperature=temperature,
                       seed=seed * 7919 + g * 31 + len(regime))
        res.samples[(regime, g)] = out
        return out

    res.tokenizer = tok

    def measure(regime: str, g: int, model: TinyLM | None, texts: list[str], n_train: int, dropped: int) -> None:
        row = {"regime": regime, "generation": g, "train_texts": n_train, "filtered_out": dropped}
        if model is not None:
            res.log_ppl[(regime, g)] = _log_ppl(model, tok, real_test)
        row["ppl_real"] = float(math.exp(np.mean(res.log_ppl[(regime, g)]))) if model is not None else float("nan")
        row["distinct_1"] = distinct_n(texts, 1, "word")
        row["distinct_2"] = distinct_n(texts, 2, "word")
        row["distinct_3_char"] = distinct_n(texts, 3, "char")
        row["tail_share"] = tail_share(texts, res.rare)
        row["chars_used"] = len(char_counts(texts))
        row["mean_len"] = float(np.mean([len(t) for t in texts])) if texts else 0.0
        res.rows.append(row)

    measure("real text", 0, None, list(real_train), len(real_train), 0)
    base = fit(list(real_train), "real", 0)
    first = sample(base, 0, "real")
    res.filter_threshold = float(np.quantile(_log_ppl(base, tok, real_test), filter_quantile))
    say(f"generation 0 (real text): {res.reports[('real', 0)].seconds:.0f}s of training")
    for regime in regimes:
        measure(regime, 0, base, first, len(real_train), 0)
        pool: list[str] = []
        latest, dropped_total = first, 0
        for g in range(1, generations + 1):
            dropped = 0
            if regime == "replace":
                train = list(latest)
            else:
                new = list(latest)
                if regime == "accumulate+filter":
                    seen = set(pool) | set(real_train)
                    scores = _log_ppl(base, tok, [t or " " for t in new])
                    keep = []
                    for t, s in zip(new, scores):
                        if t and s <= res.filter_threshold and t not in seen:
                            keep.append(t)
                            seen.add(t)
                    dropped = len(new) - len(keep)
                    new = keep
                pool += new
                train = list(real_train) + pool
            dropped_total += dropped
            model = fit(train, regime, g)
            latest = sample(model, g, regime)
            measure(regime, g, model, latest, len(train), dropped)
        last = res.rows[-1]
        say(f"{regime:>17}: generation {generations} perplexity on real text {last['ppl_real']:.2f}, "
            f"tail share {last['tail_share']:.4f}" + (f", filtered out {dropped_total}" if dropped_total else ""))
    return res
