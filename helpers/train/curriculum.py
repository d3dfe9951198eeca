"""Curriculum learning on synthetic data: difficulty scores, training orders, and a grid of budgets, label
noise and seeds, on tiny models that train in seconds (chapter 10).

The task is the column-wise addition of chapter 08 (:class:`helpers.train.flywheel.AdditionTask`): unlimited
items, answers a program checks, and a difficulty known by construction. Unlike chapter 08, texts start at the
first position (no random offset; :func:`predict` answers the same way): the test items have the lengths of the
training items, and a model this small leaves its initial plateau far sooner. Every item gets **difficulty scores**
from three kinds of source (:func:`difficulty_scores`):

* *known* difficulty, what the generator or a verifier knows: the digits of the longer operand and the number of
  carries (:func:`carries`), combined as ``digits + carries / 10`` (digits first, carries break ties);
* a *teacher's loss*: a tiny model trained briefly on another slice of the same source scores each example's
  label by its mean loss on the sum digits (:func:`answer_losses`); a wrong label costs it a lot;
* *length*: the characters of the problem as a person writes it, ``"347+8"``: a proxy that needs no model.

:func:`make_batches` turns a pool, its labels, an **order** and a score into a function ``step -> batch`` for
:func:`helpers.train.tiny.train_tiny` (it depends only on the step, so a resumed run sees the same batches):

* ``"random"``: every step draws uniformly from the whole pool (the usual i.i.d. training);
* ``"easy-to-hard"``: items sorted by the score, each step draws from the easiest share :func:`pacing` allows,
  a share that grows linearly from ``start`` to the whole pool at ``ramp`` of the run (Wu, Dyer and Neyshabur,
  ICLR 2021); ``"hard-to-easy"``: the same from the hard end (an anti-curriculum);
* ``"anneal"``: random for most of the run, then the last ``anneal_share`` of the steps only on the cleanest,
  highest-quality slice (here: the items whose label the program check confirms), as Llama 3 ended
  pre-training on a small high-quality mix while the learning rate decays.

:func:`run_grid` trains the same model on the same pool in each order, for several training budgets (steps;
examples seen = steps x batch), with and without label noise (:func:`corrupt_labels`: a share of the labels
replaced by wrong sums, known by construction), over several seeds, and tests each model on held-out items of
every length. :func:`cluster_bootstrap_diff` compares two orders with an interval that resamples seeds and
test items, and :func:`verdict` words the comparison from the numbers.

>>> task = AdditionTask(max_len=22)                   # operands of up to 3 digits
>>> pool = sample_levels(task, 2000, [1, 2, 3], seed=0)
>>> answers, noisy = corrupt_labels(task, pool, share=0.2, seed=0)
>>> teacher = train_teacher(task, other_items, other_answers, steps=500)
>>> scores = difficulty_scores(task, pool, answers, teacher=teacher)
>>> report = train_ordered(task, pool, answers, order="easy-to-hard", scores=scores["known"], steps=400)
>>> correct(report.model, task, test_items)
>>> res = run_grid(task, orders=[("random", None), ("easy-to-hard", "teacher"), ("anneal", None)],
...                budgets=[250, 800], noise_levels=[0.0, 0.2], seeds=[0, 1, 2])
>>> verdict("anneal", "random", res.matrix(0.2, "anneal", 800), res.matrix(0.2, "random", 800))["text"]
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from helpers.core.jobs import fingerprint
from helpers.train.flywheel import AdditionTask
from helpers.train.report import TrainReport
from helpers.train.tiny import TinyLM, latest_checkpoint, train_tiny

__all__ = ["carries", "sample_levels", "corrupt_labels", "answer_losses", "train_teacher", "difficulty_scores",
           "SCORES", "ORDERS", "predict", "correct", "pacing", "rank_items", "make_batches", "train_ordered",
           "cell_name", "run_grid", "GridResult", "cluster_bootstrap_diff", "cluster_bootstrap_ci", "verdict"]

Item = tuple[int, int]

#: score name -> what it measures (every one: higher is harder)
SCORES = {
    "known": "digits of the longer operand + carries / 10, known by construction (what a verifier knows)",
    "digits": "digits of the longer operand",
    "carries": "columns that carry a one into the next",
    "teacher": "a teacher's mean loss on the label's sum digits (a small model trained briefly on another slice)",
    "length": "characters of the problem as written, 'a+b'",
}

#: order -> how the training steps draw from the pool
ORDERS = {
    "random": "every step draws uniformly from the whole pool",
    "easy-to-hard": "sorted by the score; each step draws from the easiest share, growing to the whole pool",
    "hard-to-easy": "the same from the hardest end (anti-curriculum)",
    "anneal": "random, then the last part of the run only on the clean slice (labels the program check confirms)",
}


# --------------------------------------------------------------------------- data
def carries(item: Item) -> int:
    """How many columns of ``a + b`` carry a one into the next column."""
    a, b = item
    c = n = 0
    while a or b:
        c = 1 if a % 10 + b % 10 + c >= 10 else 0
        n += c
        a, b = a // 10, b // 10
    return n


def sample_levels(task: AdditionTask, n: int, digits: Sequence[int], seed: int = 0,
                  exclude: Sequence[Item] = ()) -> list[Item]:
    """``n`` distinct items spread evenly over the ``digits`` levels (a level with fewer free pairs than its share,
    such as 1-digit sums, gives what it has and the others make up the rest), shuffled, none in ``exclude``."""
    levels = sorted(set(digits))
    taken = set(exclude)
    free = {}
    for d in levels:
        space = 10 ** (2 * d) - (10 ** (2 * d - 2) if d > 1 else 0)
        free[d] = space - sum(1 for it in taken if task.digits_of(it) == d)
    share, left = {}, n
    for i, d in enumerate(sorted(levels, key=lambda d: free[d])):  # the smallest levels first
        want = math.ceil(left / (len(levels) - i))
        share[d] = min(want, max(0, free[d]))
        left -= share[d]
    if left > 0:
        raise ValueError(f"only {n - left} free items with {levels} digits; asked for {n}")
    out: list[Item] = []
    for d in levels:
        if share[d]:
            got = task.sample(share[d], d, seed=seed * 31 + d,
                              exclude=[it for it in taken if task.digits_of(it) == d])
            taken.update(got)
            out += got
    random.Random(f"shuffle-{seed}").shuffle(out)  # a stream of its own, not the one batches draw from
    return out


def corrupt_labels(task: AdditionTask, items: Sequence[Item], share: float, seed: int = 0
                   ) -> tuple[list[int], list[bool]]:
    """Labels for ``items`` where a ``share`` of them (chosen at random) is a wrong sum: a random number with as
    many columns as the true one (so it fits the written form), never the true sum. Returns
    ``(answers, noisy)`` where ``noisy[i]`` says whether item ``i``'s label was corrupted."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    rng = random.Random(f"noise-{seed}")  # a stream of its own: which labels are wrong must not follow the batches
    n_bad = round(share * len(items))
    bad = set(rng.sample(range(len(items)), n_bad))
    answers, noisy = [], []
    for i, (a, b) in enumerate(items):
        if i in bad:
            cols = task.digits_of((a, b)) + 1
            y = a + b
            while y == a + b:
                y = rng.randint(0, 10 ** cols - 1)
            answers.append(y)
        else:
            answers.append(a + b)
        noisy.append(i in bad)
    return answers, noisy


# --------------------------------------------------------------------------- answering
@torch.no_grad()
def predict(model: TinyLM, task: AdditionTask, items: Sequence[Item], batch_size: int = 512) -> list[int]:
    """The model's greedy answer to each item, written from the first position (no offset filler): the
    operand digits of each column are given, the model writes the sum digit, column by column. Items of one
    length go through the model together."""
    was = model.training
    model.eval()
    tok = task.tokenizer
    digit_ids = torch.tensor(task.digit_ids)
    answers = [0] * len(items)
    groups: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(task.digits_of(it), []).append(i)
    for d, idx_all in sorted(groups.items()):
        for start in range(0, len(idx_all), batch_size):
            idx = idx_all[start:start + batch_size]
            cols = [task.columns(items[i]) for i in idx]
            ids = torch.full((len(idx), 1), tok.bos_id, dtype=torch.long)
            written = []
            for j in range(d + 1):
                sep = [tok.stoi[","]] if j else []
                prompt = torch.tensor([sep + [tok.stoi[c[j][0]], tok.stoi[c[j][1]], tok.stoi["="]] for c in cols])
                ids = torch.cat([ids, prompt], 1)
                pick = model(ids)[:, -1, digit_ids].argmax(-1)
                written.append(pick)
                ids = torch.cat([ids, digit_ids[pick][:, None]], 1)
            digits = torch.stack(written, 1).tolist()
            for r, i in enumerate(idx):
                answers[i] = int("".join(str(x) for x in digits[r])[::-1])
    model.train(was)
    return answers


def correct(model: TinyLM, task: AdditionTask, items: Sequence[Item]) -> list[bool]:
    """Per item: is the model's greedy answer (:func:`predict`) the sum?"""
    return [task.check(it, y) for it, y in zip(items, predict(model, task, items))]


# --------------------------------------------------------------------------- scores
@torch.no_grad()
def answer_losses(model: TinyLM, task: AdditionTask, items: Sequence[Item], answers: Sequence[int] | None = None,
                  batch_size: int = 512) -> list[float]:
    """Per item: the model's mean negative log-likelihood (nats) of the label's sum digits, each given the text
    before it (the operand digits are unpredictable and left out). A label the model finds unlikely, because the
    item is hard for it or because the label is wrong, scores high."""
    was = model.training
    model.eval()
    tok = task.tokenizer
    out: list[float] = []
    for start in range(0, len(items), batch_size):
        chunk = list(range(start, min(len(items), start + batch_size)))
        rows = [[tok.bos_id] + tok.encode(task.format(*items[i], None if answers is None else answers[i]))
                for i in chunk]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows])
        logp = torch.log_softmax(model(ids[:, :-1]).float(), -1)
        nll = -logp.gather(2, ids[:, 1:, None]).squeeze(2)  # nll[:, j]: the j-th character of the text
        for r, i in enumerate(chunk):
            cols = task.digits_of(items[i]) + 1
            pos = [5 * k + 3 for k in range(cols)]  # "ab=s," -> the sum digit is the 4th character of a column
            out.append(float(nll[r, pos].mean()))
    model.train(was)
    return out


def train_teacher(task: AdditionTask, items: Sequence[Item], answers: Sequence[int], *, steps: int = 200,
                  lr: float = 1e-2, batch_size: int = 32, seed: int = 0) -> TinyLM:
    """A teacher for :func:`answer_losses`: a fresh model of ``task``'s shape trained ``steps`` steps on
    ``items`` with ``answers`` (right or wrong), in random order."""
    model = task.new_model(seed=seed + 7919)
    train_tiny(model, make_batches(task, items, answers, order="random", steps=steps, batch_size=batch_size,
                                   seed=seed + 7919),
               tokenizer=task.tokenizer, steps=steps, lr=lr, batch_size=batch_size, seq_len=task.max_len - 1,
               seed=seed + 7919, progress=False, log_every=max(1, steps // 10))
    return model


def difficulty_scores(task: AdditionTask, items: Sequence[Item], answers: Sequence[int] | None = None,
                      teacher: TinyLM | None = None) -> dict[str, list[float]]:
    """Every score of :data:`SCORES` for each item (``"teacher"`` only when a teacher is given); higher is
    harder. ``answers`` are the labels the teacher scores (default: the true sums)."""
    digits = [float(task.digits_of(it)) for it in items]
    carry = [float(carries(it)) for it in items]
    out = {"known": [d + c / 10 for d, c in zip(digits, carry)], "digits": digits, "carries": carry,
           "length": [float(len(f"{a}+{b}")) for a, b in items]}
    if teacher is not None:
        out["teacher"] = answer_losses(teacher, task, items, answers)
    return out


# --------------------------------------------------------------------------- orders
def pacing(step: int, steps: int, start: float = 0.2, ramp: float = 0.8) -> float:
    """The share of the sorted pool a curriculum may draw from at ``step`` (0-based) of ``steps``: ``start`` at
    the first step, growing linearly to 1 at ``ramp`` of the run, 1 after (the linear pacing function of Wu et
    al., 2021)."""
    if not 0 < start <= 1 or not 0 < ramp <= 1:
        raise ValueError(f"need 0 < start <= 1 and 0 < ramp <= 1, got start={start}, ramp={ramp}")
    return min(1.0, start + (1 - start) * step / max(1.0, ramp * steps))


def rank_items(scores: Sequence[float], hardest_first: bool = False, seed: int = 0) -> list[int]:
    """Item indices sorted by score, easiest first (or hardest first); ties are broken at random (seeded), so a
    coarse score such as digits does not fall back on the order the items were generated in."""
    rng = random.Random(seed)
    tie = [rng.random() for _ in scores]
    sign = -1.0 if hardest_first else 1.0
    return sorted(range(len(scores)), key=lambda i: (sign * scores[i], tie[i]))


def make_batches(task: AdditionTask, items: Sequence[Item], answers: Sequence[int], *, order: str,
                 steps: int, scores: Sequence[float] | None = None, clean: Sequence[bool] | None = None,
                 batch_size: int = 32, seed: int = 0, start: float = 0.2, ramp: float = 0.8,
                 anneal_share: float = 0.2, random_offset: bool = False) -> Callable[[int], torch.Tensor]:
    """A function ``step -> (batch_size, <= max_len)`` token ids that draws the pool in ``order`` (see
    :data:`ORDERS`) over a run of ``steps`` steps; it depends only on ``step`` and ``seed``.

    ``scores`` (higher is harder) drive ``"easy-to-hard"`` and ``"hard-to-easy"`` with :func:`pacing`
    (``start``, ``ramp``); ``clean`` (per item; default every item) is the slice ``"anneal"`` ends on, for its
    last ``anneal_share`` of the steps. Texts start at the first position (what :func:`predict` expects), or at
    a random offset with ``random_offset=True`` (as :meth:`AdditionTask.batches` does, for length
    generalisation; it makes the model much slower to learn)."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; pick one of {list(ORDERS)}")
    if len(items) == 0 or len(items) != len(answers):
        raise ValueError(f"need as many answers as items, and at least one item: {len(items)} vs {len(answers)}")
    curriculum = order in ("easy-to-hard", "hard-to-easy")
    if curriculum and (scores is None or len(scores) != len(items)):
        raise ValueError(f"order {order!r} needs one score per item")
    if clean is not None and len(clean) != len(items):
        raise ValueError(f"clean needs one flag per item: {len(clean)} vs {len(items)}")
    tok = task.tokenizer
    encoded = [tok.encode(task.format(a, b, y)) for (a, b), y in zip(items, answers)]
    if any(len(e) + 2 > task.max_len for e in encoded):
        raise ValueError(f"an item does not fit max_len={task.max_len}")
    fill = tok.stoi[task.filler]
    ranked = rank_items(scores, order == "hard-to-easy", seed) if curriculum else list(range(len(items)))
    clean_idx = list(range(len(items))) if clean is None else [i for i, c in enumerate(clean) if c]
    if order == "anneal" and not clean_idx:
        raise ValueError("the anneal order needs a non-empty clean slice")
    switch = steps - round(anneal_share * steps)

    def pick(rng: random.Random, step: int) -> int:
        if curriculum:
            n = max(1, math.ceil(pacing(step, steps, start, ramp) * len(ranked)))
            return ranked[rng.randrange(n)]
        if order == "anneal" and step >= switch:
            return clean_idx[rng.randrange(len(clean_idx))]
        return rng.randrange(len(items))

    def batch(step: int) -> torch.Tensor:
        rng = random.Random(seed * 1_000_003 + step)
        rows = []
        for _ in range(batch_size):
            e = encoded[pick(rng, step)]
            k = rng.randint(0, task.max_len - 2 - len(e)) if random_offset else 0
            rows.append([tok.bos_id] + [fill] * k + e + [tok.eos_id])
        width = max(len(r) for r in rows)
        return torch.tensor([r + [tok.pad_id] * (width - len(r)) for r in rows], dtype=torch.long)

    return batch


def train_ordered(task: AdditionTask, items: Sequence[Item], answers: Sequence[int], *, order: str, steps: int,
                  scores: Sequence[float] | None = None, clean: Sequence[bool] | None = None, seed: int = 0,
                  lr: float = 1e-2, batch_size: int = 32, start: float = 0.2, ramp: float = 0.8,
                  anneal_share: float = 0.2, eval_fn: Callable[[TinyLM, int], dict[str, float]] | None = None,
                  eval_every: int = 100, checkpoint_dir: str | Path | None = None, checkpoint_every: int | None = None,
                  stop_after: int | None = None) -> TrainReport:
    """A fresh model (seeded by ``seed``, so every order starts from the same weights) trained ``steps`` steps on
    the pool drawn in ``order`` (:func:`make_batches`); returns the :class:`TrainReport` (its ``model``).

    With ``checkpoint_dir`` the run writes a checkpoint every ``checkpoint_every`` steps (default: at its middle)
    and at its end, and a second call with the same folder resumes from the newest
    (:func:`helpers.train.tiny.train_tiny`); a finished run is loaded, not retrained."""
    model = task.new_model(seed=seed)
    batches = make_batches(task, items, answers, order=order, steps=steps, scores=scores, clean=clean,
                           batch_size=batch_size, seed=seed, start=start, ramp=ramp, anneal_share=anneal_share)
    return train_tiny(model, batches, tokenizer=task.tokenizer, steps=steps, lr=lr, batch_size=batch_size,
                      seq_len=task.max_len - 1, seed=seed, eval_fn=eval_fn, eval_every=eval_every,
                      log_every=max(1, steps // 20), checkpoint_dir=checkpoint_dir,
                      checkpoint_every=checkpoint_every or max(1, steps // 2), keep_checkpoints=1,
                      stop_after=stop_after, progress=False)


# --------------------------------------------------------------------------- the grid
def cell_name(order: str, score: str | None = None) -> str:
    """How a cell of the grid is named: ``"random"``, ``"anneal"``, ``"easy-to-hard (known)"``, ..."""
    return order if score is None else f"{order} ({score})"


@dataclass
class GridResult:
    """What :func:`run_grid` measured.

    Attributes:
        flags: ``(seed, noise, cell, budget) -> {digits: [correct per test item]}``; the test items are the
            same in every cell, so two cells compare item by item. ``cell`` is a :func:`cell_name`.
        curves: ``(seed, noise, cell, budget) -> [(step, accuracy on all test items), ...]``, the learning curve
            (measured along the runs of the largest budget only; the others hold their end point).
        scores: ``(seed, noise) -> {score name: [per pool item]}``.
        pools: ``seed -> the training items``; ``labels``: ``(seed, noise) -> (answers, noisy flags)``.
        tests: ``digits -> held-out items``.
        seconds: ``(seed, noise, cell, budget) -> training seconds`` (0 for a run loaded from a checkpoint).
        resumed: the cells loaded or resumed from a checkpoint; ``shared``: cells that are another cell by
            construction (``anneal`` without noise is ``random``) and reuse its run.
    """

    flags: dict[tuple[int, float, str, int], dict[int, list[bool]]] = field(default_factory=dict)
    curves: dict[tuple[int, float, str, int], list[tuple[int, float]]] = field(default_factory=dict)
    scores: dict[tuple[int, float], dict[str, list[float]]] = field(default_factory=dict)
    pools: dict[int, list[Item]] = field(default_factory=dict)
    labels: dict[tuple[int, float], tuple[list[int], list[bool]]] = field(default_factory=dict)
    tests: dict[int, list[Item]] = field(default_factory=dict)
    seconds: dict[tuple[int, float, str, int], float] = field(default_factory=dict)
    resumed: list[tuple[int, float, str, int]] = field(default_factory=list)
    shared: list[tuple[int, float, str, int]] = field(default_factory=list)
    teacher_seconds: float = 0.0

    @property
    def seeds(self) -> list[int]:
        return sorted({k[0] for k in self.flags})

    def matrix(self, noise: float, cell: str, budget: int, digits: Sequence[int] | None = None) -> np.ndarray:
        """Correct flags as an array ``(seeds, test items)`` (the test items of ``digits``, default all)."""
        ds = sorted(self.tests) if digits is None else list(digits)
        return np.array([[c for d in ds for c in self.flags[(s, noise, cell, budget)][d]] for s in self.seeds],
                        dtype=float)

    def table(self):
        """A long ``pandas.DataFrame``: seed, noise, cell, budget, digits, n, accuracy."""
        import pandas as pd

        return pd.DataFrame([{"seed": s, "noise": p, "cell": c, "budget": b, "digits": d, "n": len(v),
                              "accuracy": sum(v) / len(v)}
                             for (s, p, c, b), by_d in self.flags.items() for d, v in by_d.items()])

    @property
    def train_seconds(self) -> float:
        return sum(self.seconds.values())


def run_grid(task: AdditionTask, *, orders: Sequence[tuple[str, str | None]], budgets: Sequence[int],
             noise_levels: Sequence[float], seeds: Sequence[int], n_train: int = 2000, n_test: int = 100,
             digits: Sequence[int] | None = None, teacher_items: int = 400, teacher_steps: int = 500,
             lr: float = 1e-2, batch_size: int = 32, start: float = 0.2, ramp: float = 0.8,
             anneal_share: float = 0.2, curve_points: int = 8, checkpoint_root: str | Path | None = None,
             progress: Callable[[str], None] | None = print) -> GridResult:
    """Train every ``(order, score)`` of ``orders`` (score ``None`` for ``random`` and ``anneal``) for every budget
    in ``budgets`` (steps), label-noise share in ``noise_levels`` and seed, on the same pool and test items.

    Per seed: a pool of ``n_train`` items spread over ``digits`` (default 1 to ``task.max_digits``); per noise
    level its labels (:func:`corrupt_labels`, the same corrupted items for every order), the clean slice (labels
    the program check confirms) and the difficulty scores, the teacher trained ``teacher_steps`` steps on
    ``teacher_items`` other items of the same noisy source. Every run starts from the seed's initial weights,
    logs its accuracy on all test items ``curve_points`` times (runs of the largest budget only), and is tested
    greedy on ``n_test`` held-out items per length (1-digit: at most 50). Without noise the clean slice is the
    whole pool, so ``anneal`` *is* ``random`` (the same batches); it reuses that run and is listed in
    :attr:`GridResult.shared`.

    With ``checkpoint_root`` every run checkpoints into its own folder, named by a fingerprint of everything that
    decides it, and a rerun resumes or loads it (:attr:`GridResult.resumed`).
    """
    for o, s in orders:
        if o not in ORDERS:
            raise ValueError(f"unknown order {o!r}; pick from {list(ORDERS)}")
        if (o in ("easy-to-hard", "hard-to-easy")) != (s is not None):
            raise ValueError(f"order {o!r} with score {s!r}: the curricula need a score, random and anneal none")
        if s is not None and s not in SCORES:
            raise ValueError(f"unknown score {s!r}; pick from {list(SCORES)}")
    if not budgets or not noise_levels or not seeds or not orders:
        raise ValueError("run_grid needs at least one order, budget, noise level and seed")
    say = progress or (lambda _m: None)
    levels = list(digits) if digits is not None else list(range(1, task.max_digits + 1))
    res = GridResult()
    res.tests = {d: task.sample(min(n_test, 50) if d == 1 else n_test, d, seed=10_000 + d) for d in levels}
    held_out = [it for v in res.tests.values() for it in v]
    all_test = [it for d in sorted(res.tests) for it in res.tests[d]]
    root = Path(checkpoint_root) if checkpoint_root is not None else None
    names = [cell_name(o, s) for o, s in orders]

    def eval_fn(model: TinyLM, step: int) -> dict[str, float]:
        flags = correct(model, task, all_test)
        return {"accuracy": sum(flags) / len(flags)}

    for seed in seeds:
        pool = sample_levels(task, n_train, levels, seed=seed, exclude=held_out)
        res.pools[seed] = pool
        side = sample_levels(task, teacher_items, levels, seed=seed + 5000, exclude=held_out + pool)
        for p in noise_levels:
            answers, noisy = corrupt_labels(task, pool, p, seed=seed * 7 + 1)
            side_answers, _ = corrupt_labels(task, side, p, seed=seed * 7 + 2)
            t0 = time.perf_counter()
            teacher = train_teacher(task, side, side_answers, steps=teacher_steps, lr=lr, batch_size=batch_size,
                                    seed=seed)
            scores = difficulty_scores(task, pool, answers, teacher)
            res.teacher_seconds += time.perf_counter() - t0
            res.scores[(seed, p)] = scores
            res.labels[(seed, p)] = (answers, noisy)
            clean = [task.check(it, y) for it, y in zip(pool, answers)]  # the program check
            for budget in budgets:
                for (order, score), name in zip(orders, names):
                    key = (seed, p, name, budget)
                    if order == "anneal" and all(clean) and ("random", None) in orders:
                        twin = (seed, p, "random", budget)
                        if twin in res.flags:
                            res.flags[key], res.curves[key], res.seconds[key] = res.flags[twin], res.curves[twin], 0.0
                            res.shared.append(key)
                            continue
                    ckpt = None
                    if root is not None:
                        fp = fingerprint({"pool": pool, "answers": answers, "order": order,
                                          "scores": None if score is None else scores[score],
                                          "clean": clean if order == "anneal" else None, "start": start,
                                          "ramp": ramp, "anneal": anneal_share, "task": [task.max_len, task.d_model,
                                                                                          task.n_layers, task.d_ff],
                                          "curve": curve_points, "tests": all_test})
                        ckpt = root / f"seed{seed}-noise{p:g}-{order}-{score or 'none'}-{budget}-{fp}"
                        if latest_checkpoint(ckpt) is not None:
                            res.resumed.append(key)
                    rep = train_ordered(task, pool, answers, order=order, steps=budget,
                                        scores=None if score is None else scores[score], clean=clean, seed=seed,
                                        lr=lr, batch_size=batch_size, start=start, ramp=ramp,
                                        anneal_share=anneal_share,
                                        eval_fn=eval_fn if budget == max(budgets) and curve_points else None,
                                        eval_every=max(1, budget // max(1, curve_points)), checkpoint_dir=ckpt)
                    res.seconds[key] = rep.seconds  # a finished run is loaded into rep.model by train_tiny
                    res.flags[key] = {d: correct(rep.model, task, v) for d, v in res.tests.items()}
                    end = float(np.mean([c for v in res.flags[key].values() for c in v]))
                    res.curves[key] = [(e["step"], e["accuracy"]) for e in rep.log_history
                                       if "accuracy" in e] or [(budget, end)]
                acc = {n: np.mean([c for v in res.flags[(seed, p, n, budget)].values() for c in v]) for n in names}
                say(f"seed {seed}, noise {p:.0%}, {budget} steps: " + ", ".join(f"{k} {v:.2f}" for k, v in acc.items()))
    return res


# --------------------------------------------------------------------------- comparing
def cluster_bootstrap_diff(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, alpha: float = 0.05,
                           seed: int = 0) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` for two ``(seeds, items)`` arrays of per-item scores on the same items, and a
    ``1 - alpha`` percentile interval from a two-level bootstrap: resample the seeds (training runs), then the
    test items, keeping each pair together. It counts the run-to-run spread of training as well as the sampling
    of test items, so it is wider than an item-only bootstrap; with few seeds it is still optimistic."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"need two (seeds, items) arrays of one shape with at least 2 items, got {a.shape}, {b.shape}")
    d = a - b
    rng = np.random.default_rng(seed)
    s, n = d.shape
    means = np.empty(n_boot)
    for i in range(0, n_boot, 200):  # in chunks, to keep memory small
        k = min(200, n_boot - i)
        si = rng.integers(0, s, size=(k, s))
        ii = rng.integers(0, n, size=(k, s, n))
        means[i:i + k] = d[si[:, :, None], ii].mean(axis=(1, 2))
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)


def cluster_bootstrap_ci(a: np.ndarray, *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
                         ) -> tuple[float, float, float]:
    """Mean of a ``(seeds, items)`` array and its two-level bootstrap interval (seeds, then items), as in
    :func:`cluster_bootstrap_diff`."""
    a = np.asarray(a, dtype=float)
    return cluster_bootstrap_diff(a, np.zeros_like(a), n_boot=n_boot, alpha=alpha, seed=seed)


def verdict(name_a: str, name_b: str, a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Compare two ``(seeds, items)`` arrays of correct flags: the difference, its
    :func:`cluster_bootstrap_diff` interval, how many seeds ``a`` wins, and a sentence that says it."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff, lo, hi = cluster_bootstrap_diff(a, b, seed=seed)
    per_seed = a.mean(1) - b.mean(1)
    wins = int((per_seed > 0).sum())
    word = "higher" if lo > 0 else ("lower" if hi < 0 else "not clearly different")
    text = (f"{name_a} - {name_b} = {diff:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}; n = {a.shape[0]} seeds x "
            f"{a.shape[1]} items; {name_a} ahead in {wins} of {a.shape[0]} seeds): {word}")
    return {"a": name_a, "b": name_b, "diff": diff, "lo": lo, "hi": hi, "wins": wins, "seeds": a.shape[0],
            "word": word, "text": text}
