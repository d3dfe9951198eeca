"""Soft-label distillation on small tasks that train in seconds (chapter 16).

Knowledge distillation ([Hinton, Vinyals and Dean, 2015](https://arxiv.org/abs/1503.02531)) trains a
small *student* on the output distribution of a large *teacher*: the teacher's logits divided by a
temperature ``T`` and turned into probabilities ("soft labels") say not only which class an input
is, but which other classes it resembles. A hint loss ([Romero et al., 2015, FitNets](https://arxiv.org/abs/1412.6550))
also asks a student's hidden layer, through a learned linear map, to reproduce a teacher's hidden layer.

>>> teacher = MLP([64, 256, 256, 10], dropout=0.2, seed=0)
>>> fit(teacher, X_train, labels=y_train, steps=400)
>>> t_logits, t_hidden = teacher.predict(X_small, hidden=True)
>>> student = MLP([64, 16, 10], seed=1)
>>> run = fit(student, X_small, labels=y_small, teacher_logits=t_logits, temperature=4, alpha=0.9)
>>> accuracy(student, X_test, y_test)

The loss is written out in :func:`distillation_loss` (a few lines of torch, the formula of the
paper) because that is what the chapter teaches; the models are plain ``torch.nn`` multilayer
perceptrons and the loop is full-batch Adam, which for a few thousand 64-pixel images is faster
than any framework's data loader. Everything is seeded: the same call gives the same student.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "soft_targets", "distillation_loss", "hint_loss", "FitRun", "fit", "accuracy",
           "per_class_accuracy", "count_parameters", "drop_class", "subsample"]


class MLP(nn.Module):
    """A multilayer perceptron with ReLU hidden layers: ``sizes = [inputs, hidden..., classes]``.

    ``forward(x)`` returns logits; ``forward(x, hidden=True)`` returns ``(logits, h)`` where ``h``
    is the last hidden layer's activation (what a hint loss matches). ``seed`` fixes the initial
    weights. ``dropout`` applies after every hidden layer while training.
    """

    def __init__(self, sizes: Sequence[int], *, dropout: float = 0.0, seed: int = 0):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 3 or min(sizes) < 1:
            raise ValueError(f"an MLP needs [inputs, at least one hidden size, classes], all >= 1; got {sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        gen = torch.random.fork_rng(devices=[])
        with gen:
            torch.manual_seed(seed)
            self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-2], sizes[1:-1]))
            self.head = nn.Linear(sizes[-2], sizes[-1])
        self.sizes, self.dropout = sizes, float(dropout)

    @property
    def hidden_size(self) -> int:
        return self.sizes[-2]

    def forward(self, x: torch.Tensor, hidden: bool = False):
        h = x
        for layer in self.hidden_layers:
            h = F.relu(layer(h))
            if self.dropout:
                h = F.dropout(h, self.dropout, self.training)
        logits = self.head(h)
        return (logits, h) if hidden else logits

    @torch.no_grad()
    def predict(self, X, hidden: bool = False):
        """Logits (and the last hidden layer with ``hidden=True``) for ``X``, in eval mode, as tensors."""
        was = self.training
        self.eval()
        try:
            return self(_as_float(X), hidden=hidden)
        finally:
            self.train(was)


def _as_float(X) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(X, dtype=np.float32) if not isinstance(X, torch.Tensor) else X).float()
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D array (items x features), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("inputs contain NaN or infinite values")
    return t


def _as_labels(y, n: int, n_classes: int) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if t.ndim != 1 or len(t) != n:
        raise ValueError(f"labels must be a 1-D array of {n} class ids, got shape {tuple(t.shape)}")
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, got {int(t.min())}..{int(t.max())}")
    return t


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model`` (all of them, trainable or not)."""
    return int(sum(p.numel() for p in model.parameters()))


def soft_targets(logits, temperature: float = 1.0) -> torch.Tensor:
    """``softmax(logits / T)``: the teacher's soft labels. ``T = 1`` is the ordinary softmax;
    a higher ``T`` flattens it and shows the small probabilities of the wrong classes."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.softmax(torch.as_tensor(logits).float() / temperature, dim=-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor | None = None,
                      labels: torch.Tensor | None = None, *, temperature: float = 1.0,
                      alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al.'s loss: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)``.

    ``teacher_T`` and ``student_T`` are softmaxes at temperature ``T``; the ``T^2`` keeps the
    gradient of the soft term on the same scale whatever ``T`` is (the paper's section 2). Without
    ``teacher_logits`` this is plain cross-entropy on ``labels``; without ``labels`` it is the soft
    term alone (whatever ``alpha`` says), which is what a student gets for data no human labelled.
    """
    if teacher_logits is None and labels is None:
        raise ValueError("distillation_loss needs teacher_logits, labels or both")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if teacher_logits is None:
        return F.cross_entropy(student_logits, labels)
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher logits {tuple(teacher_logits.shape)} and student logits "
                         f"{tuple(student_logits.shape)} differ in shape")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1), reduction="batchmean",
                    log_target=True) * temperature ** 2
    if labels is None or alpha == 1.0:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def hint_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, regressor: nn.Module) -> torch.Tensor:
    """FitNets' hint loss: mean squared error between ``regressor(student_hidden)`` and ``teacher_hidden``.

    The regressor (a linear map from the student's width to the teacher's) is trained with the
    student and thrown away afterwards.
    """
    pred = regressor(student_hidden)
    if pred.shape != teacher_hidden.shape:
        raise ValueError(f"regressor output {tuple(pred.shape)} does not match the teacher's hidden "
                         f"layer {tuple(teacher_hidden.shape)}")
    return F.mse_loss(pred, teacher_hidden)


@dataclass
class FitRun:
    """What :func:`fit` did: steps, wall seconds, the final loss, the loss every ``log_every`` steps, settings."""

    steps: int
    seconds: float
    final_loss: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def fit(model: MLP, X, *, labels=None, teacher_logits=None, temperature: float = 1.0, alpha: float = 1.0,
        teacher_hidden=None, hint_weight: float = 0.0, steps: int = 300, lr: float = 1e-2,
        weight_decay: float = 1e-4, seed: int = 0, log_every: int = 50) -> FitRun:
    """Train ``model`` in place with full-batch Adam on ``X`` for ``steps`` steps.

    * ``labels`` only: ordinary training on hard labels (cross-entropy).
    * ``teacher_logits`` (and optionally ``labels``): :func:`distillation_loss` at ``temperature``
      with weight ``alpha`` on the soft term (``alpha=1``: soft labels only).
    * ``teacher_hidden`` with ``hint_weight > 0``: adds :func:`hint_loss` through a linear
      regressor trained alongside (FitNets).

    Raises ``ValueError`` on empty or mismatched inputs, NaNs, labels outside the classes, or a
    hint weight without teacher activations.
    """
    x = _as_float(X)
    n, n_classes = len(x), model.sizes[-1]
    if n == 0:
        raise ValueError("fit needs at least one training item")
    if x.shape[1] != model.sizes[0]:
        raise ValueError(f"X has {x.shape[1]} features but the model expects {model.sizes[0]}")
    y = _as_labels(labels, n, n_classes) if labels is not None else None
    t_logits = torch.as_tensor(teacher_logits).float() if teacher_logits is not None else None
    if t_logits is not None and t_logits.shape != (n, n_classes):
        raise ValueError(f"teacher_logits must have shape {(n, n_classes)}, got {tuple(t_logits.shape)}")
    if y is None and t_logits is None:
        raise ValueError("fit needs labels, teacher_logits or both")
    if hint_weight and teacher_hidden is None:
        raise ValueError("hint_weight > 0 needs teacher_hidden (the teacher's hidden activations)")
    t_hidden = torch.as_tensor(teacher_hidden).float() if teacher_hidden is not None and hint_weight else None
    if t_hidden is not None and (t_hidden.ndim != 2 or len(t_hidden) != n):
        raise ValueError(f"teacher_hidden must have {n} rows, got shape {tuple(t_hidden.shape)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        regressor = nn.Linear(model.hidden_size, t_hidden.shape[1]) if t_hidden is not None else None
        params = list(model.parameters()) + (list(regressor.parameters()) if regressor is not None else [])
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        model.train()
        losses: list[tuple[int, float]] = []
        loss = torch.tensor(float("nan"))
        t0 = time.perf_counter()
        for step in range(1, steps + 1):
            logits, h = model(x, hidden=True)
            if t_logits is None:
                loss = F.cross_entropy(logits, y)
            else:
                loss = distillation_loss(logits, t_logits, y, temperature=temperature, alpha=alpha)
            if regressor is not None:
                loss = loss + hint_weight * hint_loss(h, t_hidden, regressor)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % log_every == 0 or step == steps:
                losses.append((step, float(loss.detach())))
        model.eval()
    settings = {"n": n, "hard": y is not None and (t_logits is None or alpha < 1), "soft": t_logits is not None,
                "temperature": temperature if t_logits is not None else None, "alpha": alpha,
                "hint_weight": hint_weight, "lr": lr, "weight_decay": weight_decay, "seed": seed}
    return FitRun(steps, time.perf_counter() - t0, float(loss.detach()), losses, settings)


def accuracy(model: MLP, X, y) -> float:
    """Share of ``X`` whose arg-max prediction equals ``y``."""
    pred = model.predict(X).argmax(-1).numpy()
    y = np.asarray(y)
    if len(y) != len(pred) or len(y) == 0:
        raise ValueError(f"need as many labels as items (and at least one), got {len(y)} and {len(pred)}")
    return float((pred == y).mean())


def per_class_accuracy(model: MLP, X, y, n_classes: int | None = None) -> np.ndarray:
    """Accuracy on the items of each class (``nan`` for a class with no item)."""
    pred = model.predict(X).argmax(-1).numpy()
    y = np.asarray(y)
    k = n_classes or model.sizes[-1]
    return np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(k)])


def drop_class(X, y, cls: int, *extra):
    """``X``, ``y`` (and any ``extra`` arrays with the same rows) without the items of class ``cls``.

    Raises ``ValueError`` when ``cls`` does not occur (a typo would otherwise drop nothing).
    """
    y = np.asarray(y)
    keep = y != cls
    if keep.all():
        raise ValueError(f"class {cls} does not occur in y")
    return tuple(np.asarray(a)[keep] for a in (X, y, *extra))


def subsample(y, n: int, *, seed: int = 0, stratified: bool = True) -> np.ndarray:
    """Indices of ``n`` items of ``y``, drawn without replacement; ``stratified`` keeps the class
    shares (every class gets at least one item when ``n`` allows). Raises when ``n`` is larger than ``len(y)``."""
    y = np.asarray(y)
    if not 1 <= n <= len(y):
        raise ValueError(f"cannot draw {n} items from {len(y)}")
    rng = np.random.default_rng(seed)
    if not stratified:
        return np.sort(rng.choice(len(y), n, replace=False))
    classes = np.unique(y)
    by_class = {c: rng.permutation(np.flatnonzero(y == c)) for c in classes}
    # round-robin over classes, in a shuffled class order, until n items are taken
    order = rng.permutation(classes)
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for c in order:
            if depth < len(by_class[c]) and len(picked) < n:
                picked.append(int(by_class[c][depth]))
        depth += 1
    return np.sort(np.array(picked))
