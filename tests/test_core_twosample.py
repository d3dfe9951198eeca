"""helpers.core.twosample: the classifier two-sample test (C2ST)."""
import numpy as np
import pytest

from helpers.core.twosample import _auc, c2st


def _gauss(n, d, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_same_distribution_gives_chance_auc_and_a_large_p_value():
    res = c2st(_gauss(120, 4, seed=1), _gauss(120, 4, seed=2), n_permutations=30, n_boot=300, seed=0)
    assert res.lo <= 0.5 <= res.hi
    assert res.p_value > 0.05
    assert (res.n_a, res.n_b, res.n_groups) == (120, 120, None)


def test_shifted_distribution_is_detected_with_an_interval_above_chance():
    res = c2st(_gauss(120, 4, seed=1), _gauss(120, 4, shift=0.8, seed=2), n_permutations=30, n_boot=300, seed=0)
    assert res.auc > 0.8 and res.lo > 0.6
    assert res.p_value == pytest.approx(1 / 31)  # no shuffled run reached the observed AUC
    assert res.lo <= res.auc <= res.hi
    assert len(res.scores) == 240 and set(res.labels) == {0, 1}
    assert "AUC" in str(res) and res.row()["n_b"] == 120


def test_bigger_gap_gives_higher_auc():
    a = _gauss(100, 3, seed=3)
    small = c2st(a, _gauss(100, 3, shift=0.3, seed=4), n_permutations=0, n_boot=100).auc
    big = c2st(a, _gauss(100, 3, shift=1.5, seed=4), n_permutations=0, n_boot=100).auc
    assert big > small
    assert np.isnan(c2st(a, _gauss(100, 3, seed=4), n_permutations=0, n_boot=50).p_value)


def test_grouped_cv_removes_the_optimism_of_recognising_groups():
    # each group (a "clip") has its own offset and A and B have no real difference: without groups the
    # classifier learns the offsets of groups it saw in training; with groups it cannot
    rng = np.random.default_rng(0)
    ga, gb = np.repeat(np.arange(12), 10), np.repeat(np.arange(12, 24), 10)
    offsets = rng.normal(size=(24, 6)) * 3
    a = rng.normal(size=(120, 6)) + offsets[ga]
    b = rng.normal(size=(120, 6)) + offsets[gb]
    loose = c2st(a, b, n_permutations=0, n_boot=200, seed=0)
    grouped = c2st(a, b, groups_a=ga, groups_b=gb, n_permutations=20, n_boot=200, seed=0)
    assert loose.lo > 0.5  # optimistic: "detects" a difference that is not there
    assert grouped.auc < loose.auc
    assert grouped.lo <= 0.5  # the grouped interval (over whole groups) does not exclude chance
    assert grouped.n_groups == 24 and grouped.p_value > 0.05


def test_groups_shared_by_both_sets_stay_in_one_fold():
    # a group holds rows of both sets (one sentence, read and synthesised); a real shift is still found
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(8), 6)
    a = rng.normal(size=(48, 3))
    b = rng.normal(size=(48, 3)) + 1.0
    res = c2st(a, b, groups_a=g, groups_b=g, folds=4, n_permutations=20, n_boot=200, seed=0)
    assert res.n_groups == 8 and res.folds == 4
    assert res.lo > 0.6


def test_rank_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # with ties
    assert _auc(y, s) == pytest.approx(roc_auc_score(y, s))


@pytest.mark.parametrize("kwargs, message", [
    ({"a": np.zeros(5), "b": np.zeros((5, 2))}, "2-D"),
    ({"a": np.zeros((5, 3)), "b": np.zeros((5, 2))}, "feature counts"),
    ({"a": np.zeros((1, 2)), "b": np.zeros((5, 2))}, "at least 2 items"),
    ({"a": np.full((5, 2), np.nan), "b": np.zeros((5, 2))}, "NaN"),
    ({"a": np.zeros((5, 2)), "b": np.zeros((5, 2)), "groups_a": [0] * 5}, "both sets"),
    ({"a": np.zeros((5, 2)), "b": np.zeros((5, 2)), "groups_a": [0] * 4, "groups_b": [1] * 5}, "one label per row"),
    ({"a": np.zeros((5, 2)), "b": np.zeros((5, 2)), "groups_a": [0] * 5, "groups_b": [0] * 5}, "at least 2 groups"),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        c2st(**kwargs)
