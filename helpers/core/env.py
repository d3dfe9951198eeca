"""Environment helpers: device, seeding, versions, Colab, smoke mode, output folders."""
from __future__ import annotations

import importlib
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np

#: Environment variable that forces smoke mode on (CI and the test-suite set it).
SMOKE_ENV = "SDW_SMOKE"
#: Environment variable that moves the output folder (default: ``<repo>/build/outputs``).
OUTPUT_ENV = "SDW_OUTPUT"
#: Environment variable that moves the model cache (default: ``~/.cache/synthetic-data-workshop``).
CACHE_ENV = "SDW_CACHE"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def pick_device(prefer: str | None = None) -> str:
    """Choose ``"cuda"``, ``"mps"`` or ``"cpu"``.

    ``prefer`` (or the ``SDW_DEVICE`` environment variable) forces a choice; asking for a
    device that is not available raises instead of silently falling back.
    """
    import torch

    want = prefer or os.environ.get("SDW_DEVICE")
    if want:
        want = want.lower()
        ok = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        }
        if want.split(":")[0] not in ok:
            raise ValueError(f"unknown device {want!r}; use cpu, cuda or mps")
        if not ok[want.split(":")[0]]:
            raise RuntimeError(f"device {want!r} was asked for but is not available on this machine")
        return want
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for reproducible runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def use_all_cores() -> int:
    """Let torch use every core this process may run on; returns the thread count.

    ``OMP_NUM_THREADS``, when set, wins: on a machine shared by several jobs, one thread
    per process avoids the slowdown of oversubscribed thread pools.
    """
    import torch

    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        n = os.cpu_count() or 1
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        n = max(1, int(os.environ["OMP_NUM_THREADS"]))
    torch.set_num_threads(n)
    return n


def versions(packages: tuple[str, ...] = ("torch", "transformers", "datasets", "numpy")) -> dict[str, str]:
    """Versions of Python and the given packages ("missing" when not installed)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            mod = importlib.import_module(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            out[name] = "missing"
    return out


def describe(device: str | None = None) -> str:
    """One line with versions, device, cores and whether this is Colab."""
    dev = device or pick_device()
    extra = ""
    if dev.startswith("cuda"):
        import torch

        extra = f" ({torch.cuda.get_device_name(0)})"
    parts = [f"{k} {v}" for k, v in versions().items()]
    parts.append(f"device {dev}{extra}")
    parts.append(f"{os.cpu_count()} CPU cores")
    if in_colab():
        parts.append("Colab")
    return " | ".join(parts)


def resolve_smoke(param: bool | None = None, *, verbose: bool = True) -> bool:
    """Decide whether this run is a smoke run.

    Smoke mode is on when the notebook parameter says so *or* the ``SDW_SMOKE``
    environment variable is set to a true value (the test-suite and CI set it), so a
    learner can see in the output why a run was shrunk.
    """
    raw = os.environ.get(SMOKE_ENV, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ValueError(f"{SMOKE_ENV}={raw!r}: use 1/0, true/false, yes/no or on/off")
    from_env = raw in _TRUE
    smoke = bool(param) or from_env
    if verbose:
        why = []
        if param:
            why.append("parameter SMOKE=True")
        if from_env:
            why.append(f"environment {SMOKE_ENV}={raw}")
        print(f"SMOKE mode: {'ON (' + ', '.join(why) + ')' if smoke else 'off (full run)'}")
    return smoke


def apply_smoke(param: bool | None, smoke_sizes: dict, namespace: dict, *, verbose: bool = True) -> bool:
    """Resolve smoke mode and, when it is on, replace the notebook's sizes by their smoke values.

    The one way every notebook shrinks itself. Its ``parameters`` cell sets every size as a
    literal and lists the smoke values in ``SMOKE_SIZES`` (``{"N_PROBLEMS": 3, ...}``); the
    next cell calls ``SMOKE = env.apply_smoke(SMOKE, SMOKE_SIZES, globals())``. Each key must
    name a parameter that exists (a typo raises instead of silently keeping the full size),
    and the changed sizes are printed, so a reader sees what a smoke run leaves out.
    """
    smoke = resolve_smoke(param, verbose=verbose)
    unknown = sorted(k for k in smoke_sizes if k not in namespace)
    if unknown:
        raise KeyError(f"SMOKE_SIZES names {unknown}, which the parameters cell does not set")
    if smoke:
        changed = {k: (namespace[k], v) for k, v in smoke_sizes.items() if namespace[k] != v}
        namespace.update(smoke_sizes)
        if verbose and changed:
            print("smoke sizes: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
    return smoke


def repo_root() -> Path:
    """The course checkout (folder holding ``helpers/``)."""
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The course's own seed files (``<repo>/data``)."""
    return repo_root() / "data"


def output_dir(name: str, base: str | os.PathLike | None = None) -> Path:
    """Folder for everything a notebook writes: ``<base>/<name>``, created if needed.

    ``base`` defaults to ``$SDW_OUTPUT`` or ``<repo>/build/outputs`` (ignored by git).
    """
    root = Path(base or os.environ.get(OUTPUT_ENV) or repo_root() / "build" / "outputs")
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(sub: str = "") -> Path:
    """Cache for re-assembled and de-quantised models (``$SDW_CACHE`` or ``~/.cache/...``)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "synthetic-data-workshop")
    path = root / sub if sub else root
    path.mkdir(parents=True, exist_ok=True)
    return path
