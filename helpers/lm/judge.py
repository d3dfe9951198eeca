"""Model-as-judge with a rubric: robust score parsing, counted failures, and a log-probability mode.

A judge LM reads a rubric, the request and the reply, and answers with a score from 1 to 5
(Zheng et al., 2023, "Judging LLM-as-a-judge"; Llama 3 uses its own models to grade and
filter its synthetic data). Small judges fail in two ways this module makes visible:

* **format failures**: the reply holds no score, several, or one out of range. They are
  counted by reason in :attr:`JudgeResult.failures`, and the score is ``nan``, never a guess.
* **judgement failures**: a parsed score that disagrees with known labels. Measure them with
  :func:`helpers.core.stats.auc` / :func:`helpers.text.reward.rank_agreement` on items you know.

``method="logprobs"`` skips generation: it forces the reply to start with ``{"score": ``
and reads the model's probabilities for the digits 1 to 5, giving an expected score
(G-Eval, Liu et al., 2023). One forward pass per item, no parse failures, no ties.

>>> judge = Judge(LM.load("qwen-coder-0.5b"))
>>> res = judge.score(prompts, responses)           # generate + parse
>>> res.scores, res.report()
>>> judge.score(prompts, responses, method="logprobs").scores
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

#: The default rubric; ``{prompt}`` and ``{response}`` are filled in.
RUBRIC = """Grade the assistant's reply to the user's request on a 1 to 5 scale.
5: correct, complete, on topic and clear
4: helpful and on topic, small gaps
3: partly helpful, or one clear mistake
2: mostly unhelpful: off topic, cut off, jumbled or wrong
1: useless: empty, needless refusal or nonsense

Request:
<<<{prompt}>>>

Reply:
<<<{response}>>>

Answer with JSON only: {"score": N} where N is 1, 2, 3, 4 or 5."""

JSON_PREFIX = '{"score": '

_KEYED = re.compile(r"\b(?:score|rating|grade)\b\W{0,4}(-?\d+(?:\.\d+)?)", re.I)
_OUT_OF = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(?:5|five)\b", re.I)
_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def parse_score(text: str, lo: int = 1, hi: int = 5) -> tuple[float | None, str | None]:
    """Find the judge's score in a reply: ``(score, None)`` or ``(None, reason)``.

    Accepted, in order: JSON with a ``score``/``rating`` key; ``score: 4`` / ``rating = 4``;
    ``4/5`` or ``4 out of 5``; a reply that is one bare number. Reasons for failure:
    ``empty``, ``out of range``, ``ambiguous`` (several different numbers and no key), ``no score``.
    """
    from helpers.lm.generation import extract_json

    if not text or not text.strip():
        return None, "empty"

    def check(value: Any) -> tuple[float | None, str | None]:
        try:
            v = float(value)
        except (TypeError, ValueError):
            return None, "no score"
        if not math.isfinite(v) or not lo <= v <= hi:
            return None, "out of range"
        return v, None

    try:
        obj = extract_json(text)
        if isinstance(obj, dict):
            for key in ("score", "rating", "grade", "Score", "Rating"):
                if key in obj:
                    return check(obj[key])
        elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
            return check(obj)
    except ValueError:
        pass
    for rx in (_KEYED, _OUT_OF):
        m = rx.search(text)
        if m:
            return check(m.group(1))
    nums = {float(n) for n in _NUM.findall(text)}
    if len(nums) == 1:
        return check(nums.pop())
    if len(nums) > 1:
        return None, "ambiguous"
    return None, "no score"


def clip_text(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters with a visible marker."""
    text = text or ""
    return text if len(text) <= max_chars else text[:max_chars] + " [...cut for the judge]"


@dataclass
class JudgeResult:
    """Scores (``nan`` where no valid score came back), raw replies and failure counts."""

    scores: np.ndarray
    raw: list[str]
    failures: Counter = field(default_factory=Counter)
    method: str = "generate"
    seconds: float = 0.0
    digit_mass: np.ndarray | None = None  # logprobs mode: probability the judge put on the digits 1..5

    @property
    def n_valid(self) -> int:
        return int(np.isfinite(self.scores).sum())

    @property
    def failure_rate(self) -> float:
        return 1 - self.n_valid / len(self.scores) if len(self.scores) else 0.0

    def report(self) -> str:
        n = len(self.scores)
        reasons = ", ".join(f"{k}: {v}" for k, v in self.failures.most_common()) or "none"
        speed = f" in {self.seconds:.0f}s ({self.seconds / n:.2f} s/item)" if n and self.seconds else ""
        return (f"{self.method}: {self.n_valid}/{n} valid scores ({self.failure_rate:.0%} failed; "
                f"reasons: {reasons}){speed}")


def digit_probs(lm: Any, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False,
                desc: str = "digit log-probs", hint: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the digits 1..5 as the next token after each rendered prompt in ``texts``:
    ``(probs, mass)``, ``probs`` renormalised over the five digits (n x 5) and ``mass`` the probability the
    digits had before that (low: the model wanted to say something else). The expected score is
    ``probs @ [1, 2, 3, 4, 5]``. Raises ``RuntimeError`` (plus ``hint``) when the tokenizer splits a digit."""
    digit_ids = []
    for k in range(1, 6):
        ids = lm.token_ids(str(k))
        if len(ids) != 1:
            raise RuntimeError(f"the tokenizer splits {str(k)!r} into {len(ids)} tokens{hint}")
        digit_ids.append(ids[0])
    logp = lm.next_token_logprobs(list(texts), digit_ids, batch_size=batch_size, progress=progress, desc=desc)
    p = np.exp(np.asarray(logp, dtype=np.float64)).reshape(len(texts), 5)
    mass = p.sum(-1)
    return p / np.maximum(mass[:, None], 1e-12), mass


class Judge:
    """Rubric judge on top of :class:`helpers.lm.generation.LM`.

    Args:
        lm: the judge model.
        rubric: template with ``{prompt}`` and ``{response}`` (filled with ``str.replace``, so
            JSON braces in the rubric are fine).
        max_chars: prompt and reply are each cut to this many characters (cost and context).
    """

    def __init__(self, lm: Any, rubric: str = RUBRIC, max_chars: int = 800) -> None:
        self.lm = lm
        self.rubric = rubric
        self.max_chars = max_chars

    def render(self, prompt: str, response: str) -> str:
        """The user message the judge sees for one item."""
        return (self.rubric.replace("{prompt}", clip_text(prompt, self.max_chars))
                .replace("{response}", clip_text(response, self.max_chars) or "(empty reply)"))

    def score(self, prompts: Sequence[str], responses: Sequence[str], *, method: str = "generate",
              max_new_tokens: int = 16, batch_size: int | None = None, progress: bool = True) -> JudgeResult:
        """Score each (prompt, response) from 1 to 5; ``nan`` where the judge gave no valid score."""
        import time

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        msgs = [self.render(p or "", r or "") for p, r in zip(prompts, responses)]
        t0 = time.perf_counter()
        if method == "generate":
            gens = self.lm.chat(msgs, max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size,
                                progress=progress, desc="judge")
            raw = [g.text for g in gens]
            scores = np.full(len(raw), np.nan)
            fails: Counter = Counter()
            for i, (g, text) in enumerate(zip(gens, raw)):
                val, why = parse_score(text)
                if val is None:
                    # a reply cut by the length limit is a different failure from a wrong format
                    fails["truncated" if g.finish_reason == "length" and why == "no score" else why] += 1
                else:
                    scores[i] = val
            return JudgeResult(scores, raw, fails, method, time.perf_counter() - t0)
        if method == "logprobs":
            exp, mass = self._digit_probs(msgs, batch_size=batch_size, progress=progress)
            return JudgeResult(exp, [""] * len(exp), Counter(), method, time.perf_counter() - t0, mass)
        raise ValueError(f"method must be 'generate' or 'logprobs', got {method!r}")

    def _digit_probs(self, msgs: Sequence[str], batch_size: int | None, progress: bool) -> tuple[np.ndarray, np.ndarray]:
        """Expected score from next-token probabilities of 1..5 after ``{"score": ``."""
        texts = [self.lm.render(m) + JSON_PREFIX for m in msgs]
        bs = batch_size or max(1, self.lm.default_batch_size // 2)
        probs, mass = digit_probs(self.lm, texts, batch_size=bs, progress=progress, desc="judge (logprobs)",
                                  hint="; use method='generate'")
        return probs @ np.arange(1, 6), mass
