"""Representation distillation for speech: a small convolutional student that learns to reproduce a Whisper encoder.

Moshi's audio codec Mimi ([Défossez et al., 2024](https://arxiv.org/abs/2410.00037)) puts
"semantic" information into its first codebook by distilling WavLM: a cosine-distance loss pulls a
projection of Mimi's latent towards WavLM's features of the same audio. No WavLM weights install
offline, so here the bundled Whisper encoders are the teacher, and the student is a few 1-D
convolutions over the same log-mel input, trained on audio alone (no labels) to reproduce the
teacher's frame features:

>>> teacher = WhisperTeacher.load("whisper-tiny.en")        # 8.2M-parameter encoder, 384-d frames
>>> mels = teacher.log_mel(clips)                            # one (80, frames) tensor per clip
>>> targets = teacher.encode(mels)                           # one (frames/2, 384) tensor per clip
>>> student = ConvStudent(out_dim=teacher.dim, seed=0)       # about 0.5M parameters
>>> run = distill_encoder(student, mels, targets, epochs=20)
>>> frame_cosine(student.encode(mels), targets)              # how close the student got
>>> correct = probe_accuracy(pooled(student.encode(word_mels)), words, groups=voices)

Whisper pads every input to a 30 s window; the encoder here runs on the clip's own length
instead (the first ``frames/2`` position embeddings, the trick whisper.cpp calls ``audio_ctx``),
which is 10 to 15 times cheaper for 2 to 3 s clips. On a full 30 s window :meth:`WhisperTeacher.encode`
gives exactly what ``WhisperEncoder.forward`` gives (``tests/test_speech_encoder_distill.py``);
on shorter inputs the features are Whisper's response to a shorter context, not a slice of the
padded-window features.

The student, the masked cosine loss and the training loop are written out in torch, because they
are what the chapter teaches and they fit on a screen; the linear probe is scikit-learn's
:class:`~sklearn.linear_model.LogisticRegression` with leave-one-group-out splits
(:class:`~sklearn.model_selection.LeaveOneGroupOut`), so a probe is always tested on voices it never saw.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WhisperTeacher", "ConvStudent", "masked_cosine_loss", "EncoderDistillRun", "distill_encoder",
           "frame_cosine", "pooled", "probe_accuracy", "seconds_per_audio_second", "count_parameters"]

SAMPLE_RATE = 16000
HOP = 160  # Whisper's log-mel hop: 100 frames per second


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return int(sum(p.numel() for p in model.parameters()))


class WhisperTeacher:
    """A Whisper encoder as a frozen feature teacher, with its log-mel front end.

    Build it with :meth:`load` (any name :meth:`helpers.speech.asr.ASR.load` takes: the bundled
    ``"whisper-tiny.en"`` and ``"whisper-base"``, a hub id or a folder). Attributes: ``encoder``
    (the transformers ``WhisperEncoder``), ``feature_extractor``, ``dim`` (feature size), ``name``.
    """

    def __init__(self, encoder: nn.Module, feature_extractor: Any, name: str = "whisper"):
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.feature_extractor = feature_extractor
        self.name = name
        self.dim = int(encoder.config.d_model)
        self.n_mels = int(encoder.config.num_mel_bins)
        self.max_frames = int(encoder.config.max_source_positions)  # encoder frames (50 per second)

    @classmethod
    def load(cls, name: str = "whisper-tiny.en", verbose: bool = False) -> "WhisperTeacher":
        """Load the encoder half of a Whisper model (on CPU, float32)."""
        from helpers.speech.asr import ASR

        asr = ASR.load(name, backend="transformers", device="cpu", verbose=verbose)
        return cls(asr.model.model.encoder, asr.processor.feature_extractor, name)

    @property
    def parameters(self) -> int:
        return count_parameters(self.encoder)

    def log_mel(self, audios: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> list[torch.Tensor]:
        """Whisper's log-mel spectrogram of each clip at its own length: ``(n_mels, frames)``, 100 frames/s.

        The frame count is rounded down to an even number (the encoder halves it). Raises
        ``ValueError`` for a rate other than 16 kHz, an empty, silent-length or non-finite clip,
        or one longer than 30 s.
        """
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"Whisper needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz: resample first")
        out = []
        for i, a in enumerate(audios):
            a = np.asarray(a, dtype=np.float32)
            if a.ndim != 1:
                raise ValueError(f"clip {i}: expected mono 1-D audio, got shape {a.shape}")
            if a.size < 2 * HOP * 2:
                raise ValueError(f"clip {i}: {a.size} samples is too short (need at least {4 * HOP})")
            if not np.isfinite(a).all():
                raise ValueError(f"clip {i}: audio contains NaN or infinite values")
            if a.size > 2 * self.max_frames * HOP:
                raise ValueError(f"clip {i}: {a.size / SAMPLE_RATE:.1f} s is longer than Whisper's 30 s window")
            mel = self.feature_extractor([a], sampling_rate=SAMPLE_RATE, padding="longest",
                                         return_tensors="pt").input_features[0]
            frames = min(mel.shape[-1], a.size // HOP) // 2 * 2
            out.append(mel[:, :frames].float())
        return out

    @torch.no_grad()
    def encode(self, mels: Sequence[torch.Tensor], progress: bool = False) -> list[torch.Tensor]:
        """The encoder's last hidden state for each log-mel clip, one clip at a time: ``(frames/2, dim)``.

        One at a time, because Whisper's encoder has no padding mask: padding a batch to its
        longest clip would change the features of the shorter ones.
        """
        enc = self.encoder
        out = []
        it = mels
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(mels, desc=f"{self.name} encoder")
        for mel in it:
            if mel.ndim != 2 or mel.shape[0] != self.n_mels:
                raise ValueError(f"expected ({self.n_mels}, frames) log-mel, got {tuple(mel.shape)}")
            x = F.gelu(enc.conv1(mel[None]))
            x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
            if x.shape[1] > self.max_frames:
                raise ValueError(f"{x.shape[1]} encoder frames exceed the {self.max_frames} positions")
            h = x + enc.embed_positions.weight[: x.shape[1]]
            for layer in enc.layers:
                h = layer(h, None)
                h = h[0] if isinstance(h, tuple) else h
            out.append(enc.layer_norm(h)[0])
        return out


class ConvStudent(nn.Module):
    """A small 1-D convolutional encoder from log-mel frames to teacher-sized frame features.

    ``conv(n_mels -> channels, k=3)``, ``conv(stride 2)`` (100 -> 50 frames per second, Whisper's
    rate), ``blocks`` residual dilated convolutions (dilation 1, 2, 4, ...: the receptive field
    grows to about 0.6 s), each after a per-frame LayerNorm, and a 1x1 projection to ``out_dim``. With the defaults
    (128 channels, 4 blocks, 384 outputs) it has about 0.47M parameters, a seventeenth of the
    tiny.en encoder. ``seed`` fixes the initial weights; an untrained one is the random-init baseline.
    """

    def __init__(self, n_mels: int = 80, channels: int = 128, blocks: int = 4, out_dim: int = 384,
                 kernel: int = 5, seed: int = 0):
        super().__init__()
        if min(n_mels, channels, out_dim) < 1 or blocks < 0 or kernel < 1 or kernel % 2 == 0:
            raise ValueError("n_mels, channels and out_dim must be >= 1, blocks >= 0, kernel odd")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.inp = nn.Conv1d(n_mels, channels, 3, padding=1)
            self.down = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
            self.blocks = nn.ModuleList(
                nn.Conv1d(channels, channels, kernel, padding=(kernel // 2) * 2 ** i, dilation=2 ** i)
                for i in range(blocks))
            self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(blocks))
            self.out = nn.Conv1d(channels, out_dim, 1)
        self.n_mels, self.out_dim = n_mels, out_dim

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, n_mels, frames)`` -> ``(batch, ceil(frames / 2), out_dim)``."""
        x = F.gelu(self.inp(mel))
        x = F.gelu(self.down(x))
        for conv, norm in zip(self.blocks, self.norms):
            # LayerNorm over the channels of each frame: nothing mixes frames but the convolutions,
            # so zero padding after a clip only reaches its last frames through the receptive field
            x = x + F.gelu(conv(norm(x.transpose(1, 2)).transpose(1, 2)))
        return self.out(x).transpose(1, 2)

    @torch.no_grad()
    def encode(self, mels: Sequence[torch.Tensor], batch_size: int = 16) -> list[torch.Tensor]:
        """Features for each log-mel clip, unpadded: ``(frames/2, out_dim)`` each (batched, zero-padded;
        the frames of a clip depend only on its own input within the receptive field)."""
        was = self.training
        self.eval()
        out: list[torch.Tensor] = []
        try:
            for i in range(0, len(mels), batch_size):
                chunk = list(mels[i:i + batch_size])
                x, lengths = _pad(chunk)
                y = self(x)
                out += [y[j, : (n + 1) // 2] for j, n in enumerate(lengths)]
        finally:
            self.train(was)
        return out


def _pad(mels: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    lengths = [int(m.shape[-1]) for m in mels]
    x = torch.zeros(len(mels), mels[0].shape[0], max(lengths))
    for j, m in enumerate(mels):
        x[j, :, : m.shape[-1]] = m
    return x, lengths


def masked_cosine_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over real frames of ``1 - cos(pred_t, target_t)``; ``mask`` (batch, frames) marks real frames.

    This is the loss Mimi used to distil WavLM (cosine distance, frame by frame). It ignores each
    frame's length, so the student learns the direction of the teacher's features, not their scale.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    dist = 1 - F.cosine_similarity(pred, target, dim=-1, eps=1e-8)
    if mask is None:
        return dist.mean()
    mask = mask.to(dist.dtype)
    if mask.shape != dist.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have shape {tuple(dist.shape)}")
    if mask.sum() == 0:
        raise ValueError("the mask marks no frame as real")
    return (dist * mask).sum() / mask.sum()


@dataclass
class EncoderDistillRun:
    """What :func:`distill_encoder` did: epochs, optimizer steps, seconds, the mean loss of every epoch."""

    epochs: int
    steps: int
    seconds: float
    epoch_losses: list[float] = field(default_factory=list)
    frames: int = 0

    @property
    def final_loss(self) -> float:
        return self.epoch_losses[-1] if self.epoch_losses else float("nan")


def _check_pairs(mels: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], out_dim: int) -> None:
    if len(mels) == 0:
        raise ValueError("distill_encoder needs at least one clip")
    if len(mels) != len(targets):
        raise ValueError(f"{len(mels)} log-mel clips but {len(targets)} teacher targets")
    for i, (m, t) in enumerate(zip(mels, targets)):
        if t.ndim != 2 or t.shape[0] != (m.shape[-1] + 1) // 2 or t.shape[1] != out_dim:
            raise ValueError(f"clip {i}: target shape {tuple(t.shape)} does not match "
                             f"({(m.shape[-1] + 1) // 2}, {out_dim}) for a log-mel of {m.shape[-1]} frames")


def distill_encoder(student: ConvStudent, mels: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], *,
                    epochs: int = 20, batch_size: int = 16, lr: float = 2e-3, weight_decay: float = 1e-4,
                    seed: int = 0, progress: bool = False) -> EncoderDistillRun:
    """Train ``student`` in place so that ``student(mel)`` matches the teacher's frames (masked cosine loss).

    AdamW, a cosine learning-rate decay over all steps, gradient clipping at 1, clips shuffled
    every epoch (seeded) and sorted into batches of similar length so little padding is wasted.
    Raises ``ValueError`` when the lists differ in length or a target's shape does not match its clip.
    """
    _check_pairs(mels, targets, student.out_dim)
    rng = np.random.default_rng(seed)
    n = len(mels)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        student.train()
        losses, steps, t0 = [], 0, time.perf_counter()
        it = range(epochs)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="distil")
        for _ in it:
            order = rng.permutation(n)
            # sort each window of 4 batches by length: batches of similar lengths, still shuffled
            win = 4 * batch_size
            order = np.concatenate([sorted(order[i:i + win], key=lambda j: mels[j].shape[-1])
                                    for i in range(0, n, win)])
            batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
            total_loss, total_frames = 0.0, 0
            for b in rng.permutation(len(batches)):
                idx = batches[b]
                x, lengths = _pad([mels[j] for j in idx])
                pred = student(x)
                tgt = torch.zeros_like(pred)
                mask = torch.zeros(pred.shape[:2])
                for k, j in enumerate(idx):
                    tgt[k, : len(targets[j])] = targets[j]
                    mask[k, : len(targets[j])] = 1
                loss = masked_cosine_loss(pred, tgt, mask)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                opt.step()
                sched.step()
                steps += 1
                total_loss += float(loss.detach()) * float(mask.sum())
                total_frames += int(mask.sum())
            losses.append(total_loss / total_frames)
        student.eval()
    return EncoderDistillRun(epochs, steps, time.perf_counter() - t0, losses, total_frames)


def frame_cosine(pred: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> np.ndarray:
    """Mean frame-by-frame cosine similarity of each clip's features with the teacher's (one number per clip)."""
    if len(pred) != len(target):
        raise ValueError(f"{len(pred)} predictions but {len(target)} targets")
    out = []
    for p, t in zip(pred, target):
        if p.shape != t.shape:
            raise ValueError(f"shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}")
        out.append(float(F.cosine_similarity(p, t, dim=-1).mean()))
    return np.array(out)


def pooled(features: Sequence[torch.Tensor], with_std: bool = False) -> np.ndarray:
    """One vector per clip: the mean of its frames (``with_std``: the per-dimension standard deviation
    appended). Mean pooling is the usual way to probe frame features; adding the standard deviation
    gives even random features a lot of usable statistics, which blurs a comparison."""
    if len(features) == 0:
        raise ValueError("no clips to pool")
    if with_std:
        return np.stack([torch.cat([f.mean(0), f.std(0, unbiased=False)]).numpy() for f in features])
    return np.stack([f.mean(0).numpy() for f in features])


def probe_accuracy(X: np.ndarray, labels: Sequence[Any], groups: Sequence[Any], *, folds: int | None = None,
                   C: float = 1.0, max_iter: int = 2000) -> np.ndarray:
    """Linear probe tested on unseen groups: for each group (a voice), a logistic regression trained
    on other groups predicts this group's items. Returns one 0/1 per item (1 = predicted right).

    ``folds=None`` leaves one group out at a time (:class:`~sklearn.model_selection.LeaveOneGroupOut`);
    an integer splits the groups into that many folds instead (:class:`~sklearn.model_selection.GroupKFold`,
    fewer fits, each probe trained on fewer voices). Features are standardised inside each split
    (scikit-learn pipeline). Needs at least two groups; raises ``ValueError`` otherwise or when lengths differ.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    y, g = np.asarray(labels), np.asarray(groups)
    if not (len(X) == len(y) == len(g)):
        raise ValueError(f"X, labels and groups must have the same length, got {len(X)}, {len(y)}, {len(g)}")
    if len(np.unique(g)) < 2:
        raise ValueError("a leave-one-group-out probe needs at least two groups")
    n_groups = len(np.unique(g))
    if folds is not None and not 2 <= folds:
        raise ValueError(f"folds must be at least 2, got {folds}")
    splitter = LeaveOneGroupOut() if folds is None or folds >= n_groups else GroupKFold(n_splits=folds)
    correct = np.zeros(len(y), dtype=float)
    for tr, te in splitter.split(X, y, g):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        clf.fit(X[tr], y[tr])
        correct[te] = (clf.predict(X[te]) == y[te]).astype(float)
    return correct


def seconds_per_audio_second(fn: Callable[[Sequence[torch.Tensor]], Any], mels: Sequence[torch.Tensor],
                             repeats: int = 1) -> float:
    """Wall seconds ``fn(mels)`` takes per second of audio (100 log-mel frames = 1 s); best of ``repeats``."""
    audio_s = sum(m.shape[-1] for m in mels) / (SAMPLE_RATE / HOP)
    if audio_s <= 0:
        raise ValueError("no audio to time")
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        with torch.no_grad():
            fn(mels)
        best = min(best, time.perf_counter() - t0)
    return best / audio_s
