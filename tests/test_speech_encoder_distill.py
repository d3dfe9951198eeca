"""Encoder distillation: the Whisper teacher's short-context forward, the conv student, the masked cosine loss,
the training loop, pooling and the leave-one-group-out probe."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.speech.encoder_distill import (ConvStudent, WhisperTeacher, count_parameters, distill_encoder,
                                            frame_cosine, masked_cosine_loss, pooled, probe_accuracy,
                                            seconds_per_audio_second)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def teacher():
    return WhisperTeacher.load("whisper-tiny.en")


def tone(seconds: float, freq: float = 440.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_teacher_matches_the_full_window_encoder(teacher):
    rng = np.random.default_rng(0)
    audio = np.zeros(30 * 16000, np.float32)
    audio[:48000] = rng.normal(0, 0.1, 48000)
    mel = teacher.log_mel([audio])[0]
    assert mel.shape == (80, 3000)
    with torch.no_grad():
        ref = teacher.encoder(mel[None]).last_hidden_state[0]
    ours = teacher.encode([mel])[0]
    assert ours.shape == (1500, teacher.dim) == (1500, 384)
    assert torch.allclose(ours, ref, atol=1e-4)
    assert teacher.parameters == count_parameters(teacher.encoder) > 8_000_000


def test_teacher_short_clips_and_bad_input(teacher):
    mels = teacher.log_mel([tone(1.0), tone(2.05, 220)])
    assert [m.shape for m in mels] == [(80, 100), (80, 204)]
    feats = teacher.encode(mels)
    assert [f.shape for f in feats] == [(50, 384), (102, 384)]
    assert torch.isfinite(feats[1]).all()
    with pytest.raises(ValueError, match="16000"):
        teacher.log_mel([tone(1.0)], sample_rate=8000)
    with pytest.raises(ValueError, match="too short"):
        teacher.log_mel([np.zeros(100, np.float32)])
    with pytest.raises(ValueError, match="30 s"):
        teacher.log_mel([np.zeros(31 * 16000, np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        teacher.log_mel([np.full(16000, np.nan, np.float32)])
    with pytest.raises(ValueError, match="log-mel"):
        teacher.encode([torch.zeros(40, 100)])


def test_student_shapes_seed_and_batched_encode_equals_one_by_one():
    s = ConvStudent(channels=32, blocks=2, out_dim=48, seed=0)
    assert s(torch.zeros(2, 80, 101)).shape == (2, 51, 48)
    assert torch.equal(ConvStudent(channels=32, blocks=2, out_dim=48, seed=0).out.weight, s.out.weight)
    assert count_parameters(ConvStudent()) < count_parameters(ConvStudent(channels=256))
    g = torch.Generator().manual_seed(0)
    mels = [torch.randn(80, n, generator=g) for n in (60, 100, 37)]
    batched = s.encode(mels, batch_size=3)
    single = [s.encode([m])[0] for m in mels]
    assert [b.shape[0] for b in batched] == [30, 50, 19]
    # zero padding reaches a short clip's last frames only through the receptive field: compare the frames
    # far enough from the end
    for b, o in zip(batched, single):
        assert torch.allclose(b[: -8], o[: -8], atol=1e-5)
    with pytest.raises(ValueError):
        ConvStudent(kernel=4)


def test_masked_cosine_loss():
    g = torch.Generator().manual_seed(0)
    p, t = torch.randn(2, 5, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    assert float(masked_cosine_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(masked_cosine_loss(-t, t)) == pytest.approx(2.0, abs=1e-6)
    assert float(masked_cosine_loss(3 * t, t)) == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    expected = (1 - F.cosine_similarity(p, t, dim=-1))[mask.bool()].mean()
    assert torch.allclose(masked_cosine_loss(p, t, mask), expected)
    # frames outside the mask do not count, whatever they hold
    p2 = p.clone()
    p2[0, 4] = 100.0
    assert torch.allclose(masked_cosine_loss(p2, t, mask), expected)
    with pytest.raises(ValueError):
        masked_cosine_loss(p, t[:, :4])
    with pytest.raises(ValueError):
        masked_cosine_loss(p, t, torch.zeros(2, 5))


def test_distill_encoder_learns_a_learnable_teacher():
    """Targets made by a fixed random conv net from the same inputs: the student must get close to them."""
    g = torch.Generator().manual_seed(0)
    mels = [torch.randn(80, int(n), generator=g) for n in torch.randint(40, 120, (24,), generator=g)]
    target_net = ConvStudent(channels=16, blocks=1, out_dim=24, seed=123)
    targets = target_net.encode(mels)
    student = ConvStudent(channels=32, blocks=1, out_dim=24, seed=0)
    before = frame_cosine(student.encode(mels), targets).mean()
    run = distill_encoder(student, mels, targets, epochs=25, batch_size=8, lr=3e-3, seed=0)
    after = frame_cosine(student.encode(mels), targets).mean()
    assert run.steps == 25 * 3 and len(run.epoch_losses) == 25
    assert run.epoch_losses[-1] < 0.5 * run.epoch_losses[0]
    assert after > 0.8 and before < 0.3, (before, after)
    with pytest.raises(ValueError, match="targets"):
        distill_encoder(student, mels, targets[:-1])
    with pytest.raises(ValueError, match="does not match"):
        distill_encoder(student, mels, [t[:-1] for t in targets])


def test_frame_cosine_pooled_and_timing():
    a = [torch.ones(4, 3), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])]
    b = [torch.ones(4, 3), torch.tensor([[1.0, 0, 0], [1.0, 0, 0]])]
    assert frame_cosine(a, b).tolist() == pytest.approx([1.0, 0.5])
    X = pooled(a, with_std=True)
    assert X.shape == (2, 6) and X[1].tolist() == pytest.approx([0.5, 0.5, 0, 0.5, 0.5, 0])
    assert np.allclose(pooled(a), [[1, 1, 1], [0.5, 0.5, 0]])
    with pytest.raises(ValueError):
        frame_cosine(a, b[:1])
    s = ConvStudent(channels=8, blocks=0, out_dim=4)
    assert seconds_per_audio_second(s.encode, [torch.zeros(80, 100)]) > 0


def test_probe_accuracy_leaves_each_group_out():
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1, 2], 20)
    groups = np.repeat(np.arange(6), 10)
    informative = np.eye(3)[labels] * 3 + rng.normal(0, 0.3, (60, 3))
    noise = rng.normal(0, 1, (60, 3))
    good = probe_accuracy(informative, labels, groups)
    bad = probe_accuracy(noise, labels, groups)
    assert good.shape == (60,) and set(np.unique(good)) <= {0.0, 1.0}
    assert good.mean() > 0.95 and bad.mean() < 0.6
    # grouped folds: still every item predicted by a probe that never saw its group
    two_fold = probe_accuracy(informative, labels, groups, folds=2)
    assert two_fold.mean() > 0.95
    leaky = (groups == 0).astype(float)[:, None]  # a feature that only identifies group 0
    assert probe_accuracy(leaky, labels, groups, folds=3).mean() < 0.6
    with pytest.raises(ValueError, match="folds"):
        probe_accuracy(informative, labels, groups, folds=1)
    with pytest.raises(ValueError, match="two groups"):
        probe_accuracy(informative, labels, np.zeros(60))
    with pytest.raises(ValueError, match="same length"):
        probe_accuracy(informative[:10], labels, groups)
