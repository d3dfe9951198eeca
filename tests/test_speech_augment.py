"""Unit tests for helpers.speech.augment: SNRs, babble, rooms, band-pass, codecs, the telephone chain."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.speech import augment as G

SR = 16000


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding 120-200 Hz pitch under a syllable-rate envelope: energy up to about 6 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 80 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 40))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * x * env).astype(np.float32)


def band_share(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum() / spec.sum())


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    n = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(n ** 2)))


@pytest.mark.parametrize("snr", [20.0, 5.0, -3.0])
def test_mix_at_snr_is_exact_and_tiles_short_noise(snr):
    s = speechlike()
    noise = np.random.default_rng(1).normal(size=3000).astype(np.float32)  # shorter than the speech: tiled
    y = G.mix_at_snr(s, noise, snr)
    assert y.shape == s.shape and y.dtype == np.float32
    assert abs(snr_db(s, y) - snr) < 0.01


def test_mix_at_snr_rejects_silence():
    with pytest.raises(ValueError):
        G.mix_at_snr(np.zeros(100, np.float32), np.ones(100, np.float32), 10)
    with pytest.raises(ValueError):
        G.mix_at_snr(speechlike(), np.zeros(100, np.float32), 10)


def test_white_noise_snr_and_seed():
    s = speechlike()
    a, b, c = G.white_noise(s, SR, 10, seed=3), G.white_noise(s, SR, 10, seed=3), G.white_noise(s, SR, 10, seed=4)
    assert abs(snr_db(s, a) - 10) < 0.3  # the noise power is drawn, so the realised SNR wobbles a little
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert band_share(a - s, 4000, 8000) > 0.4  # white: flat up to Nyquist


def test_babble_is_a_sum_of_the_given_talkers():
    talkers = [tone(300, 0.3), tone(700, 0.5), tone(1100, 0.2)]
    b = G.babble(talkers, 8000, n_talkers=3, seed=0)
    assert b.shape == (8000,) and np.isfinite(b).all() and np.sqrt(np.mean(b ** 2)) > 0
    spec = np.abs(np.fft.rfft(b))
    f = np.fft.rfftfreq(8000, 1 / SR)
    assert band_share(b, 250, 1200) > 0.95  # only the talkers' frequencies are in it
    assert spec[np.argmin(abs(f - 2000))] < 1e-3 * spec.max()
    with pytest.raises(ValueError):
        G.babble([np.zeros(100, np.float32)], 100)


def test_room_ir_hits_the_target_rt60_and_reverb_keeps_length_and_level():
    short, long_ = G.room_ir(0.25, seed=0), G.room_ir(0.6, seed=0)
    assert np.argmax(np.abs(short)) == np.argmax(short) and short.max() == pytest.approx(1.0)
    assert len(long_) > len(short)
    assert abs(G.measured_rt60(short, SR) - 0.25) < 0.1 and abs(G.measured_rt60(long_, SR) - 0.6) < 0.15
    s = speechlike()
    y = G.reverberate(s, long_)
    assert y.shape == s.shape
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(s ** 2)), rel=1e-3)
    # a pure delay: the output is aligned on the direct path, so the signal is unchanged
    delta = np.zeros(400, np.float32)
    delta[123] = 1.0
    assert np.allclose(G.reverberate(s, delta), s, atol=1e-5)
    with pytest.raises(ValueError):
        G.room_ir(0.0)


def test_bandpass_keeps_the_telephone_band():
    x = tone(100) + tone(1000) + tone(6000)
    y = G.bandpass(x, SR, 300, 3400)
    assert band_share(y, 900, 1100) > 0.98
    with pytest.raises(ValueError):
        G.bandpass(x, SR, 300, 9000)


@pytest.mark.parametrize("codec,sr,level", [("mp3", 16000, 0.9), ("opus", 16000, 0.9), ("ulaw", 8000, None),
                                             ("gsm", 8000, None), ("vorbis", 16000, 0.5)])
def test_codec_roundtrip_keeps_length_and_measures_bitrate(codec, sr, level):
    x = speechlike() if sr == SR else speechlike(1.0)[::2].copy()
    y, kbps = G.codec_roundtrip(x, sr, codec, level)
    assert y.shape == x.shape and y.dtype == np.float32
    assert 1.0 < kbps < 300.0
    # the decoded audio still correlates with the input (a codec, not a noise generator)
    lag = np.argmax(np.correlate(y[:4000], x[:4000], mode="full")) - 3999
    a, b = (x[: len(x) - lag], y[lag:]) if lag >= 0 else (x[-lag:], y[: len(y) + lag])
    assert np.corrcoef(a, b)[0, 1] > 0.7, (codec, lag)
    if codec == "ulaw":
        assert kbps == pytest.approx(64.0, rel=0.05)  # 8 bits x 8 kHz


def test_lower_compression_level_means_more_bits():
    x = speechlike(2.0)
    assert G.codec_roundtrip(x, SR, "opus", 0.2)[1] > 2 * G.codec_roundtrip(x, SR, "opus", 0.95)[1]


def test_codec_errors_are_clear():
    x = speechlike()
    with pytest.raises(ValueError, match="unknown codec"):
        G.codec_roundtrip(x, SR, "aac")
    with pytest.raises(ValueError, match="8000"):
        G.codec_roundtrip(x, SR, "gsm")
    with pytest.raises(ValueError, match="fixed bitrate"):
        G.codec_roundtrip(x[::2].copy(), 8000, "ulaw", 0.5)
    with pytest.raises(ValueError, match="empty"):
        G.codec_roundtrip(np.zeros(0, np.float32), SR, "mp3")


@pytest.mark.parametrize("codec", [None, "ulaw", "gsm"])
def test_telephone_removes_the_upper_band(codec):
    x = speechlike()
    y = G.telephone(x, SR, codec)
    assert y.shape == x.shape
    assert band_share(x, 4000, 8000) > 0.005 and band_share(y, 4000, 8000) < 1e-4
    assert band_share(y, 300, 3400) > 0.9


def test_degrade_dispatches_and_rejects_unknown_kinds():
    x = speechlike(0.5)
    clean = G.degrade(x, SR, "clean", None)
    assert np.array_equal(clean, x) and clean is not x
    assert abs(snr_db(x, G.degrade(x, SR, "white", 5, seed=0)) - 5) < 0.3
    assert abs(snr_db(x, G.degrade(x, SR, "babble", 0, babble_noise=tone(500, 0.2))) - 0) < 0.01
    with pytest.raises(ValueError, match="babble_noise"):
        G.degrade(x, SR, "babble", 0)
    with pytest.raises(ValueError, match="unknown kind"):
        G.degrade(x, SR, "chorus", 1)
    with pytest.raises(ValueError, match="mono"):
        G.degrade(np.zeros((2, 100), np.float32), SR, "clean", None)
