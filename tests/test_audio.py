"""Unit tests for helpers.speech.audio: I/O round trips, resampling, checks and chunking (no models needed)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.core.io import wav_bytes
from helpers.speech import audio as A


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_save_load_round_trip(tmp_path, suffix):
    x = tone(0.5, 22050)
    path = A.save_audio(tmp_path / f"sub/x{suffix}", x, 22050)
    y, sr = A.load_audio(path, sr=None)
    assert sr == 22050 and y.dtype == np.float32 and len(y) == len(x)
    assert np.max(np.abs(y - x)) < 1e-3  # 16-bit quantisation only
    z, sr16 = A.load_audio(path)  # default: resampled to 16 kHz
    assert sr16 == 16000 and abs(len(z) - 8000) <= 1


def test_save_clips_out_of_range_and_rejects_unknown_format(tmp_path):
    path = A.save_audio(tmp_path / "loud.wav", np.array([2.0, -3.0, np.nan, 0.5], np.float32), 16000)
    y, _ = A.load_audio(path, sr=None)
    assert y.max() <= 1.0 and y.min() >= -1.0 and y[2] == 0.0  # clipped, nan written as zero (no wrap-around)
    with pytest.raises(ValueError):
        A.save_audio(tmp_path / "x.mp3", tone(), 16000)


def test_resample_keeps_frequency_and_length():
    x = tone(1.0, 22050, freq=300)
    y = A.resample(x, 22050, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 300) < 2
    assert A.resample(x, 16000, 16000) is not None and len(A.resample(np.zeros(0), 8000, 16000)) == 0
    with pytest.raises(ValueError):
        A.resample(x, 0, 16000)


def test_to_mono_accepts_both_layouts():
    st = np.stack([np.ones(100), -np.ones(100) * 0.5], axis=1)  # (n, ch) as soundfile gives
    assert A.to_mono(st).shape == (100,) and np.allclose(A.to_mono(st), 0.25)
    assert A.to_mono(st.T).shape == (100,)  # (ch, n) as torch gives
    with pytest.raises(ValueError):
        A.to_mono(np.zeros((2, 2, 2)))


def test_peak_normalize_and_noise():
    x = tone(amp=0.1)
    assert np.isclose(np.max(np.abs(A.peak_normalize(x, 0.9))), 0.9)
    assert np.all(A.peak_normalize(np.zeros(10)) == 0)
    noisy = A.add_noise(x, snr_db=10, seed=0)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((noisy - x) ** 2))
    assert 9 < snr < 11
    assert np.array_equal(noisy, A.add_noise(x, snr_db=10, seed=0))


def test_check_audio_flags_each_problem():
    sr = 16000
    assert A.check_audio(tone(), sr).ok
    assert A.check_audio(np.zeros(0), sr).issues == ["empty"]
    assert "silent" in A.check_audio(np.zeros(sr), sr).issues
    assert "silent" in A.check_audio(tone(amp=1e-5), sr).issues
    clipped = np.clip(tone(amp=3.0), -1, 1)
    assert "clipped" in A.check_audio(clipped, sr).issues
    assert "too_short" in A.check_audio(tone(0.02), sr).issues
    assert "wrong_rate" in A.check_audio(tone(), 8000, expected_sr=16000).issues
    bad = tone()
    bad[10] = np.nan
    assert "non_finite" in A.check_audio(bad, sr).issues


def test_check_batch_counts_and_survives_unreadable(tmp_path):
    good = A.save_audio(tmp_path / "g.wav", tone(), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    checks, counts = A.check_batch([good, junk, np.zeros(16000), (tone(), 8000)], expected_sr=16000)
    assert len(checks) == 4 and counts["total"] == 4
    assert counts["ok"] == 1 and counts["unreadable"] == 1 and counts["silent"] == 1 and counts["wrong_rate"] == 1
    assert checks[1].error


def test_as_array_accepts_every_input_kind(tmp_path):
    x = tone(0.5, 8000)
    p = A.save_audio(tmp_path / "a.wav", x, 8000)
    for item in [p, str(p), (x, 8000), {"array": x, "sampling_rate": 8000},
                 {"bytes": wav_bytes(x, 8000), "path": None}, {"path": str(p)}]:
        a, sr = A.as_array(item)
        assert sr == 16000 and abs(len(a) - 8000) <= 1
    a, sr = A.as_array(x, sr=8000, target_sr=None)
    assert sr == 8000 and len(a) == len(x)
    with pytest.raises(ValueError):
        A.as_array({"nothing": 1})


def test_chunk_bounds_cover_audio_and_cut_in_silence():
    sr = 16000
    speech = tone(8.0, sr)
    gap = np.zeros(int(0.4 * sr), np.float32)
    long = np.concatenate([speech, gap] * 9)  # about 75 s with pauses every 8.4 s
    bounds = A.chunk_bounds(long, sr, max_seconds=30, search_seconds=6)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(long)
    assert all(e0 == s1 for (_, e0), (s1, _) in zip(bounds, bounds[1:]))
    assert all(0 < e - s <= 30 * sr for s, e in bounds)
    for _, e in bounds[:-1]:  # every cut lands in a pause
        assert np.max(np.abs(long[max(0, e - 80): e + 80])) < 1e-6
    assert A.chunk_bounds(speech, sr) == [(0, len(speech))]


def test_concat_with_pauses():
    out = A.concat_with_pauses([tone(1.0), tone(1.0)], 16000, pause_seconds=0.5)
    assert len(out) == 16000 * 2 + 8000
    assert len(A.concat_with_pauses([], 16000)) == 0


def test_array_sr_pair_versus_tuple_of_clips(tmp_path):
    x = tone(0.2, 8000)
    assert A.is_array_sr_pair((x, 8000)) and A.is_array_sr_pair((x, np.int64(8000)))
    assert not A.is_array_sr_pair(("a.wav", "b.wav"))  # np.isscalar("b.wav") is True: the old test
    assert not A.is_array_sr_pair((tmp_path / "a.wav", 16000))  # a path and a number: not audio
    assert not A.is_array_sr_pair((x, True)) and not A.is_array_sr_pair([x, 8000]) and not A.is_array_sr_pair(x)
    assert len(A.as_list_of_clips(("a.wav", "b.wav"))) == 2
    assert len(A.as_list_of_clips((x, 8000))) == 1 and A.as_list_of_clips((x, 8000))[0][1] == 8000
    assert len(A.as_list_of_clips([(x, 8000), (x, 8000)])) == 2 and len(A.as_list_of_clips(x)) == 1
    assert len(A.as_list_of_clips("a.wav")) == 1
    p1, p2 = A.save_audio(tmp_path / "a.wav", x, 8000), A.save_audio(tmp_path / "b.wav", x, 8000)
    a, sr = A.as_array((x, 8000))
    assert sr == A.TARGET_SR and abs(len(a) - 3200) <= 1  # 0.2 s at 8 kHz, resampled to 16 kHz
    checks, counts = A.check_batch((str(p1), str(p2)))
    assert counts["total"] == 2 and counts["unreadable"] == 0
