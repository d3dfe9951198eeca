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


def test_pick_device(monkeypatch):
    import torch

    monkeypatch.delenv("SDW_DEVICE", raising=False)
    assert env.pick_device("cpu") == "cpu"
    with pytest.raises(ValueError):
        env.pick_device("tpu")
    # with no preference it takes CUDA, then MPS, then the CPU, by what torch reports
    for cuda, mps, expected in [(True, False, "cuda"), (True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda c=cuda: c)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda m=mps: m)
        assert env.pick_device() == expected, (cuda, mps)
    # asking for a device that is not there raises instead of silently falling back
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="not available"):
        env.pick_device("cuda")
    monkeypatch.setenv("SDW_DEVICE", "cuda")
    with pytest.raises(RuntimeError):
        env.pick_device()


def test_describe_and_versions():
    v = env.versions()
    import torch

    assert v["torch"] == torch.__version__ and "python" in v
    assert "device cpu" in env.describe("cpu") and "CPU cores" in env.describe("cpu")


def test_in_colab_follows_the_real_signals(monkeypatch):
    import types

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert env.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101")
    assert env.in_colab() is True
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert env.in_colab() is True
    assert "Colab" in env.describe("cpu")


def test_apply_smoke_replaces_sizes_only_in_smoke_mode(monkeypatch, capsys):
    monkeypatch.delenv(env.SMOKE_ENV, raising=False)
    ns = {"N": 100, "GRID": [1, 2, 3], "MODEL": "m"}
    assert env.apply_smoke(False, {"N": 4, "GRID": [1]}, ns) is False
    assert ns == {"N": 100, "GRID": [1, 2, 3], "MODEL": "m"}
    assert env.apply_smoke(True, {"N": 4, "GRID": [1]}, ns) is True
    assert ns == {"N": 4, "GRID": [1], "MODEL": "m"}
    assert "N 100 -> 4" in capsys.readouterr().out
    monkeypatch.setenv(env.SMOKE_ENV, "1")  # the test-suite's switch turns it on too
    ns = {"N": 100}
    assert env.apply_smoke(False, {"N": 4}, ns) is True and ns["N"] == 4


def test_apply_smoke_refuses_a_size_the_parameters_do_not_set(monkeypatch):
    monkeypatch.delenv(env.SMOKE_ENV, raising=False)
    with pytest.raises(KeyError, match="N_PROBLEM"):
        env.apply_smoke(False, {"N_PROBLEM": 3}, {"N_PROBLEMS": 20})
