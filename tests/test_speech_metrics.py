"""Unit tests for helpers.speech.speech_metrics (WER normalisation runs everywhere; DNSMOS and speaker tests need their packages)."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from helpers.speech import speech_metrics as M

needs_speechmos = pytest.mark.skipif(importlib.util.find_spec("speechmos") is None, reason="speechmos not installed")
needs_resemblyzer = pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None, reason="resemblyzer not installed")


@pytest.mark.parametrize("raw, expected", [
    ("And Mr. John Dashwood had then leisure.", "and mister john dashwood had then leisure"),
    ("He was ill-disposed, wasn't he?", "he was ill disposed was not he"),
    ("I paid $25 for twenty-five apples", "i paid $25 for 25 apples"),
    ("Um, the COLOUR is grey", "the color is gray"),
    ("It's 3.5 percent [inaudible] (laughs)", "it is 3.5% "),
    ("", ""),
])
def test_normalize_text_whisper_style(raw, expected):
    assert M.normalize_text(raw) == expected.strip()


@pytest.mark.parametrize("raw, expected", [
    ("The colour of the aeroplane", "the color of the airplane"),  # the full spelling map, not a short list
    ("the programme centre, my moustache", "the program center my mustache"),
    ("Mrs. Smith and Dr. Jones", "missus smith and doctor jones"),
    ("I'm gonna go", "i am going to go"),
    ("one hundred and twenty three", "123"),
    ("twenty five", "25"),
    ("two point five percent", "2.5%"),
    ("first and second", "1st and 2nd"),
    ("uh hmm okay", "okay"),
    ("$20 million", "$20000000"),
])
def test_whisper_normalize_is_whispers_english_normaliser(raw, expected):
    assert M.whisper_normalize(raw) == expected


def test_whisper_normaliser_needs_no_network(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    M._normalizer.cache_clear()  # build it again, offline
    try:
        # Whisper reads "'s" as "is"
        assert M.whisper_normalize("Mr. Grey's favourite colours") == "mister gray is favorite colors"
    finally:
        M._normalizer.cache_clear()


@pytest.mark.parametrize("ref, hyp", [
    ("five five", "5 5"),  # Whisper's normaliser joins spelled digits ("55") but not written ones ("5 5")
    ("one two three", "1 2 3"),  # ... and reads a lone "1" as "one"
    ("room one oh one", "room 1 0 1"),
    ("seven of clubs", "7 of clubs"),
    ("ten of clubs", "10 of clubs"),
    ("twenty five apples", "25 apples"),
])
def test_number_formatting_is_not_an_error(ref, hyp):
    assert M.normalize_text(ref) == M.normalize_text(hyp)
    assert M.utterance_wer(ref, hyp) == 0.0 and M.utterance_wer(hyp, ref) == 0.0


def test_whisper_normaliser_alone_scores_formatting_as_errors():
    assert M.whisper_normalize("five five") == "55" and M.whisper_normalize("5 5") == "5 5"
    assert M.utterance_wer("five five", "5 5", normalize=M.whisper_normalize) == 2.0  # the bug, reproduced
    assert M.wer(["five five"], ["5 5"], normalize=M.whisper_normalize).wer == 2.0
    assert M.wer(["five five"], ["5 5"]).wer == 0.0


def test_digit_runs_joined_but_words_and_wrong_digits_kept():
    assert M.normalize_text("5 5") == "55" and M.normalize_text("one of them") == "one of them"
    assert M.utterance_wer("five five", "5 6") == 1.0  # a wrong digit is still an error
    assert M.normalize_text("I have 2 cats and 3 dogs") == "i have 2 cats and 3 dogs"


def test_normalize_handles_non_strings():
    assert M.normalize_text(None) == "" and M.normalize_text(42) == ""  # type: ignore[arg-type]


def test_normalisation_removes_formatting_errors():
    ref, hyp = "he was not an ill disposed young man", "He was not an ill-disposed young man."
    assert M.utterance_wer(ref, hyp) == 0.0
    assert M.utterance_wer(ref, hyp, normalize=False) > 0.0


def test_wer_counts_substitutions_deletions_insertions():
    r = M.wer(["a b c d", "e f"], ["a x c", "e f g"])
    assert (r.substitutions, r.deletions, r.insertions, r.hits) == (1, 1, 1, 4)
    assert r.reference_words == 6 and math.isclose(r.wer, 3 / 6)
    assert r.per_utterance == [0.5, 0.5]


def test_wer_empty_references_and_hypotheses_are_counted():
    r = M.wer(["", "red green", "  "], ["anything", "", "x"])
    assert r.skipped == 2 and r.deletions == 2 and r.wer == 1.0
    assert math.isnan(r.per_utterance[0]) and r.per_utterance[1] == 1.0
    assert math.isnan(M.utterance_wer("", "hello"))
    assert math.isnan(M.wer([], []).wer)
    with pytest.raises(ValueError):
        M.wer(["a"], [])


def test_wer_symbols_only_reference():
    r = M.wer(["?!...", "hello"], ["", "hello"])
    assert r.skipped == 1 and r.wer == 0.0


def test_rtf_and_timer(monkeypatch):
    assert M.real_time_factor(1.0, 10.0) == 0.1
    assert math.isnan(M.real_time_factor(1.0, 0.0))
    clock = iter([100.0, 102.5])  # the timer reads the clock once on entry and once on exit
    monkeypatch.setattr(M.time, "perf_counter", lambda: next(clock))
    with M.RTFTimer() as t:
        t.audio_seconds = 5.0
    assert t.wall_seconds == 2.5 and t.rtf == 0.5
    assert math.isnan(M.RTFTimer().rtf)  # never entered: no time measured
    assert M.nanmean([1.0, float("nan"), 3.0]) == 2.0 and math.isnan(M.nanmean([]))


def test_speaker_similarity_matrix():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    s = M.speaker_similarity(a, np.array([[1.0, 1.0]]))
    assert s.shape == (2, 1) and np.allclose(s[:, 0], [0.7071, 0.7071], atol=1e-3)


def _speech_like(seconds: float, sr: int = 16000, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """A crude voiced signal: harmonics of f0 with syllable-rate amplitude modulation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (0.3 * x * env / np.max(np.abs(x))).astype(np.float32)


@needs_speechmos
@pytest.mark.models
def test_dnsmos_scores_and_bad_input():
    clean = _speech_like(3.0)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 0.2, clean.shape).astype(np.float32), -1, 1)
    out = M.dnsmos([clean, noisy, np.zeros(0), np.zeros(16000), _speech_like(0.1), clean * 5])
    assert len(out) == 6
    assert 1.0 <= out[0].ovrl <= 5.0 and out[0].error is None
    assert out[1].bak < out[0].bak  # white noise lowers the background score
    assert [o.error for o in out[2:5]] == ["empty", "silent", "too_short"] and math.isnan(out[2].ovrl)
    assert out[5].error is None  # out-of-range samples are rescaled, not rejected


@needs_speechmos
@pytest.mark.models
def test_dnsmos_warmup_loads_the_models_once(monkeypatch):
    from speechmos import dnsmos as sm  # speechmos keeps its loaded ONNX sessions in this module global

    monkeypatch.setattr(sm, "dnsmos", None)  # as in a fresh process
    assert M.dnsmos_warmup() > 0
    loaded = sm.dnsmos
    assert loaded is not None  # the one-off load happened in the warm-up
    out = M.dnsmos([_speech_like(5.0)])
    assert out[0].error is None and sm.dnsmos is loaded  # scoring afterwards reuses it (speed: bench_speech.py)


@needs_speechmos
@pytest.mark.models
def test_dnsmos_tuple_of_two_paths_is_two_clips(tmp_path):
    from helpers.speech.audio import save_audio

    paths = (str(save_audio(tmp_path / "a.wav", _speech_like(2.0), 16000)),
             str(save_audio(tmp_path / "b.wav", _speech_like(2.0, seed=3), 16000)))
    out = M.dnsmos(paths)  # np.isscalar("b.wav") is True: this once came back as one "unreadable" clip
    assert len(out) == 2 and all(o.error is None and 1.0 <= o.ovrl <= 5.0 for o in out), out
    one = M.dnsmos((_speech_like(2.0), 16000))
    assert len(one) == 1 and abs(one[0].ovrl - out[0].ovrl) < 0.05


@needs_resemblyzer
@pytest.mark.models
def test_speaker_encoder_counts_silence():
    enc = M.SpeakerEncoder()
    e = enc.embed([_speech_like(2.0, f0=110), _speech_like(2.0, f0=110, seed=1), np.zeros(16000)])
    assert e.shape == (3, 256)
    assert enc.last_counts["ok"] == 2 and enc.last_counts["no_speech"] == 1
    assert np.isnan(e[2]).all()
    assert M.speaker_similarity(e[:1], e[1:2])[0, 0] > 0.8


def test_wer_diff_is_the_corpus_difference_with_a_paired_interval():
    from helpers.speech.speech_metrics import wer, wer_diff

    refs = ["the cat sat on the mat", "hello world", "one two three four", "good morning to you", ""]
    a = ["the cat sat on a mat", "hello word", "one two three four", "good morning", "x"]
    b = ["the cat sat on the mat", "hello world", "one two three for", "good morning to you", "y"]
    d, lo, hi = wer_diff(refs, a, b, n_boot=500, seed=1)
    assert math.isclose(d, wer(refs, a).wer - wer(refs, b).wer)  # the empty reference is left out of both
    assert lo <= d <= hi and lo < hi
    # identical systems: a zero difference with a zero-width interval; a system against a perfect one: all > 0
    assert wer_diff(refs, a, a, n_boot=100) == (0.0, 0.0, 0.0)
    d2, lo2, _ = wer_diff(refs[:4], ["x"] * 4, refs[:4], n_boot=200)
    assert d2 == 1.0 and lo2 == 1.0
    with pytest.raises(ValueError):
        wer_diff(refs, a, b[:2])
