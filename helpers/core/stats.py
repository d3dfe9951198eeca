"""Small statistics shared by the chapters: pass@k, bootstrap intervals, AUC, a binomial interval.

>>> round(pass_at_k(10, 3, 1), 3)                # unbiased pass@k (Chen et al., 2021)
0.3
>>> mean, lo, hi = bootstrap_ci(per_problem_accuracy, seed=0)
>>> diff, lo, hi = bootstrap_diff(acc_a, acc_b, paired=True, seed=0)   # A minus B, same problems
>>> p, lo, hi = proportion_ci(37, 50)            # Wilson interval for 37 successes out of 50
>>> auc(scores_of_good_items, scores_of_bad_items)

The intervals come from :func:`scipy.stats.bootstrap` (percentile method, seeded) and
:func:`scipy.stats.binomtest`; the AUC from :func:`sklearn.metrics.roc_auc_score`. Those
libraries are imported on first use, so importing this module stays cheap.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["pass_at_k", "bootstrap_ci", "bootstrap_diff", "proportion_ci", "auc", "auc_ci"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): ``1 - C(n-c, k) / C(n, k)``, computed stably.

    The chance that ``k`` samples drawn without replacement from ``n`` (of which ``c``
    passed) include at least one that passed. Raises ``ValueError`` unless
    ``0 <= c <= n`` and ``1 <= k <= n``.
    """
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of samples n={n}")
    if n - c < k:  # every draw of k holds a passing sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def bootstrap_ci(per_item: Sequence[float] | np.ndarray, *, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and a ``1 - alpha`` percentile bootstrap interval, resampling items (NaNs ignored).

    ``(mean, lo, hi)``; all three are ``nan`` when no value is left after dropping NaNs (so a
    table of many cells can hold an empty one), and a single value gives ``(x, x, x)``.
    """
    x = _finite(per_item)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if x.size == 1:  # every resample is that one value
        return float(x[0]), float(x[0]), float(x[0])
    from scipy.stats import bootstrap

    res = bootstrap((x,), np.mean, n_resamples=n_boot, confidence_level=1 - alpha, method="percentile",
                    vectorized=True, rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return float(x.mean()), float(ci.low), float(ci.high)


def _mean_diff(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_diff(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, paired: bool,
                   n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` and a ``1 - alpha`` percentile bootstrap interval for it.

    ``paired=True``: ``a[i]`` and ``b[i]`` belong to the same item (the same problem solved two
    ways), so items are resampled together and a pair with a NaN on either side is dropped.
    ``paired=False``: two independent samples, each resampled on its own (NaNs dropped from
    each). An interval that excludes 0 is the usual evidence that A and B differ.
    Raises ``ValueError`` when a sample has fewer than two values left.
    """
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if paired:
        if x.shape != y.shape:
            raise ValueError(f"paired samples need the same length, got {x.size} and {y.size}")
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
    else:
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if min(x.size, y.size) < 2:
        raise ValueError(f"bootstrap_diff needs at least 2 non-NaN values per sample, got {x.size} and {y.size}")
    from scipy.stats import bootstrap

    res = bootstrap((x, y), _mean_diff, n_resamples=n_boot, confidence_level=1 - alpha, method="percentile",
                    vectorized=True, paired=paired, rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return float(x.mean() - y.mean()), float(ci.low), float(ci.high)


def proportion_ci(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """Share ``successes / n`` and its Wilson score interval (``scipy.stats.binomtest``).

    Better than ``p +- 1.96 * sqrt(p(1-p)/n)`` for small ``n`` or a share near 0 or 1 (the
    Wilson interval never leaves [0, 1] and is not empty at ``p = 0``). Raises ``ValueError``
    for ``n < 1`` or ``successes`` outside ``0..n``.
    """
    if n < 1:
        raise ValueError(f"proportion_ci needs n >= 1 trials, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return successes / n, float(ci.low), float(ci.high)


def auc(scores_good: Sequence[float], scores_bad: Sequence[float]) -> float:
    """Probability that a random good item outscores a random bad one (ties count half; NaNs dropped).

    The ROC AUC of the scores with good = positive (:func:`sklearn.metrics.roc_auc_score`).
    ``nan`` when either side has no finite score left.
    """
    g = np.asarray(scores_good, dtype=float).ravel()
    b = np.asarray(scores_bad, dtype=float).ravel()
    g, b = g[np.isfinite(g)], b[np.isfinite(b)]
    if not g.size or not b.size:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(g.size), np.zeros(b.size)]
    return float(roc_auc_score(y, np.r_[g, b]))


def auc_ci(scores_good: Sequence[float], scores_bad: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05,
           seed: int = 0) -> tuple[float, float, float]:
    """:func:`auc` with a percentile bootstrap interval: ``(auc, low, high)``.

    Good and bad items are resampled separately (a stratified bootstrap), so every resample keeps
    both classes at their sizes. ``nan`` for all three when either side has no finite score.
    """
    g = np.asarray(scores_good, dtype=float).ravel()
    b = np.asarray(scores_bad, dtype=float).ravel()
    g, b = g[np.isfinite(g)], b[np.isfinite(b)]
    if not g.size or not b.size:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    gi = rng.integers(0, g.size, (n_boot, g.size))
    bi = rng.integers(0, b.size, (n_boot, b.size))
    # AUC = P(good > bad) + 0.5 P(tie), from all good-bad comparisons of each resample
    gt = (g[:, None] > b[None, :]).astype(float) + 0.5 * (g[:, None] == b[None, :])
    counts_g = np.apply_along_axis(np.bincount, 1, gi, minlength=g.size)
    counts_b = np.apply_along_axis(np.bincount, 1, bi, minlength=b.size)
    boots = np.einsum("ng,gb,nb->n", counts_g, gt, counts_b) / (g.size * b.size)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return auc(g, b), float(lo), float(hi)
