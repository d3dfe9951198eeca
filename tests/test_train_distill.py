"""Soft-label distillation: the loss formula, the hint loss, training, subsampling, and the effects the chapter shows."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.train.distill import (MLP, accuracy, count_parameters, distillation_loss, drop_class, fit, hint_loss,
                                   per_class_accuracy, soft_targets, subsample)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    return train_test_split(d.data / 16.0, d.target, test_size=0.3, random_state=0, stratify=d.target)


@pytest.fixture(scope="module")
def teacher(digits):
    Xtr, Xte, ytr, yte = digits
    t = MLP([64, 128, 128, 10], dropout=0.2, seed=0)
    fit(t, Xtr, labels=ytr, steps=200, lr=3e-3)
    return t


def test_mlp_shapes_parameters_and_seed():
    m = MLP([64, 16, 10], seed=3)
    assert count_parameters(m) == 64 * 16 + 16 + 16 * 10 + 10
    logits, h = m(torch.zeros(5, 64), hidden=True)
    assert logits.shape == (5, 10) and h.shape == (5, 16) and m.hidden_size == 16
    assert torch.equal(MLP([64, 16, 10], seed=3).head.weight, m.head.weight)
    assert not torch.equal(MLP([64, 16, 10], seed=4).head.weight, m.head.weight)
    with pytest.raises(ValueError):
        MLP([64, 10])
    with pytest.raises(ValueError):
        MLP([64, 16, 10], dropout=1.0)


def test_soft_targets_temperature_flattens():
    logits = torch.tensor([[4.0, 1.0, 0.0]])
    p1, p5 = soft_targets(logits, 1.0), soft_targets(logits, 5.0)
    assert torch.allclose(p1.sum(-1), torch.ones(1)) and torch.allclose(p5.sum(-1), torch.ones(1))
    assert torch.allclose(p1, torch.softmax(logits, -1))
    assert p5[0, 0] < p1[0, 0] and p5[0, 2] > p1[0, 2]  # higher T: less mass on the winner
    with pytest.raises(ValueError):
        soft_targets(logits, 0)


def test_distillation_loss_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    T, a = 3.0, 0.7
    p_t = torch.softmax(t / T, -1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(s / T, -1))).sum(-1).mean()
    expected = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
    assert torch.allclose(distillation_loss(s, t, y, temperature=T, alpha=a), expected, atol=1e-6)
    # soft term alone when there are no labels; zero when the student equals the teacher
    assert torch.allclose(distillation_loss(s, t, temperature=T), T * T * kl, atol=1e-6)
    assert float(distillation_loss(t, t, temperature=T)) == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(distillation_loss(s, labels=y), F.cross_entropy(s, y))
    with pytest.raises(ValueError):
        distillation_loss(s)
    with pytest.raises(ValueError):
        distillation_loss(s, t[:, :3])
    with pytest.raises(ValueError):
        distillation_loss(s, t, y, alpha=1.5)


def test_hint_loss_is_mse_through_the_regressor():
    reg = torch.nn.Linear(3, 5)
    sh, th = torch.randn(4, 3), torch.randn(4, 5)
    assert torch.allclose(hint_loss(sh, th, reg), F.mse_loss(reg(sh), th))
    with pytest.raises(ValueError):
        hint_loss(sh, torch.randn(4, 6), reg)


def test_fit_rejects_bad_input():
    m = MLP([4, 3, 2])
    X = np.zeros((5, 4))
    with pytest.raises(ValueError, match="labels"):
        fit(m, X, labels=[0, 1, 2, 0, 1])  # class 2 does not exist
    with pytest.raises(ValueError):
        fit(m, X)  # nothing to learn from
    with pytest.raises(ValueError, match="features"):
        fit(m, np.zeros((5, 3)), labels=[0] * 5)
    with pytest.raises(ValueError, match="NaN"):
        fit(m, np.full((5, 4), np.nan), labels=[0] * 5)
    with pytest.raises(ValueError, match="teacher_hidden"):
        fit(m, X, labels=[0] * 5, hint_weight=1.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        fit(m, X, teacher_logits=np.zeros((5, 3)))


def test_fit_is_deterministic_and_learns(digits):
    Xtr, Xte, ytr, yte = digits
    accs = []
    for _ in range(2):
        m = MLP([64, 16, 10], seed=0)
        run = fit(m, Xtr, labels=ytr, steps=150, seed=0)
        accs.append(accuracy(m, Xte, yte))
    assert accs[0] == accs[1] and accs[0] > 0.85
    assert run.steps == 150 and run.losses[-1][0] == 150 and run.losses[0][1] > run.final_loss


def test_soft_labels_beat_hard_labels_on_few_examples(digits, teacher):
    """Hinton et al.'s claim on a small scale: 30 labelled images, soft labels at T=5 vs hard labels, 3 seeds."""
    Xtr, Xte, ytr, yte = digits
    t_logits = teacher.predict(Xtr)
    hard, soft = [], []
    for seed in range(3):
        idx = subsample(ytr, 30, seed=seed)
        h = MLP([64, 16, 10], seed=seed)
        fit(h, Xtr[idx], labels=ytr[idx], steps=200, seed=seed)
        s = MLP([64, 16, 10], seed=seed)
        fit(s, Xtr[idx], teacher_logits=t_logits[idx], temperature=5.0, steps=200, seed=seed)
        hard.append(accuracy(h, Xte, yte))
        soft.append(accuracy(s, Xte, yte))
    assert np.mean(soft) > np.mean(hard) + 0.03, (soft, hard)


def test_left_out_class_is_recovered_only_from_soft_labels(digits, teacher):
    Xtr, Xte, ytr, yte = digits
    t_logits = teacher.predict(Xtr).numpy()
    X3, y3, tl3 = drop_class(Xtr, ytr, 3, t_logits)
    assert 3 not in y3 and len(X3) == len(tl3) == (ytr != 3).sum()
    hard = MLP([64, 16, 10], seed=0)
    fit(hard, X3, labels=y3, steps=200)
    soft = MLP([64, 16, 10], seed=0)
    fit(soft, X3, teacher_logits=tl3, temperature=20.0, steps=200)
    assert per_class_accuracy(hard, Xte, yte)[3] == 0.0  # never seen, never predicted
    assert per_class_accuracy(soft, Xte, yte)[3] > 0.3
    with pytest.raises(ValueError):
        drop_class(X3, y3, 3)


def test_hint_loss_trains_the_regressor_path(digits, teacher):
    Xtr, _, ytr, _ = digits
    logits, hidden = teacher.predict(Xtr[:100], hidden=True)
    m = MLP([64, 16, 10], seed=0)
    run = fit(m, Xtr[:100], teacher_logits=logits, temperature=4, teacher_hidden=hidden, hint_weight=1.0, steps=50)
    assert math.isfinite(run.final_loss) and run.settings["hint_weight"] == 1.0


def test_subsample_is_stratified_and_seeded():
    y = np.repeat(np.arange(10), 50)
    idx = subsample(y, 20, seed=1)
    assert len(idx) == 20 == len(set(idx.tolist()))
    assert np.bincount(y[idx], minlength=10).tolist() == [2] * 10
    assert np.array_equal(idx, subsample(y, 20, seed=1)) and not np.array_equal(idx, subsample(y, 20, seed=2))
    assert len(set(y[subsample(y, 7, seed=0)].tolist())) == 7
    with pytest.raises(ValueError):
        subsample(y, 501)
