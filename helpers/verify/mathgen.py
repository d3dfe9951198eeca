"""Maths word problems with answers known by construction, and the tools to verify solutions.

The course's maths data pipeline (notebook 06), in the spirit of GSM8K-style training sets
built with verification (Cobbe et al. 2021), rejection sampling (STaR, Zelikman et al. 2022;
Llama 2/3 "rejection sampling fine-tuning") and self-consistency (Wang et al. 2022):

1. :func:`make_problems` writes word problems from templates at several difficulty levels.
   Every number is drawn at random and the answer is **computed by code** as the story is
   built, so no answer is ever typed by hand (and a reference worked solution comes for free).
2. :func:`cot_prompt` asks a model for a short chain of thought ending in ``#### <answer>``.
3. :func:`extract_answer` pulls the final answer out of free text robustly: ``#### 42``,
   ``\\boxed{42}``, "the answer is 42", otherwise the last number; commas, currency, units,
   percentages, fractions and LaTeX ``\\frac`` are understood. :func:`is_correct` compares with
   a tolerance.
4. :func:`grade_chains` grades every chain; :func:`rejection_sample` keeps only verified
   chains as training data, counting why the others were rejected.
5. :func:`majority_vote` and :func:`vote_curve` measure self-consistency: how accuracy of
   the majority answer over ``k`` samples grows with ``k``, against a single sample and against
   ``pass@k`` (the share of problems where *some* sample is right, i.e. what a verifier rescues).
   :func:`helpers.core.stats.bootstrap_ci` gives error bars by resampling problems.

>>> probs = make_problems(6, seed=0)
>>> probs[0].question, probs[0].answer          # doctest: +SKIP
>>> extract_answer("so 3 * 4 = 12.\\n#### 12").value
Fraction(12, 1)
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from helpers.core.stats import pass_at_k

__all__ = [
    "Problem", "TEMPLATES", "make_problem", "make_problems", "format_number", "cot_prompt", "Samples",
    "sample_chains",
    "Extraction", "parse_number", "numbers_in", "extract_answer", "is_correct", "Grade", "grade_chains",
    "RejectionResult", "rejection_sample", "Vote", "majority_vote", "vote_curve",
    "CHAIN_FEATURES",
]

Number = Fraction


# =============================================================================== problems
@dataclass
class Problem:
    """One word problem whose answer was computed by code.

    Attributes:
        id: stable identifier (``"<template>-d<difficulty>-<n>"``).
        template: the story template that wrote it.
        difficulty: 1 (one step) to 3 (four or more steps).
        question: the text shown to the model.
        answer: the exact answer as a :class:`~fractions.Fraction`.
        steps: the reference worked solution, one computed line per step.
        unit: what the answer counts (for display; the answer itself is a bare number).
    """

    id: str
    template: str
    difficulty: int
    question: str
    answer: Fraction
    steps: list[str] = field(default_factory=list)
    unit: str = ""

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def answer_str(self) -> str:
        return format_number(self.answer)

    def reference_solution(self) -> str:
        """The code-computed worked solution, ending in ``#### <answer>``."""
        return "\n".join(self.steps + [f"#### {self.answer_str}"])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["answer"] = self.answer_str
        d["answer_float"] = float(self.answer)
        return d


def format_number(x: Fraction | int | float) -> str:
    """``12``, ``12.5``, ``0.75`` or ``1/3`` (a terminating decimal when there is one)."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    den = x.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:  # terminating decimal
        s = f"{float(x):.10f}".rstrip("0").rstrip(".")
        if Fraction(s) == x:
            return s
    return f"{x.numerator}/{x.denominator}"


def _money(x: Fraction) -> str:
    s = format_number(x)
    if "." in s and len(s.split(".")[1]) == 1:
        s += "0"
    return "$" + s


_NAMES = ["Maya", "Liam", "Aisha", "Noah", "Sofia", "Ravi", "Elena", "Kwame", "Yuki", "Omar", "Lena",
          "Mateo", "Priya", "Jonas", "Chloe", "Diego", "Hana", "Felix", "Zara", "Tom"]
_ITEMS = [("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("ticket", "tickets"),
          ("sandwich", "sandwiches"), ("book", "books"), ("candle", "candles"), ("mug", "mugs")]
_BAKED = ["muffins", "cookies", "rolls", "cupcakes", "pretzels", "bagels"]
_VEHICLES = ["train", "bus", "car", "boat", "cyclist"]


def _shopping(rng: random.Random, d: int) -> tuple[str, Fraction, list[str], str]:
    name = rng.choice(_NAMES)
    (a1, a_pl), (b1, b_pl) = rng.sample(_ITEMS, 2)
    n_a, p_a = rng.randint(2, 9), rng.randint(2, 15)
    total = Fraction(n_a * p_a)
    q = f"{name} buys {n_a} {a_pl} that cost ${p_a} each."
    steps = [f"{n_a} {a_pl} cost {n_a} * {p_a} = {n_a * p_a} dollars."]
    if d >= 2:
        n_b, p_b = rng.randint(2, 9), rng.randint(2, 15)
        total += n_b * p_b
        q += f" {name} also buys {n_b} {b_pl} that cost ${p_b} each."
        steps += [f"{n_b} {b_pl} cost {n_b} * {p_b} = {n_b * p_b} dollars.",
                  f"Together: {n_a * p_a} + {n_b * p_b} = {format_number(total)} dollars."]
    if d >= 3:
        pct = rng.choice([10, 20, 25, 50])
        disc = total * pct / 100
        after = total - disc
        bill = next(b for b in (20, 50, 100, 200, 500) if b >= after)
        change = bill - after
        q += (f" The shop gives {pct}% off the whole bill. {name} pays with a ${bill} note."
              " How many dollars of change does " + name + " get?")
        steps += [f"The discount is {pct}% of {format_number(total)} = {format_number(disc)} dollars.",
                  f"After the discount: {format_number(total)} - {format_number(disc)} = {format_number(after)} dollars.",
                  f"Change: {bill} - {format_number(after)} = {format_number(change)} dollars."]
        return q, change, steps, "dollars"
    q += f" How many dollars does {name} spend in total?"
    return q, total, steps, "dollars"


def _bakery(rng: random.Random, d: int) -> tuple[str, Fraction, list[str], str]:
    name = rng.choice(_NAMES)
    what = rng.choice(_BAKED)
    trays, per = rng.randint(3, 9), rng.choice([6, 8, 10, 12, 24])
    made = trays * per
    q = f"{name} bakes {trays} trays of {what} with {per} {what} on each tray."
    steps = [f"{name} bakes {trays} * {per} = {made} {what}."]
    if d == 1:
        return q + f" How many {what} does {name} bake?", Fraction(made), steps, what
    # choose a fraction that divides evenly
    frac = rng.choice([f for f in (Fraction(1, 2), Fraction(1, 3), Fraction(1, 4), Fraction(2, 3), Fraction(3, 4))
                       if (made * f).denominator == 1])
    sold = made * frac
    left = made - sold
    q += f" {name} sells {frac.numerator}/{frac.denominator} of them in the morning."
    steps += [f"Sold: {frac.numerator}/{frac.denominator} of {made} = {format_number(sold)}.",
              f"Left: {made} - {format_number(sold)} = {format_number(left)}."]
    if d == 2:
        return q + f" How many {what} are left?", left, steps, what
    given = rng.randint(1, max(1, int(left) // 3))
    rest = left - given
    box = next((b for b in (4, 6, 3, 2, 5) if rest % b == 0 and rest // b > 1), None)
    if box is None:  # make the rest divisible by 2 by giving one more away
        given += 1
        rest -= 1
        box = next(b for b in (2, 3, 4, 5, 6) if rest % b == 0)
    boxes = rest / box
    q += (f" Then {name} gives {given} to a neighbour and packs the rest into boxes of {box}."
          " How many boxes does " + name + " fill?")
    steps += [f"After giving {given} away: {format_number(left)} - {given} = {format_number(rest)}.",
              f"Boxes: {format_number(rest)} / {box} = {format_number(boxes)}."]
    return q, boxes, steps, "boxes"


def _travel(rng: random.Random, d: int) -> tuple[str, Fraction, list[str], str]:
    veh = rng.choice(_VEHICLES)
    s1, t1 = rng.choice([20, 30, 40, 45, 50, 60, 80]), rng.randint(2, 5)
    dist = s1 * t1
    q = f"A {veh} travels at {s1} km per hour for {t1} hours."
    steps = [f"First part: {s1} * {t1} = {dist} km."]
    if d == 1:
        return q + " How many kilometres does it travel?", Fraction(dist), steps, "km"
    s2, t2 = rng.choice([15, 25, 35, 40, 55, 70]), rng.randint(1, 4)
    total = dist + s2 * t2
    q += f" Then it goes on at {s2} km per hour for {t2} more hours."
    steps += [f"Second part: {s2} * {t2} = {s2 * t2} km.", f"Total: {dist} + {s2 * t2} = {total} km."]
    if d == 2:
        return q + " How many kilometres does it travel in total?", Fraction(total), steps, "km"
    s3, t3 = rng.choice([20, 30, 40, 60]), rng.randint(1, 3)
    trip = total + s3 * t3
    q += (f" The whole trip is {trip} km long, and the {veh} covers the rest at {s3} km per hour."
          " How many hours does the whole trip take?")
    steps += [f"Remaining: {trip} - {total} = {trip - total} km.",
              f"Time for the rest: {trip - total} / {s3} = {t3} hours.",
              f"Whole trip: {t1} + {t2} + {t3} = {t1 + t2 + t3} hours."]
    return q, Fraction(t1 + t2 + t3), steps, "hours"


def _savings(rng: random.Random, d: int) -> tuple[str, Fraction, list[str], str]:
    name = rng.choice(_NAMES)
    per, weeks = rng.randint(3, 25), rng.randint(3, 12)
    saved = per * weeks
    if d == 1:
        q = f"{name} saves ${per} every week for {weeks} weeks. How many dollars has {name} saved?"
        return q, Fraction(saved), [f"Saved: {per} * {weeks} = {saved} dollars."], "dollars"
    start = rng.randint(10, 90)
    spent = rng.randint(5, start + saved - 5)
    have = start + saved - spent
    q = (f"{name} has ${start} in a piggy bank and saves ${per} every week for {weeks} weeks."
         f" Then {name} spends ${spent} on a present.")
    steps = [f"Saved: {per} * {weeks} = {saved} dollars.", f"Before the present: {start} + {saved} = {start + saved}.",
             f"After the present: {start + saved} - {spent} = {have} dollars."]
    if d == 2:
        return q + f" How many dollars does {name} have now?", Fraction(have), steps, "dollars"
    more_weeks = rng.randint(2, 10)
    per2 = per + rng.randint(1, 10)
    goal = have + per2 * more_weeks
    q += (f" After that {name} saves ${per2} a week to buy a bike that costs ${goal}."
          f" How many more weeks does {name} need to save?")
    steps += [f"Still needed: {goal} - {have} = {goal - have} dollars.",
              f"Weeks: {goal - have} / {per2} = {more_weeks}."]
    return q, Fraction(more_weeks), steps, "weeks"


def _ages(rng: random.Random, d: int) -> tuple[str, Fraction, list[str], str]:
    kid, sib = rng.sample(_NAMES, 2)
    age = rng.randint(4, 14)
    diff = rng.randint(2, 9)
    sib_age = age + diff
    q = f"{kid} is {age} years old. {sib} is {diff} years older than {kid}."
    steps = [f"{sib} is {age} + {diff} = {sib_age}."]
    if d == 1:
        return q + f" How old is {sib}?", Fraction(sib_age), steps, "years"
    mult = rng.randint(2, 4)
    parent = age * mult
    q += f" Their mother is {mult} times as old as {kid}."
    steps += [f"Mother: {mult} * {age} = {parent}."]
    if d == 2:
        q += f" What is the sum of the ages of {sib} and their mother?"
        steps += [f"Sum: {sib_age} + {parent} = {sib_age + parent}."]
        return q, Fraction(sib_age + parent), steps, "years"
    yrs = rng.randint(2, 10)
    now = age + sib_age + parent
    later = now + 3 * yrs
    q += f" In {yrs} years, what will the sum of all three ages be?"
    steps += [f"Sum now: {age} + {sib_age} + {parent} = {now}.",
              f"Each of the 3 gets {yrs} years older: {now} + 3 * {yrs} = {later}."]
    return q, Fraction(later), steps, "years"


def _percent(rng: random.Random, d: int) -> tuple[str, Fraction, list[str], str]:
    item = rng.choice(["jacket", "bicycle", "lamp", "backpack", "chair", "guitar"])
    price = rng.choice([40, 60, 80, 120, 150, 200, 240, 300])
    pct = rng.choice([10, 15, 20, 25, 30, 40, 50])
    off = Fraction(price * pct, 100)
    sale = price - off
    q = f"A {item} costs ${price}. It is on sale for {pct}% off."
    steps = [f"Discount: {pct}% of {price} = {format_number(off)} dollars."]
    if d == 1:
        return q + " How many dollars is the discount?", off, steps, "dollars"
    steps += [f"Sale price: {price} - {format_number(off)} = {format_number(sale)} dollars."]
    if d == 2:
        return q + " What is the sale price in dollars?", sale, steps, "dollars"
    # only taxes that keep whole cents (the sale price can end in 50 cents, and 5% of that does not)
    tax = rng.choice([t for t in (5, 8, 10) if (sale * (100 + t)).denominator == 1])
    n = rng.randint(2, 4)
    with_tax = sale * (100 + tax) / 100
    total = with_tax * n
    q += (f" A sales tax of {tax}% is added to the sale price. How many dollars do {n} of these"
          f" {item}s cost with tax?")
    steps += [f"With tax: {format_number(sale)} * {100 + tax}/100 = {format_number(with_tax)} dollars.",
              f"For {n}: {n} * {format_number(with_tax)} = {format_number(total)} dollars."]
    return q, total, steps, "dollars"


#: Story templates by name: each takes ``(rng, difficulty)`` and returns
#: ``(question, answer, reference_steps, unit)`` with the answer computed while writing the story.
TEMPLATES: dict[str, Callable[[random.Random, int], tuple[str, Fraction, list[str], str]]] = {
    "shopping": _shopping,
    "bakery": _bakery,
    "travel": _travel,
    "savings": _savings,
    "ages": _ages,
    "percent": _percent,
}

DIFFICULTIES = (1, 2, 3)


def make_problem(template: str, difficulty: int, seed: int | random.Random) -> Problem:
    """One problem from ``template`` at ``difficulty`` (1, 2 or 3), reproducible from ``seed``."""
    if template not in TEMPLATES:
        raise KeyError(f"unknown template {template!r}; choose from {sorted(TEMPLATES)}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    q, ans, steps, unit = TEMPLATES[template](rng, difficulty)
    return Problem(id="", template=template, difficulty=difficulty, question=q, answer=Fraction(ans),
                   steps=steps, unit=unit)


def make_problems(n: int, *, difficulties: Sequence[int] = DIFFICULTIES,
                  templates: Sequence[str] | None = None, seed: int = 0) -> list[Problem]:
    """``n`` distinct problems, balanced over difficulties and templates (round robin).

    The same ``seed`` always gives the same problems. Duplicate question texts are redrawn.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    templates = list(templates or TEMPLATES)
    rng = random.Random(seed)
    out: list[Problem] = []
    seen: set[str] = set()
    i = 0
    tries = 0
    while len(out) < n:
        d = difficulties[i % len(difficulties)]
        t = templates[(i // len(difficulties)) % len(templates)]
        p = make_problem(t, d, rng)
        tries += 1
        if p.question in seen:
            if tries > 50 * (n + 1):
                raise RuntimeError("could not draw enough distinct problems; widen the templates")
            continue
        seen.add(p.question)
        p.id = f"{t}-d{d}-{len(out):04d}"
        out.append(p)
        i += 1
    return out


# =============================================================================== prompting
ANSWER_FORMAT = "End with a final line of the form '#### <number>' (just the number, no units)."


def cot_prompt(problem: Problem | str, *, example: Problem | None = None) -> str:
    """A chain-of-thought prompt asking for short reasoning and a ``#### <number>`` line.

    ``example`` adds one worked example (its solution is the code-computed reference), which
    helps small models keep the answer format.
    """
    q = problem.question if isinstance(problem, Problem) else str(problem)
    parts = ["Solve the maths word problem. Reason step by step in a few short lines. " + ANSWER_FORMAT]
    if example is not None:
        parts.append(f"Example problem: {example.question}\nExample solution:\n{example.reference_solution()}")
    parts.append(f"Problem: {q}")
    return "\n\n".join(parts)


@dataclass
class Samples:
    """``k`` sampled chains per problem: ``texts[i][j]`` is sample ``j`` of problem ``i``."""

    texts: list[list[str]]
    truncated: list[list[bool]]
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else float("nan")


def sample_chains(lm: Any, problems: Sequence[Problem], k: int, *, example: Problem | None = None,
                  max_new_tokens: int = 256, temperature: float = 0.8, top_p: float = 1.0, seed: int = 0,
                  batch_size: int | None = None, folder: str | Path | None = None, shard_size: int = 8,
                  progress: bool = True) -> Samples:
    """Sample ``k`` chains of thought per problem with ``lm.chat`` (a :class:`helpers.lm.generation.LM`).

    Each problem's prompt is repeated ``k`` times inside one batched call, so the samples
    differ only by sampling (``temperature > 0``). With ``folder``, the work runs as a
    :class:`helpers.core.jobs.ResumableJob` of ``shard_size`` problems per shard, in a sub-folder
    named after the model and keyed by everything that shapes the chains (the rendered prompts,
    the model name and path, the sampling settings, the seed, the batching): an interrupted run
    resumes where it stopped, a finished one is read back without generating, and a changed
    prompt, template or setting starts a new job (chains of old prompts are never graded
    against new answers).
    """
    import time

    if k < 1:
        raise ValueError("k must be at least 1")
    if temperature <= 0 and k > 1:
        raise ValueError("k > 1 samples need temperature > 0, or all k would be identical")
    by_id = {p.id: i for i, p in enumerate(problems)}
    if len(by_id) != len(problems):
        raise ValueError("problem ids must be unique")
    stats = {"tokens": 0, "seconds": 0.0}

    def run(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        probs = [problems[by_id[it["id"]]] for it in batch]
        convs = [cot_prompt(p, example=example) for p in probs for _ in range(k)]
        t0 = time.perf_counter()
        gens = lm.chat(convs, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                       seed=seed + by_id[batch[0]["id"]], batch_size=batch_size, progress=False)
        stats["seconds"] += time.perf_counter() - t0
        rows = []
        for n, g in enumerate(gens):
            stats["tokens"] += g.new_tokens
            rows.append({"id": probs[n // k].id, "sample": n % k, "text": g.text,
                         "truncated": g.finish_reason == "length", "new_tokens": g.new_tokens})
        return rows

    if folder is None:
        items = [{"id": p.id} for p in problems]
        rows: list[dict[str, Any]] = []
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(items), shard_size), disable=not progress, desc=f"{k} samples/problem"):
            rows += run(items[start:start + shard_size])
    else:
        from helpers.core.jobs import ResumableJob, fingerprint
        from helpers.lm.generation import generator_id

        render = getattr(lm, "render", None)  # the exact text the model sees (chat template included)
        prompts = [fingerprint(render(cot_prompt(p, example=example)) if callable(render)
                               else cot_prompt(p, example=example)) for p in problems]
        items = [{"id": p.id, "prompt": fp} for p, fp in zip(problems, prompts)]
        model = str(getattr(lm, "name", "?"))
        config = {"model": model, "model_path": generator_id(lm),
                  "k": k, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                  "seed": seed, "shard_size": shard_size, "batch_size": batch_size,
                  "prompts": fingerprint([[it["id"], it["prompt"]] for it in items])}
        # one sub-folder per configuration: the same settings and prompts resume, any change starts afresh
        job = ResumableJob(folder, name=re.sub(r"[^\w.-]+", "_", model)[-60:], key="id", shard_size=shard_size,
                           config=config)
        job.run(items, run, progress=progress, desc=f"{k} samples/problem")
        rows = [r for r in job.rows() if r.get("id") in by_id]
    texts = [[""] * k for _ in problems]
    trunc = [[False] * k for _ in problems]
    filled = [[False] * k for _ in problems]
    for r in rows:
        i, j = by_id[r["id"]], int(r["sample"])
        texts[i][j], trunc[i][j], filled[i][j] = r["text"], bool(r["truncated"]), True
    missing = sum(not f for row in filled for f in row)
    if missing:
        raise RuntimeError(f"{missing} samples are missing from the job's rows; delete {folder} and rerun")
    if folder is not None and stats["seconds"] == 0.0:  # everything came from disk
        stats["tokens"] = sum(int(r.get("new_tokens", 0)) for r in rows)
    return Samples(texts, trunc, stats["tokens"], stats["seconds"])


# =============================================================================== extraction
@dataclass
class Extraction:
    """The final answer found in a reply.

    ``value`` is ``None`` when no number was found; ``method`` says which rule matched:
    ``"hash"`` (``#### x``), ``"boxed"``, ``"answer_is"``, ``"last_number"`` or ``"none"``.
    """

    value: Fraction | None
    method: str
    span: str = ""

    @property
    def found(self) -> bool:
        return self.value is not None


_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90, "hundred": 100})

# A number: optional sign and currency, thousands commas or plain digits, decimals, and an
# optional "/ denominator". Not glued to letters or to another number's decimal point.
_NUM_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-\u2212](?=[$\u20ac\u00a3\d.]))?(?:[$\u20ac\u00a3]\s?)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?!\d))?"
)
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}")
# The GSM8K answer line: exactly four '#' (not glued to a word or more '#') and then a number,
# so Markdown headings such as "### Step 2" or "#### Step 2: add" are never read as answers.
_HASH_RE = re.compile(r"(?<![#\w])####(?!#)[ \t]*(?=\**[ \t]*(?:\\boxed\s*\{|\\\(|\$\s*)?[-\u2212+$\u20ac\u00a3]?\s*\.?\d)([^\n]*)")
_NUMBERED_HEADING = re.compile(r"^\**\s*\d+[.):]\s*\**\s*[A-Za-z]")  # "#### 1. Compute the cost"
_ANSWER_IS_RE = re.compile(
    r"answer(?: to [^\n:]{0,40}?)?\s*(?:\*\*)?\s*(?:is|:|=|would be|will be)\s*[:=]?\s*(?:\*\*)?\s*([^\n]{0,80})",
    re.I)
_MAX_DIGITS = 100  # longer digit runs are garbage, not answers
_MAX_CHARS = 20_000  # replies are cut to this many characters before searching


def _normalise(text: str) -> str:
    text = text.replace("\u2212", "-").replace("\\$", "$").replace("\\%", "%")
    text = _FRAC_RE.sub(r"\1/\2", text)
    text = re.sub(r"\\(?:,|!|;|quad)", "", text)  # LaTeX spacing inside numbers
    text = re.sub(r"\\text\{([^{}]*)\}", r" \1", text)
    return text


def parse_number(s: str) -> Fraction | None:
    """The first number in ``s`` as an exact fraction, or ``None``.

    Understands ``1,234.50``, ``$12``, ``-3``, ``25%`` (gives 25), ``3/4``, ``\\frac{3}{4}``,
    units after the number (``12 km``) and number words up to twenty and the round tens.
    Digit runs longer than 100 characters are rejected (``None``).
    """
    if not s:
        return None
    s = _normalise(s)
    m = _NUM_RE.search(s)
    if m:
        if len(m.group("num")) > _MAX_DIGITS:
            return None
        try:
            val = Fraction(m.group("num").replace(",", ""))
            if m.group("den"):
                den = Fraction(m.group("den"))
                if den == 0:
                    return None
                val = val / den
        except (ValueError, ZeroDivisionError):
            return None
        return -val if m.group("sign") else val
    w = re.search(r"\b(" + "|".join(_WORDS) + r")\b", s, re.I)
    return Fraction(_WORDS[w.group(1).lower()]) if w else None


def numbers_in(text: str | None) -> list[Fraction]:
    """Every number in ``text``, in order (same rules as :func:`parse_number`)."""
    if not text:
        return []
    out = []
    for m in _NUM_RE.finditer(_normalise(text[-_MAX_CHARS:])):
        v = parse_number(m.group(0))
        if v is not None:
            out.append(v)
    return out


def _parse_final(span: str) -> Fraction | None:
    """Number in a final-answer span: the first sentence, after its last ``=`` if any."""
    span = re.split(r"(?<!\d)\.(?!\d)|\.\s|;|\n", span, maxsplit=1)[0]
    if "=" in span:
        span = span.rsplit("=", 1)[1]
    return parse_number(span)


def _boxed_contents(text: str) -> list[str]:
    out = []
    for m in re.finditer(r"\\boxed\s*\{", text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            out.append(text[m.end():j - 1])
    return out


def extract_answer(text: str | None) -> Extraction:
    """Find the final answer in a chain of thought.

    Rules, first match wins: the last ``#### x`` (exactly four ``#`` and a number, so Markdown
    headings like ``### Step 2`` or ``#### 1. Add`` do not count); the last ``\\boxed{x}``; the last
    "answer is x" / "Answer: x"; else the last number anywhere. Empty or ``None`` input gives
    ``Extraction(None, "none")``; huge inputs are cut to their last 20,000 characters (the
    answer is at the end).
    """
    if not text or not text.strip():
        return Extraction(None, "none")
    text = _normalise(text[-_MAX_CHARS:])
    for m in reversed(list(_HASH_RE.finditer(text))):
        if _NUMBERED_HEADING.match(m.group(1)):
            continue
        v = _parse_final(m.group(1))
        if v is not None:
            return Extraction(v, "hash", m.group(0).strip())
    for content in reversed(_boxed_contents(text)):
        v = _parse_final(content)
        if v is not None:
            return Extraction(v, "boxed", content.strip())
    for m in reversed(list(_ANSWER_IS_RE.finditer(text))):
        v = _parse_final(m.group(1))
        if v is not None:
            return Extraction(v, "answer_is", m.group(0).strip())
    nums = list(_NUM_RE.finditer(text))
    for m in reversed(nums):
        v = parse_number(m.group(0))
        if v is not None:
            return Extraction(v, "last_number", m.group(0).strip())
    return Extraction(None, "none")


def is_correct(pred: Fraction | float | int | None, gold: Fraction | float | int, *,
               rel_tol: float = 1e-4, abs_tol: float = 1e-6) -> bool:
    """``pred`` equals ``gold`` up to a small tolerance (``None`` is never correct).

    The tolerance accepts ``33.33`` for ``100/3``-style rounding of long decimals, but not
    an off-by-one on a whole number.
    """
    if pred is None:
        return False
    try:
        p, g = float(pred), float(gold)
    except (TypeError, ValueError, OverflowError):
        return False
    if not (math.isfinite(p) and math.isfinite(g)):
        return False
    return abs(p - g) <= max(abs_tol, rel_tol * abs(g))


# =============================================================================== grading
@dataclass
class Grade:
    """The verdict on one chain of thought.

    ``verdict`` is ``"correct"``, ``"wrong answer"``, ``"no answer"`` or ``"empty"``;
    ``truncated`` says the reply hit the length limit (its answer may be a stray number).
    """

    problem_id: str
    sample: int
    text: str
    pred: Fraction | None
    method: str
    verdict: str
    truncated: bool = False

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"


def grade_chains(problems: Sequence[Problem], chains: Sequence[Sequence[str]],
                 truncated: Sequence[Sequence[bool]] | None = None) -> list[list[Grade]]:
    """Grade ``chains[i][j]`` (sample ``j`` for problem ``i``) against ``problems[i].answer``."""
    if len(problems) != len(chains):
        raise ValueError(f"{len(problems)} problems but {len(chains)} lists of chains")
    out = []
    for i, (p, texts) in enumerate(zip(problems, chains)):
        row = []
        for j, t in enumerate(texts):
            trunc = bool(truncated[i][j]) if truncated is not None else False
            if not t or not str(t).strip():
                row.append(Grade(p.id, j, t or "", None, "none", "empty", trunc))
                continue
            ex = extract_answer(t)
            verdict = ("no answer" if ex.value is None
                       else "correct" if is_correct(ex.value, p.answer) else "wrong answer")
            row.append(Grade(p.id, j, t, ex.value, ex.method, verdict, trunc))
        out.append(row)
    return out


@dataclass
class RejectionResult:
    """Chains kept by rejection sampling, and why the others were dropped."""

    kept: list[dict[str, Any]]
    reasons: Counter
    n_problems: int
    n_chains: int

    @property
    def problems_covered(self) -> int:
        return len({r["problem_id"] for r in self.kept})

    @property
    def yield_rate(self) -> float:
        """Kept chains per generated chain."""
        return len(self.kept) / self.n_chains if self.n_chains else 0.0

    def report(self) -> str:
        why = ", ".join(f"{k}: {v}" for k, v in self.reasons.most_common())
        return (f"kept {len(self.kept)}/{self.n_chains} chains ({self.yield_rate:.0%}), covering "
                f"{self.problems_covered}/{self.n_problems} problems; dropped: {why or 'none'}")


def rejection_sample(problems: Sequence[Problem], grades: Sequence[Sequence[Grade]], *,
                     max_per_problem: int | None = None, require_format: bool = False,
                     drop_truncated: bool = True) -> RejectionResult:
    """Keep verified chains only.

    A chain is kept when its extracted answer is correct, it did not hit the length limit
    (``drop_truncated``), it is not an exact duplicate of a chain already kept for the same
    problem, and (``require_format``) it used the requested ``#### x`` line. At most
    ``max_per_problem`` chains per problem are kept (shortest first). Every dropped chain is
    counted under one reason.
    """
    reasons: Counter = Counter()
    kept: list[dict[str, Any]] = []
    n_chains = 0
    for p, row in zip(problems, grades):
        ok: list[Grade] = []
        seen: set[str] = set()
        for g in row:
            n_chains += 1
            if g.verdict != "correct":
                reasons[g.verdict] += 1
            elif drop_truncated and g.truncated:
                reasons["truncated"] += 1
            elif require_format and g.method != "hash":
                reasons["format"] += 1
            elif g.text.strip() in seen:
                reasons["duplicate"] += 1
            else:
                seen.add(g.text.strip())
                ok.append(g)
        ok.sort(key=lambda g: len(g.text))
        if max_per_problem is not None and len(ok) > max_per_problem:
            reasons["over per-problem cap"] += len(ok) - max_per_problem
            ok = ok[:max_per_problem]
        for g in ok:
            kept.append({"problem_id": p.id, "template": p.template, "difficulty": p.difficulty,
                         "question": p.question, "answer": p.answer_str, "solution": g.text,
                         "answer_method": g.method, "sample": g.sample})
    return RejectionResult(kept, reasons, len(problems), n_chains)


# =============================================================================== voting
@dataclass
class Vote:
    """Result of a majority vote.

    ``answer`` is ``None`` when no sample had an answer, or on a tie with ``tie_break="abstain"``.
    ``tied`` says several answers shared the top count.
    """

    answer: Fraction | None
    count: int
    n_valid: int
    tied: bool
    counts: dict[str, int]


def _key(v: Fraction) -> str:
    """Answers within rounding of each other vote together (12, 12.0 and 24/2 are one)."""
    return format_number(Fraction(round(float(v), 6)).limit_denominator(10**6))


def majority_vote(answers: Iterable[Fraction | None], *, tie_break: str = "first",
                  rng: random.Random | np.random.Generator | None = None) -> Vote:
    """The most common answer among samples (``None`` = no answer, does not vote).

    Ties: ``"first"`` picks the tied answer that appeared first (deterministic),
    ``"random"`` picks one uniformly (the fair choice when estimating accuracy),
    ``"abstain"`` returns ``None``.
    """
    if tie_break not in {"first", "random", "abstain"}:
        raise ValueError("tie_break must be 'first', 'random' or 'abstain'")
    order: list[str] = []
    counts: Counter = Counter()
    value: dict[str, Fraction] = {}
    for a in answers:
        if a is None:
            continue
        k = _key(a)
        if k not in counts:
            order.append(k)
            value[k] = Fraction(a)
        counts[k] += 1
    n_valid = sum(counts.values())
    if not counts:
        return Vote(None, 0, 0, False, {})
    top = max(counts.values())
    best = [k for k in order if counts[k] == top]
    tied = len(best) > 1
    if not tied or tie_break == "first":
        pick = best[0]
    elif tie_break == "abstain":
        return Vote(None, top, n_valid, True, dict(counts))
    else:
        r = rng if rng is not None else random.Random()
        pick = best[int(r.integers(len(best)))] if isinstance(r, np.random.Generator) else r.choice(best)
    return Vote(value[pick], top, n_valid, tied, dict(counts))


def vote_curve(answers: Sequence[Sequence[Fraction | None]], golds: Sequence[Fraction], ks: Sequence[int], *,
               n_draws: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-problem accuracy of majority vote over ``k`` samples, for each ``k`` in ``ks``.

    For each problem with ``n`` samples and each ``k <= n``, ``n_draws`` random subsets of
    size ``k`` are voted on (ties broken at random) and the share that lands on the gold
    answer is that problem's expected majority-vote accuracy. Returns arrays of shape
    ``(n_problems, len(ks))``: ``"majority"``, ``"pass"`` (unbiased pass@k: some sample right,
    what a verifier could rescue) and ``"single"`` (mean single-sample accuracy, same for every k).
    Entries with ``k > n`` are ``nan``.
    """
    rng = np.random.default_rng(seed)
    n_p = len(answers)
    maj = np.full((n_p, len(ks)), np.nan)
    pas = np.full((n_p, len(ks)), np.nan)
    single = np.full((n_p, len(ks)), np.nan)
    for i, (row, gold) in enumerate(zip(answers, golds)):
        n = len(row)
        correct = [is_correct(a, gold) for a in row]
        c = sum(correct)
        for j, k in enumerate(ks):
            if k > n or k < 1 or n == 0:
                continue
            single[i, j] = c / n
            pas[i, j] = pass_at_k(n, c, k)
            if k == 1:  # one sample: the vote is that sample, so the expectation is exact
                maj[i, j] = c / n
                continue
            draws = 1 if (k == n and len({_key(a) for a in row if a is not None}) <= 1) else n_draws
            hits = 0
            for _ in range(draws):
                idx = rng.choice(n, size=k, replace=False)
                v = majority_vote([row[t] for t in idx], tie_break="random", rng=rng)
                hits += is_correct(v.answer, gold)
            maj[i, j] = hits / draws
    return {"majority": maj, "pass": pas, "single": single}


# =============================================================================== saving
#: Columns of a kept chain (:attr:`RejectionResult.kept` rows plus ``generator``) and their ``datasets`` dtypes,
#: so that an empty result still saves with its columns.
CHAIN_FEATURES = {"problem_id": "string", "template": "string", "difficulty": "int64", "question": "string",
                  "answer": "string", "solution": "string", "answer_method": "string", "sample": "int64",
                  "generator": "string"}
