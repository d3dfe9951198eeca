import random
import sys

import numpy as np
import pytest

from helpers.core import env


def test_resolve_smoke_param_and_env(monkeypatch, capsys):
    monkeypatch.delenv(env.SMOKE_ENV, raising=False)
    assert env.resolve_smoke(False) is False
    assert env.resolve_smoke(True) is True
    monkeypatch.setenv(env.SMOKE_ENV, "1")
    assert env.resolve_smoke(False) is True
    assert "SDW_SMOKE=1" in capsys.readouterr().out
    monkeypatch.setenv(env.SMOKE_ENV, "0")
    assert env.resolve_smoke(False) is False


def test_resolve_smoke_rejects_garbage(monkeypatch):
    monkeypatch.setenv(env.SMOKE_ENV, "maybe")
    with pytest.raises(ValueError):
        env.resolve_smoke(False)


def test_output_dir_respects_env(tmp_path, monkeypatch):
    monkeypatch.setenv(env.OUTPUT_ENV, str(tmp_path))
    p = env.output_dir("00_x")
    assert p == tmp_path / "00_x" and p.is_dir()
    assert env.output_dir("y", base=tmp_path / "b") == tmp_path / "b" / "y"


def test_seed_everything_reproducible():
    import torch

    env.seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    env.seed_everything(3)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())


def test_pick_device():
    import torch

    assert env.pick_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            env.pick_device("cuda")
    with pytest.raises(ValueError):
        env.pick_device("tpu")
    assert env.pick_device() in {"cpu", "cuda", "mps"}


def test_describe_and_versions():
    v = env.versions()
    assert v["torch"] != "missing" and "python" in v
    assert "device" in env.describe("cpu")
    assert env.in_colab() is ("google.colab" in sys.modules)
