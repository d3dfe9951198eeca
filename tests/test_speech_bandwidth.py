"""Unit tests for helpers.speech.bandwidth: narrowband, zero filling, spectral folding, LSD, the small model."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.speech import bandwidth as B

SR = 16000


def speechlike(seconds: float = 1.0, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    """Harmonics with a gentle spectral tilt under a syllable envelope, plus a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    f = f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k ** 0.8 for k in range(1, int(7800 / f0)))
    env = 0.3 + 0.7 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.05 * x * env + 0.001 * rng.normal(size=t.size)).astype(np.float32)


def high_share(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spec[f > 4100].sum() / spec.sum())


def test_narrowband_and_zero_fill_lose_the_upper_band():
    x = speechlike()
    nb = B.narrowband(x)
    assert len(nb) == len(x) // 2
    zf = B.zero_fill(nb)
    assert len(zf) == len(x) and high_share(x) > 0.03 and high_share(zf) < 1e-3  # 200 times less (the resampler rolls off near 4 kHz)
    with pytest.raises(ValueError):
        B.zero_fill(nb, 8000, 12345)


def test_folding_mirrors_a_tone_around_4k():
    t = np.arange(8000) / 8000
    nb = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    img = B.folded_band(nb)
    spec = np.abs(np.fft.rfft(img))
    f = np.fft.rfftfreq(img.size, 1 / SR)
    assert abs(f[np.argmax(spec)] - 7000) < 5  # 1 kHz mirrored to 8 - 1 = 7 kHz
    both = B.spectral_fold(nb, gain=0.5)
    assert len(both) == 16000 and 0.05 < high_share(both) < 0.5


def test_lsd_zero_for_identical_large_for_zero_fill_and_checks_lengths():
    x = speechlike()
    zf = B.zero_fill(B.narrowband(x))
    assert B.log_spectral_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert B.log_spectral_distance(x, zf) > 20.0
    assert B.log_spectral_distance(x, zf, band=(0, 3500)) < 3.0  # the lower band survives
    with pytest.raises(ValueError):
        B.log_spectral_distance(x, x[:8000])
    with pytest.raises(ValueError):
        B.log_spectral_distance(np.zeros(4000, np.float32), x[:4000])


def test_fit_fold_gain_picks_the_grid_minimum():
    train = [speechlike(1.0, f0) for f0 in (110, 180)]
    g = B.fit_fold_gain(train, gains=(0.0001, 0.05, 0.2, 3.0))
    assert g in (0.05, 0.2)  # no image (almost zero-filling) and a huge one are both worse
    with pytest.raises(ValueError):
        B.fit_fold_gain([])


def test_extender_learns_the_upper_band_of_held_out_pitches():
    train = [speechlike(1.0, f0, seed=i) for i, f0 in enumerate((100, 120, 140, 170, 200, 230))]
    test = speechlike(1.0, 155, seed=9)
    model = B.BandwidthExtender(hidden=64, seed=0).fit(train, epochs=40)
    assert model.n_params > 0 and model.history[-1] < model.history[0]
    nb = B.narrowband(test)
    out = model.extend(nb)
    assert out.shape == test.shape and np.isfinite(out).all()
    lsd_model = B.log_spectral_distance(test, out)
    lsd_zero = B.log_spectral_distance(test, B.zero_fill(nb))
    assert lsd_model < 0.5 * lsd_zero, (lsd_model, lsd_zero)
    assert B.log_spectral_distance(test, out, band=(0, 3500)) < 3.0  # the lower band is left as it was
    with pytest.raises(RuntimeError):
        B.BandwidthExtender().extend(nb)
