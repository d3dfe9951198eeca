"""helpers.core.io: one way to save a dataset, its card, and audio that a learner can load."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from helpers.core.io import load_audio, load_dataset_dir, save_dataset, size_category


def _front_matter(path):
    text = path.read_text()
    assert text.startswith("---\n"), text[:80]
    return yaml.safe_load(text.split("---\n")[1]), text


def test_rows_and_card_round_trip(tmp_path):
    rows = [{"prompt": f"p{i}", "score": float(i)} for i in range(5)]
    ds = save_dataset(rows, tmp_path / "d", title="Demo set", summary="Five rows.", notebook="99_demo",
                      smoke=True, models={"generator": "smollm2-135m"},
                      sources={"ShareGPT": "real prompts, no stated licence"},
                      filters={"too short": ("replies under 3 words", 4), "dedup": {"what": "exact copies", "removed": 2}},
                      counts={"generated": 11}, columns={"prompt": "the request"},
                      sections={"Limitations": "Tiny."}, license_note="Teaching only.", date="2026-12-01")
    back = load_dataset_dir(tmp_path / "d")
    assert back.to_list() == rows == ds.to_list()
    meta, text = _front_matter(tmp_path / "d" / "README.md")
    assert meta["license"] == "apache-2.0" and meta["language"] == ["en"]
    assert meta["run_mode"] == "smoke" and meta["notebook"] == "99_demo" and meta["created"] == "2026-12-01"
    assert meta["models"] == {"generator": "smollm2-135m"}
    assert meta["filters"] == {"too short": 4, "dedup": 2}
    assert meta["source_datasets"] == ["ShareGPT"] and meta["size_categories"] == ["n<1K"]
    assert "# Demo set" in text and "| too short | 4 | replies under 3 words |" in text
    assert "| rows | 5 |" in text and "| generated | 11 |" in text and "## Limitations" in text
    assert "`prompt` | the request" in text and "Teaching only." in text


def test_full_mode_and_columns_dict(tmp_path):
    save_dataset({"a": [1, 2], "b": ["x", "y"]}, tmp_path / "d", title="t", summary="s", notebook="n", smoke=False)
    meta, _ = _front_matter(tmp_path / "d" / "README.md")
    assert meta["run_mode"] == "full"
    assert load_dataset_dir(tmp_path / "d").to_list() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_empty_dataset_needs_features_and_then_reloads(tmp_path):
    with pytest.raises(ValueError, match="features"):
        save_dataset([], tmp_path / "e", title="t", summary="s", notebook="n", smoke=True)
    save_dataset([], tmp_path / "e", title="t", summary="s", notebook="n", smoke=True,
                 features={"q": "string", "k": "int64"})
    back = load_dataset_dir(tmp_path / "e")
    assert len(back) == 0 and back.column_names == ["q", "k"]


def test_audio_column_is_an_audio_feature_with_its_rate_and_loads_as_arrays(tmp_path):
    import datasets
    import soundfile as sf

    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wav = tmp_path / "tone16k.wav"
    sf.write(wav, np.interp(np.arange(16000) / 16000, t, tone).astype(np.float32), 16000)
    rows = [{"text": "array row", "audio": {"array": tone, "sampling_rate": 8000}},
            {"text": "file row", "audio": str(wav)}]
    save_dataset(rows, tmp_path / "a", title="t", summary="s", notebook="n", smoke=True,
                 audio_column="audio", sample_rate=16000, task_categories=("text-to-speech",))
    back = load_dataset_dir(tmp_path / "a")
    feat = back.features["audio"]
    assert isinstance(feat, datasets.Audio) and feat.sampling_rate == 16000
    for row in back:
        arr, sr = load_audio(row["audio"])
        assert sr == 16000 and arr.dtype == np.float32 and arr.ndim == 1
        assert abs(len(arr) - 16000) <= 2  # one second at 16 kHz (the 8 kHz row was resampled)
        spectrum = np.abs(np.fft.rfft(arr))
        assert abs(np.argmax(spectrum) * sr / len(arr) - 440) < 5  # still the 440 Hz tone
    _, text = _front_matter(tmp_path / "a" / "README.md")
    assert "load_audio" in text and "16000 Hz" in text


def test_audio_with_declared_features_and_an_empty_audio_set(tmp_path):
    import datasets

    features = {"text": "string", "audio": "string"}  # the audio column's entry is replaced by Audio
    rows = [{"text": "a", "audio": {"array": np.zeros(1600, dtype=np.float32), "sampling_rate": 16000}}]
    save_dataset(rows, tmp_path / "f", title="t", summary="s", notebook="n", smoke=True, features=features,
                 audio_column="audio", sample_rate=16000)
    back = load_dataset_dir(tmp_path / "f")
    assert isinstance(back.features["audio"], datasets.Audio) and load_audio(back[0]["audio"])[0].shape == (1600,)
    save_dataset([], tmp_path / "e", title="t", summary="s", notebook="n", smoke=True, features=features,
                 audio_column="audio", sample_rate=16000)
    empty = load_dataset_dir(tmp_path / "e")
    assert len(empty) == 0 and empty.features["audio"].sampling_rate == 16000


def test_audio_rates_must_agree_or_be_resampled(tmp_path):
    rows = [{"audio": {"array": np.zeros(100), "sampling_rate": 8000}},
            {"audio": {"array": np.zeros(100), "sampling_rate": 16000}}]
    with pytest.raises(ValueError, match="sampling rates"):
        save_dataset(rows, tmp_path / "x", title="t", summary="s", notebook="n", smoke=True, audio_column="audio")
    with pytest.raises(TypeError, match="audio cell"):
        save_dataset([{"audio": 3}], tmp_path / "y", title="t", summary="s", notebook="n", smoke=True,
                     audio_column="audio")


@pytest.mark.parametrize("n,tag", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M")])
def test_size_category(n, tag):
    assert size_category(n) == tag
