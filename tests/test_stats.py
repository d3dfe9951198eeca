"""Unit tests for helpers.core.stats: each function against the hand-written formula it replaced."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest

from helpers.core.stats import auc, auc_ci, bootstrap_ci, bootstrap_diff, pass_at_k, proportion_ci


# ---------------------------------------------------------------------- pass@k
def brute_pass_at_k(n, c, k):
    """Probability that a random k-subset of n samples (c correct) contains a correct one."""
    subsets = list(combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def comb_pass_at_k(n, c, k):
    """The formula as written in the paper (and in the old helpers.verify.mathgen)."""
    return 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 2), (6, 3, 4), (10, 1, 5), (4, 4, 2), (7, 5, 3),
                                   (10, 3, 3), (12, 0, 12), (9, 8, 1)])
def test_pass_at_k_matches_brute_force_and_the_binomial_formula(n, c, k):
    assert math.isclose(pass_at_k(n, c, k), brute_pass_at_k(n, c, k), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(pass_at_k(n, c, k), comb_pass_at_k(n, c, k), rel_tol=1e-9, abs_tol=1e-12)


def test_pass_at_k_large_n_stays_stable():
    # C(200, 100) overflows a float; the product form does not, and agrees with exact integers
    assert math.isclose(pass_at_k(200, 7, 100), comb_pass_at_k(200, 7, 100), rel_tol=1e-9)
    assert pass_at_k(200, 0, 100) == 0.0


def test_pass_at_k_edge_cases_and_errors():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # k > n - c: every draw of k samples must hold a passing one
    assert pass_at_k(3, 2, 2) == 1.0 and pass_at_k(5, 3, 3) == 1.0 and pass_at_k(4, 4, 1) == 1.0
    for bad in [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4), (0, 0, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


# ---------------------------------------------------------------------- bootstrap
def old_bootstrap_ci(per_problem, *, n_boot=2000, alpha=0.05, seed=0):
    """The hand-written version that lived in helpers.verify.mathgen."""
    x = np.asarray(per_problem, dtype=float)
    x = x[~np.isnan(x)]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(x.mean()), float(lo), float(hi)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("kind", ["binary", "continuous", "with_nans"])
def test_bootstrap_ci_matches_the_old_resampling(kind, seed):
    rng = np.random.default_rng(100 + seed)
    x = {"binary": rng.integers(0, 2, 40).astype(float), "continuous": rng.normal(0.3, 1.0, 25),
         "with_nans": np.where(rng.random(30) < 0.2, np.nan, rng.random(30))}[kind]
    for n_boot, alpha in ((2000, 0.05), (500, 0.1)):
        # scipy.stats.bootstrap draws the same indices from the same seeded generator
        np.testing.assert_allclose(bootstrap_ci(x, n_boot=n_boot, alpha=alpha, seed=seed),
                                   old_bootstrap_ci(x, n_boot=n_boot, alpha=alpha, seed=seed), rtol=1e-12)


def test_bootstrap_ci_interval_and_edge_cases():
    m, lo, hi = bootstrap_ci([0, 1] * 50, seed=0)
    assert m == 0.5 and lo < 0.5 < hi and hi - lo < 0.3
    assert bootstrap_ci([0, 1] * 50, seed=3) == bootstrap_ci([0, 1] * 50, seed=3)  # seeded
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0, 1.0)
    assert bootstrap_ci([0.25, np.nan]) == (0.25, 0.25, 0.25)  # one value left: no spread to resample
    for empty in ([], [float("nan")], np.full(3, np.nan)):
        assert all(math.isnan(v) for v in bootstrap_ci(empty))  # nothing to average: a nan cell, no error
    # a narrower confidence level gives a narrower interval
    x = np.random.default_rng(0).random(50)
    (_, lo95, hi95), (_, lo80, hi80) = bootstrap_ci(x, alpha=0.05), bootstrap_ci(x, alpha=0.2)
    assert lo95 < lo80 < hi80 < hi95


def test_bootstrap_diff_paired_is_the_ci_of_the_differences():
    rng = np.random.default_rng(3)
    a = rng.random(40)
    b = a - 0.1 + rng.normal(0, 0.05, 40)
    b[5] = np.nan  # the pair is dropped on both sides
    d, lo, hi = bootstrap_diff(a, b, paired=True, seed=4)
    ok = ~np.isnan(b)
    np.testing.assert_allclose((d, lo, hi), old_bootstrap_ci(a[ok] - b[ok], seed=4), rtol=1e-9)
    assert 0 < lo < 0.1 < hi  # A is better than B, and the interval says so


def test_bootstrap_diff_unpaired_resamples_each_sample():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 45)
    d, lo, hi = bootstrap_diff(a, b, paired=False, n_boot=3000, seed=0)
    assert d == pytest.approx(a.mean() - b.mean()) and lo < d < hi and lo > 0
    # independent resampling: the spread is about the two-sample standard error, not the paired one
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.15)
    # the same two samples, paired, would need equal lengths
    with pytest.raises(ValueError, match="same length"):
        bootstrap_diff(a, b, paired=True)


@pytest.mark.parametrize("paired", [True, False])
def test_bootstrap_diff_needs_two_values_per_side(paired):
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_diff([], [], paired=paired)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_diff([1.0, np.nan], [0.0, 1.0], paired=paired)


# ---------------------------------------------------------------------- binomial interval
def wilson(k, n, z=1.959963984540054):
    """The Wilson score interval written out."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (37, 50), (1, 1), (500, 1000)])
def test_proportion_ci_is_the_wilson_interval(k, n):
    p, lo, hi = proportion_ci(k, n)
    assert p == k / n
    np.testing.assert_allclose((lo, hi), wilson(k, n), rtol=1e-9, atol=1e-12)
    assert 0.0 <= lo <= p <= hi <= 1.0


def test_proportion_ci_confidence_and_errors():
    _, lo90, hi90 = proportion_ci(7, 20, confidence=0.90)
    np.testing.assert_allclose((lo90, hi90), wilson(7, 20, z=1.6448536269514722), rtol=1e-9)
    assert proportion_ci(0, 5)[2] > 0  # not the empty interval the normal approximation gives at p = 0
    with pytest.raises(ValueError, match="n >= 1"):
        proportion_ci(0, 0)
    with pytest.raises(ValueError, match="successes"):
        proportion_ci(6, 5)


# ---------------------------------------------------------------------- AUC
def old_auc(scores_good, scores_bad):
    """The hand-written version that lived in helpers.text.reward (ties count half)."""
    g = np.asarray([s for s in scores_good if np.isfinite(s)], dtype=float)
    b = np.asarray([s for s in scores_bad if np.isfinite(s)], dtype=float)
    diff = g[:, None] - b[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def test_auc_matches_the_pairwise_count():
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = rng.integers(0, 5, rng.integers(1, 15)).astype(float)  # small integers: many ties
        b = rng.integers(0, 5, rng.integers(1, 15)).astype(float)
        g[rng.random(g.size) < 0.1] = np.nan
        if np.isfinite(g).any():
            assert auc(g, b) == pytest.approx(old_auc(g, b), abs=1e-12)
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1, 2], [3, 4]) == 0.0 and auc([1], [1]) == 0.5
    assert auc([2, 1], [1, np.inf]) == 0.75  # inf is not a finite score: dropped like NaN


def test_auc_without_a_score_on_one_side_is_nan():
    assert math.isnan(auc([], [1])) and math.isnan(auc([1.0], [])) and math.isnan(auc([np.nan], [1.0]))


def test_auc_ci_matches_a_plain_resampling_loop_and_brackets_the_auc():
    rng = np.random.default_rng(3)
    good, bad = rng.normal(1.0, 1.0, 25), rng.normal(0.0, 1.0, 30)
    good[:3] = bad[:3]  # ties count half
    a, lo, hi = auc_ci(good, bad, n_boot=500, seed=7)
    assert a == auc(good, bad) and lo < a < hi
    # the same resamples drawn one by one give the same interval
    r = np.random.default_rng(7)
    gi, bi = r.integers(0, 25, (500, 25)), r.integers(0, 30, (500, 30))
    loop = [auc(good[gi[k]], bad[bi[k]]) for k in range(500)]
    assert np.allclose([lo, hi], np.quantile(loop, [0.025, 0.975]))
    # a perfect separation has a degenerate interval at 1; no scores on one side gives nan
    assert auc_ci([2.0, 3.0], [0.0, 1.0], n_boot=50) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in auc_ci([1.0], [float("nan")]))
