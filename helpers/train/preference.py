"""Preference pairs from verifier verdicts, best-margin selection, and implicit-reward evaluation (notebook 07).

DPO (Rafailov et al., 2023) learns from pairs ``(prompt, chosen, rejected)``. Llama 3 builds them from
its own models' samples, ranked by reward models and verifiers, then keeps a small, highly selective set
(its "quality tuning"). This module is the data side of that recipe; training is
:func:`helpers.train.finetune.dpo` / :func:`~helpers.train.finetune.sft`.

>>> items = arithmetic_items(40, seed=0)               # "What is 7 + 5?" with the answer computed
>>> cands = [...]                                       # k sampled replies per item (your LM)
>>> scored = score_candidates(items, cands, verify)     # verify(item, text) -> (score, verdict)
>>> pairs = pairs_from_scores(scored, source="maths-json", mode="all")
>>> best = select_pairs(pairs, min_chosen_score=4, per_prompt=1)
>>> ev = implicit_reward_eval(trained_model, base_model, tok, held_out_pairs, beta=0.1)
>>> ev.accuracy, ev.margin

Verifier functions are passed in (a JSON shape check, a maths answer check, a reward model), so
this module depends on nothing but :mod:`helpers.core`, :mod:`helpers.lm` and :mod:`helpers.train`.

* :func:`arithmetic_items`: plain arithmetic questions with answers computed by code.
* :func:`json_reply_verdict`: is a reply exactly a JSON object of a given shape, or does it only
  contain one (in a code fence, after prose)?
* :func:`score_candidates`, :func:`pairs_from_scores`, :func:`pairs_from_rewards`: verdicts to pairs,
  every dropped prompt counted (all candidates tied, too few candidates).
* :func:`select_pairs`: the selective set (verified chosen, largest margin, one per prompt).
* :func:`check_pairs`: stop with a clear message on an empty or all-rejected round.
* :func:`sequence_logps`, :func:`implicit_reward_eval`: the DPO implicit reward
  ``beta * (log pi(y|x) - log pi_ref(y|x))`` on held-out pairs, for any trained model (DPO or SFT).
"""
from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["arithmetic_items", "JSONVerdict", "json_reply_verdict", "Scored", "score_candidates",
           "pairs_from_scores", "pairs_from_rewards", "PairStats", "select_pairs", "split_items",
           "check_pairs", "count_by", "sequence_logps", "ImplicitRewardEval", "implicit_reward_eval"]


# =============================================================================== items
def arithmetic_items(n: int, *, seed: int = 0, max_operand: int = 12, ops: Sequence[str] = ("+", "-"),
                     template: str = 'What is {a} {op} {b}? Reply with only a JSON object of the form '
                                     '{{"answer": <integer>}}.') -> list[dict[str, Any]]:
    """``n`` distinct arithmetic questions ``{"id", "prompt", "question", "answer"}``, answers computed by code.

    Operands are drawn from ``1..max_operand``; a subtraction never goes below zero (the operands are
    swapped). Raises ``ValueError`` when fewer than ``n`` distinct questions exist.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if max_operand < 1 or not ops or set(ops) - {"+", "-", "*"}:
        raise ValueError("max_operand must be >= 1 and ops a non-empty subset of '+', '-', '*'")
    possible = {(min(a, b), max(a, b)) if op == "-" else (a, b) for a in range(1, max_operand + 1)
                for b in range(1, max_operand + 1) for op in ops}
    if n > len(possible) * len(ops):
        raise ValueError(f"only about {len(possible)} distinct questions exist with max_operand={max_operand}; "
                         f"asked for {n}")
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * (n + 10):
            raise ValueError(f"could not draw {n} distinct questions with max_operand={max_operand} and ops={ops}")
        a, b, op = rng.randint(1, max_operand), rng.randint(1, max_operand), rng.choice(list(ops))
        if op == "-" and b > a:
            a, b = b, a
        question = f"{a} {op} {b}"
        if question in seen:
            continue
        seen.add(question)
        answer = a + b if op == "+" else a - b if op == "-" else a * b
        out.append({"id": f"arith-{len(out)}", "prompt": template.format(a=a, b=b, op=op), "question": question,
                    "answer": answer})
    return out


def split_items(items: Sequence[Any], test_frac: float, *, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """``(train, test)``: a seeded shuffle, ``round(test_frac * n)`` items held out (at least one of each
    when there are two or more items and ``0 < test_frac < 1``). Split *prompts*, never pairs, so no
    held-out prompt is seen in training."""
    if not 0 <= test_frac <= 1:
        raise ValueError(f"test_frac must be in [0, 1], got {test_frac}")
    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    k = round(test_frac * len(items))
    if len(items) >= 2 and 0 < test_frac < 1:
        k = min(max(k, 1), len(items) - 1)
    test = set(idx[:k])
    return [items[i] for i in range(len(items)) if i not in test], [items[i] for i in range(len(items)) if i in test]


# =============================================================================== a JSON verifier
@dataclass
class JSONVerdict:
    """What :func:`json_reply_verdict` found in one reply.

    Attributes:
        strict: the whole reply (stripped) is one JSON object of the shape, and nothing else.
        shape: a JSON object of the shape is in the reply (``strict`` implies ``shape``).
        value: the parsed object (``None`` when none was found).
        reason: ``"ok"``, ``"embedded"`` (shape right, but fences or prose around it), ``"no json"``,
            ``"not an object"``, ``"wrong keys"`` or ``"wrong type"``.
    """

    strict: bool
    shape: bool
    value: Any
    reason: str


def _shape_ok(value: Any, shape: Mapping[str, type]) -> str:
    if not isinstance(value, dict):
        return "not an object"
    if set(value) != set(shape):
        return "wrong keys"
    for key, typ in shape.items():
        v = value[key]
        if isinstance(v, bool) and typ is not bool or not isinstance(v, typ):
            return "wrong type"
    return "ok"


def json_reply_verdict(text: str, shape: Mapping[str, type]) -> JSONVerdict:
    """Check a reply against a JSON shape such as ``{"answer": int}`` (exactly these keys, these types).

    ``strict`` asks for the reply to be the JSON object and nothing else (no code fence, no prose);
    otherwise the first JSON value found anywhere in the reply (:func:`helpers.lm.generation.extract_json`)
    is checked, and a match counts as ``shape`` only (reason ``"embedded"``).
    """
    from helpers.lm.generation import extract_json

    text = text or ""
    try:
        value = json.loads(text.strip())
        whole = True
    except (json.JSONDecodeError, ValueError):
        whole = False
        try:
            value = extract_json(text)
        except ValueError:
            return JSONVerdict(False, False, None, "no json")
    reason = _shape_ok(value, shape)
    if reason != "ok":
        return JSONVerdict(False, False, value, reason)
    return JSONVerdict(whole, True, value, "ok" if whole else "embedded")


# =============================================================================== verdicts to pairs
@dataclass
class Scored:
    """One prompt's candidates with the verifier's score (higher is better) and verdict for each."""

    item: dict[str, Any]
    texts: list[str]
    scores: list[float]
    verdicts: list[str]
    origins: list[str] = field(default_factory=list)  # how each candidate was sampled (optional)


def score_candidates(items: Sequence[Mapping[str, Any]], candidates: Sequence[Sequence[str]],
                     verify: Callable[[Mapping[str, Any], str], tuple[float, str]],
                     origins: Sequence[Sequence[str]] | None = None) -> list[Scored]:
    """Run ``verify(item, text) -> (score, verdict)`` on every candidate of every item."""
    if len(items) != len(candidates):
        raise ValueError(f"{len(items)} items but {len(candidates)} candidate lists")
    out = []
    for i, (item, texts) in enumerate(zip(items, candidates)):
        res = [verify(item, t) for t in texts]
        org = list(origins[i]) if origins is not None else [""] * len(texts)
        if len(org) != len(texts):
            raise ValueError(f"item {i}: {len(texts)} candidates but {len(org)} origins")
        out.append(Scored(dict(item), list(texts), [float(s) for s, _ in res], [str(v) for _, v in res], org))
    return out


@dataclass
class PairStats:
    """What happened to each prompt when pairs were made: ``made`` pairs, and prompts that gave none
    (``tied``: every candidate scored the same; ``too few``: under two distinct candidates)."""

    prompts: int = 0
    made: int = 0
    skipped: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        gave = self.prompts - sum(self.skipped.values())
        why = ", ".join(f"{k}: {v}" for k, v in self.skipped.most_common()) or "none"
        return f"{self.made} pairs from {gave} of {self.prompts} prompts (prompts without a pair: {why})"


def _pair(item: Mapping[str, Any], chosen: str, rejected: str, cs: float, rs: float, source: str,
          cv: str = "", rv: str = "") -> dict[str, Any]:
    return {"prompt": item["prompt"], "chosen": chosen, "rejected": rejected, "chosen_score": float(cs),
            "rejected_score": float(rs), "margin": float(cs - rs), "source": source, "prompt_id": str(item.get("id", "")),
            "chosen_verdict": cv, "rejected_verdict": rv}


def pairs_from_scores(scored: Sequence[Scored], *, source: str, mode: str = "best_worst", min_margin: float = 0.0,
                      max_per_prompt: int | None = None, seed: int = 0) -> tuple[list[dict[str, Any]], PairStats]:
    """Turn scored candidates into ``{"prompt", "chosen", "rejected", ...}`` pairs.

    Args:
        mode: ``"best_worst"``: one pair per prompt, its best candidate against its worst.
            ``"all"``: every pair of distinct candidates whose scores differ by more than ``min_margin``
            (up to ``max_per_prompt`` per prompt, drawn at random), the higher one chosen.
        min_margin: a pair needs ``chosen_score - rejected_score > min_margin``.
        source: a label kept on every pair (``"maths-json"``, ``"reward model"``, ...).

    Identical texts never form a pair. Returns ``(pairs, stats)``; ``stats.skipped`` counts prompts
    that gave none, so nothing is dropped silently. Ties between candidates with the best (or worst)
    score are broken by candidate order.
    """
    if mode not in ("best_worst", "all"):
        raise ValueError(f"mode must be 'best_worst' or 'all', got {mode!r}")
    rng = random.Random(seed)
    pairs: list[dict[str, Any]] = []
    stats = PairStats(prompts=len(scored))
    for s in scored:
        seen: dict[str, int] = {}
        for j, t in enumerate(s.texts):  # first copy of each distinct non-empty text
            if t.strip() and t.strip() not in seen:
                seen[t.strip()] = j
        idx = list(seen.values())
        if len(idx) < 2:
            stats.skipped["too few"] += 1
            continue
        if max(s.scores[j] for j in idx) - min(s.scores[j] for j in idx) <= min_margin:
            stats.skipped["tied"] += 1
            continue
        if mode == "best_worst":
            best = max(idx, key=lambda j: s.scores[j])
            worst = min(idx, key=lambda j: s.scores[j])
            made = [(best, worst)]
        else:
            made = [(a, b) for a in idx for b in idx if s.scores[a] - s.scores[b] > min_margin]
            if max_per_prompt is not None and len(made) > max_per_prompt:
                made = rng.sample(made, max_per_prompt)
        for a, b in made:
            pairs.append(_pair(s.item, s.texts[a], s.texts[b], s.scores[a], s.scores[b], source,
                               s.verdicts[a], s.verdicts[b]))
        stats.made += len(made)
    return pairs, stats


def pairs_from_rewards(items: Sequence[Mapping[str, Any]], candidates: Sequence[Sequence[str]],
                       rewards: Sequence[Sequence[float]], *, source: str = "reward model",
                       min_margin: float = 0.0) -> tuple[list[dict[str, Any]], PairStats]:
    """One pair per prompt from a reward model's scores: the highest-scoring candidate against the lowest
    (Llama 3 pairs its best- and worst-scored samples). A thin wrapper of :func:`pairs_from_scores`."""
    if len(rewards) != len(candidates):
        raise ValueError(f"{len(candidates)} candidate lists but {len(rewards)} reward lists")
    scored = [Scored(dict(it), list(c), [float(x) for x in r], [f"reward {float(x):.2f}" for x in r])
              for it, c, r in zip(items, candidates, rewards)]
    return pairs_from_scores(scored, source=source, mode="best_worst", min_margin=min_margin)


def select_pairs(pairs: Sequence[Mapping[str, Any]], *, min_chosen_score: float | None = None,
                 min_margin: float | None = None, per_prompt: int | None = 1,
                 top_fraction: float | None = None) -> list[dict[str, Any]]:
    """The selective set: pairs whose chosen reply passes (``chosen_score >= min_chosen_score``), with a
    margin of at least ``min_margin``; the ``per_prompt`` largest-margin pairs of each prompt; then, with
    ``top_fraction``, only that share of the rest with the largest margins (at least one pair when any
    is left). Order: largest margin first."""
    if top_fraction is not None and not 0 < top_fraction <= 1:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    keep = [dict(p) for p in pairs
            if (min_chosen_score is None or p["chosen_score"] >= min_chosen_score)
            and (min_margin is None or p["margin"] >= min_margin)]
    keep.sort(key=lambda p: -p["margin"])  # stable: ties keep their input order
    if per_prompt is not None:
        count: Counter = Counter()
        out = []
        for p in keep:
            key = (p.get("source", ""), p["prompt"])
            if count[key] < per_prompt:
                out.append(p)
                count[key] += 1
        keep = out
    if top_fraction is not None and keep:
        keep = keep[:max(1, math.ceil(top_fraction * len(keep)))]
    return keep


def check_pairs(pairs: Sequence[Mapping[str, Any]] | None, what: str = "pairs") -> list[dict[str, Any]]:
    """Stop with a clear message when a round has nothing to train on; return the pairs as a list.

    Raises ``ValueError`` when there are no pairs (every candidate was rejected, or all tied), or when
    every pair's chosen and rejected texts are the same.
    """
    pairs = [dict(p) for p in (pairs or [])]
    if not pairs:
        raise ValueError(f"{what}: no preference pairs. Every prompt's candidates were tied or rejected by the "
                         "verifier, so there is nothing to train on: sample more candidates per prompt, raise the "
                         "temperature, loosen the selection (e.g. min_chosen_score), or use more prompts.")
    same = sum(p["chosen"].strip() == p["rejected"].strip() for p in pairs)
    if same == len(pairs):
        raise ValueError(f"{what}: in every one of the {len(pairs)} pairs chosen and rejected are the same text; "
                         "DPO has nothing to learn from them")
    return pairs


def count_by(pairs: Iterable[Mapping[str, Any]], key: str = "source") -> dict[str, int]:
    """How many pairs per value of ``key`` (for instance per source), largest first."""
    return dict(Counter(str(p.get(key, "")) for p in pairs).most_common())


# =============================================================================== implicit reward
def _rendered_ids(tokenizer: Any, prompts: Sequence[Any], replies: Sequence[str],
                  system: str | None = None) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, reply ids) of each pair, rendered and tokenized exactly as training does."""
    from helpers.train.finetune import render_prompt, render_reply

    if len(prompts) != len(replies):
        raise ValueError(f"{len(prompts)} prompts but {len(replies)} replies")
    return [(tokenizer(render_prompt(tokenizer, p, system), add_special_tokens=False)["input_ids"],
             tokenizer(render_reply(tokenizer, p, r, system), add_special_tokens=False)["input_ids"])
            for p, r in zip(prompts, replies)]


def rendered_lengths(tokenizer: Any, prompts: Sequence[Any], replies: Sequence[str], *,
                     system: str | None = None) -> np.ndarray:
    """Tokens of prompt plus reply as training renders them (chat template, end-of-turn token), per pair.

    Training cuts a sequence at ``max_length`` from the end, so a reply longer than that loses its tail; for a
    pair whose chosen and rejected replies differ late (one operator in a function), compare these lengths with
    ``max_length`` and keep only the candidates that fit.
    """
    return np.array([len(p) + len(r) for p, r in _rendered_ids(tokenizer, prompts, replies, system)], dtype=int)


def sequence_logps(model: Any, tokenizer: Any, prompts: Sequence[Any], replies: Sequence[str], *,
                   system: str | None = None, batch_size: int = 16, max_length: int | None = None) -> np.ndarray:
    """Summed log-probability of each reply given its prompt, ``log pi(y | x)``, as TRL's DPO computes it.

    Prompt and reply are rendered exactly as for training (:func:`helpers.train.finetune.render_prompt`,
    :func:`~helpers.train.finetune.render_reply`: the reply ends with the end-of-turn token) and
    tokenized separately, then joined; ``max_length`` cuts prompt plus reply at the end, as training does.
    """
    import torch

    rows = []
    for p_ids, r_ids in _rendered_ids(tokenizer, prompts, replies, system):
        ids = (p_ids + r_ids)[:max_length] if max_length else p_ids + r_ids
        rows.append((ids, len(p_ids)))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros(len(rows), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                width = max(len(ids) for ids, _ in chunk)
                inp = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for k, (ids, _) in enumerate(chunk):  # right padding: positions start at 0 for every row
                    inp[k, :len(ids)] = torch.tensor(ids)
                    mask[k, :len(ids)] = 1
                logits = model(input_ids=inp.to(device), attention_mask=mask.to(device)).logits.float()
                logp = torch.log_softmax(logits[:, :-1], -1)
                tok_logp = logp.gather(-1, inp[:, 1:].to(device).unsqueeze(-1)).squeeze(-1).cpu()
                for k, (ids, n_prompt) in enumerate(chunk):
                    # token t is predicted at position t-1; reply tokens are n_prompt .. len(ids)-1
                    out[start + k] = float(tok_logp[k, n_prompt - 1:len(ids) - 1].sum())
    finally:
        model.train(was_training)
    return out


@dataclass
class ImplicitRewardEval:
    """The DPO implicit reward on held-out pairs: ``r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x))``.

    Attributes:
        chosen_rewards, rejected_rewards: per pair.
        policy_chosen, policy_rejected, ref_chosen, ref_rejected: the summed log-probabilities.
        sources: each pair's source label.
        beta: the beta used.
    """

    chosen_rewards: np.ndarray
    rejected_rewards: np.ndarray
    policy_chosen: np.ndarray
    policy_rejected: np.ndarray
    ref_chosen: np.ndarray
    ref_rejected: np.ndarray
    sources: list[str]
    beta: float

    @property
    def margins(self) -> np.ndarray:
        """``r(chosen) - r(rejected)`` per pair."""
        return self.chosen_rewards - self.rejected_rewards

    @property
    def correct(self) -> np.ndarray:
        """1.0 where the chosen reply has the higher implicit reward, else 0.0 (a tie counts 0.5)."""
        m = self.margins
        return np.where(m > 0, 1.0, np.where(m < 0, 0.0, 0.5))

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")

    @property
    def margin(self) -> float:
        return float(self.margins.mean()) if len(self.margins) else float("nan")

    def by_source(self) -> dict[str, dict[str, float]]:
        """``{source: {"n", "accuracy", "margin"}}``."""
        out = {}
        for s in dict.fromkeys(self.sources):
            m = np.array([x == s for x in self.sources])
            out[s] = {"n": int(m.sum()), "accuracy": float(self.correct[m].mean()),
                      "margin": float(self.margins[m].mean())}
        return out


def implicit_reward_eval(model: Any, ref_model: Any, tokenizer: Any, pairs: Sequence[Mapping[str, Any]], *,
                         beta: float = 0.1, system: str | None = None, batch_size: int = 16,
                         max_length: int | None = None,
                         ref_logps: tuple[np.ndarray, np.ndarray] | None = None) -> ImplicitRewardEval:
    """Implicit-reward accuracy and margin of ``model`` against ``ref_model`` on held-out ``pairs``.

    Works for any model trained from ``ref_model`` (a DPO run, and equally an SFT run, which DPO's
    trainer would not evaluate). Pass ``ref_logps=(chosen, rejected)`` to reuse the reference
    log-probabilities across several models.
    """
    pairs = check_pairs(pairs, "held-out pairs")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    prompts = [p["prompt"] for p in pairs]
    kw = dict(system=system, batch_size=batch_size, max_length=max_length)
    pc = sequence_logps(model, tokenizer, prompts, [p["chosen"] for p in pairs], **kw)
    pr = sequence_logps(model, tokenizer, prompts, [p["rejected"] for p in pairs], **kw)
    if ref_logps is None:
        rc = sequence_logps(ref_model, tokenizer, prompts, [p["chosen"] for p in pairs], **kw)
        rr = sequence_logps(ref_model, tokenizer, prompts, [p["rejected"] for p in pairs], **kw)
    else:
        rc, rr = (np.asarray(x, dtype=np.float64) for x in ref_logps)
    return ImplicitRewardEval(beta * (pc - rc), beta * (pr - rr), pc, pr, rc, rr,
                              [str(p.get("source", "")) for p in pairs], beta)
