"""Diversity metrics for a set of generated texts."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from helpers.core.textutil import words
from helpers.lm.embeddings import cosine_matrix, mean_pairwise_cosine


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams / all n-grams across the set.

    1.0 means no n-gram repeats anywhere; values near 0 mean the texts repeat each other
    (or themselves). Returns ``nan`` when the texts hold no n-gram at all.
    """
    grams: list[tuple[str, ...]] = []
    for t in texts:
        w = words(t)
        grams.extend(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    return len(set(grams)) / len(grams) if grams else float("nan")


def near_duplicate_rate(embeddings: np.ndarray, threshold: float = 0.9) -> float:
    """Share of items whose nearest *other* item has cosine similarity >= ``threshold``."""
    n = len(embeddings)
    if n < 2:
        return 0.0
    sims = cosine_matrix(embeddings)
    np.fill_diagonal(sims, -1.0)
    return float((sims.max(1) >= threshold).mean())


def diversity_report(texts: Sequence[str], embeddings: np.ndarray, threshold: float = 0.9) -> dict[str, float]:
    """distinct-1, distinct-2, mean pairwise cosine, and near-duplicate rate in one dict."""
    return {
        "n": float(len(texts)),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_pairwise_cosine": mean_pairwise_cosine(embeddings),
        "near_dup_rate": near_duplicate_rate(embeddings, threshold),
    }


#: The metrics :func:`diversity_diff` compares, and whether a higher value means more diverse.
DIFF_METRICS = {"distinct_2": True, "mean_pairwise_cosine": False, "near_dup_rate": False}


def _leave_one_out(texts: Sequence[str], embeddings: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Each metric of :data:`DIFF_METRICS` recomputed with item ``i`` left out, for every ``i``."""
    from collections import Counter

    n = len(texts)
    grams = [[tuple(w[i:i + 2]) for i in range(len(w) - 1)] for w in (words(t) for t in texts)]
    counts = Counter(g for gs in grams for g in gs)
    total, unique = sum(counts.values()), len(counts)
    d2 = np.array([(unique - sum(1 for g, c in Counter(gs).items() if counts[g] == c)) / (total - len(gs))
                   if total > len(gs) else np.nan for gs in grams])
    sims = cosine_matrix(embeddings)
    np.fill_diagonal(sims, 0.0)
    pair_sum, row = sims.sum(), sims.sum(1)
    cos = (pair_sum - 2 * row) / ((n - 1) * (n - 2))
    np.fill_diagonal(sims, -np.inf)
    dup = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        dup[i] = float((sims[np.ix_(keep, keep)].max(1) >= threshold).mean())
    return {"distinct_2": d2, "mean_pairwise_cosine": cos, "near_dup_rate": dup}


def diversity_diff(texts_a: Sequence[str], emb_a: np.ndarray, texts_b: Sequence[str], emb_b: np.ndarray, *,
                   n: int | None = None, threshold: float = 0.9, seed: int = 0,
                   alpha: float = 0.05) -> dict[str, dict[str, Any]]:
    """Set A minus set B on each diversity metric, at equal size, with a jackknife interval.

    distinct-n, mean pairwise cosine and the near-duplicate rate describe a whole set, not one
    item, so the per-item bootstrap of :func:`helpers.core.stats.bootstrap_diff` does not apply,
    and resampling with replacement would plant exact duplicates that distort all three. The
    delete-one jackknife (Efron and Tibshirani, *An Introduction to the Bootstrap*, ch. 11) needs
    no duplicates: recompute the metric with each item left out; the spread of those values gives
    the standard error, ``se^2 = (n-1)/n * sum((theta_i - mean)^2)``. The two sets are independent,
    so the error of the difference is ``sqrt(se_a^2 + se_b^2)`` and the interval is normal. Written
    here because neither scipy nor scikit-learn ships a jackknife for a set-level statistic.

    Both sets are first cut to the same ``n`` items (default: the smaller size; a seeded random
    subset of the larger), since distinct-n falls as a set grows. Returns, per metric of
    :data:`DIFF_METRICS`: ``a``, ``b``, ``diff`` (A - B), ``se`` (its standard error), ``lo``, ``hi``, ``n`` and ``word``:
    ``"A more diverse"``, ``"B more diverse"`` or ``"not clearly different"`` from the interval
    (a higher distinct-2 or a lower cosine or near-duplicate rate is more diverse). Raises
    ``ValueError`` when a set has fewer than 4 items.
    """
    from scipy.stats import norm

    n = n or min(len(texts_a), len(texts_b))
    if n < 4 or min(len(texts_a), len(texts_b)) < n:
        raise ValueError(f"diversity_diff needs at least 4 items per set (and n <= both sizes), got n={n}, "
                         f"sizes {len(texts_a)} and {len(texts_b)}")
    rng = np.random.default_rng(seed)
    cut = []
    for texts, emb in ((texts_a, emb_a), (texts_b, emb_b)):
        idx = np.sort(rng.choice(len(texts), size=n, replace=False))
        cut.append(([texts[i] for i in idx], np.asarray(emb)[idx]))
    full = [diversity_report(t, e, threshold) for t, e in cut]
    loo = [_leave_one_out(t, e, threshold) for t, e in cut]
    z = float(norm.ppf(1 - alpha / 2))
    out: dict[str, dict[str, Any]] = {}
    for metric, up in DIFF_METRICS.items():
        var = sum((n - 1) / n * float(np.nansum((v[metric] - np.nanmean(v[metric])) ** 2)) for v in loo)
        diff = full[0][metric] - full[1][metric]
        lo, hi = diff - z * var ** 0.5, diff + z * var ** 0.5
        better_a = lo > 0 if up else hi < 0
        better_b = hi < 0 if up else lo > 0
        out[metric] = {"a": full[0][metric], "b": full[1][metric], "diff": diff, "se": var ** 0.5, "lo": lo, "hi": hi, "n": n,
                       "word": "A more diverse" if better_a else "B more diverse" if better_b else "not clearly different"}
    return out
