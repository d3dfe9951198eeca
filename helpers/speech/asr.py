"""Speech recognition with Whisper: one code path through transformers, faster-whisper as a second.

The course ships Whisper as CTranslate2 folders (``whisper-tiny.en``, ``whisper-base``). The
first :meth:`ASR.load` of a bundled name converts that ``model.bin`` once, with numpy alone, into
a plain transformers ``WhisperForConditionalGeneration`` folder cached under
``helpers.core.env.cache_dir("whisper")``; every later load takes about a second. Because the result is
an ordinary transformers folder, a hub id such as ``"openai/whisper-small"`` (on Colab) or any
local Whisper folder goes through exactly the same code.

>>> asr = ASR.load("whisper-base")                       # doctest: +SKIP
>>> out = asr.transcribe(["a.wav", "b.flac"], timestamps=True)
>>> out[0].text, out[0].avg_logprob, out[0].segments[:2]
>>> asr.last_stats["rtf"]                                 # real-time factor of that call

Each :class:`Transcript` carries the text, segments with start/end times, the average
log-probability of the decoded tokens (Whisper's own confidence measure, used for filtering
pseudo-labels as distil-whisper does) and an ``error`` field: unreadable, empty or silent audio is
counted in :attr:`ASR.last_stats` instead of crashing the batch. Audio longer than 30 s is cut
into chunks at quiet points (:func:`helpers.speech.audio.chunk_bounds`), the chunks are decoded in the
same batches as everything else and stitched back together with shifted timestamps.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from helpers.speech.audio import TARGET_SR, as_array, as_list_of_clips, check_audio, chunk_bounds
from helpers.core.env import cache_dir

#: Whisper's window: 30 s of 16 kHz audio.
WINDOW_SECONDS = 30.0
_TS_STEP = 0.02  # seconds per timestamp token


# --------------------------------------------------------------------------- results
@dataclass
class Segment:
    """A stretch of speech with its start and end time in seconds."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """One transcribed clip.

    Attributes:
        text: the transcript (stripped; empty when nothing was recognised or on error).
        avg_logprob: mean log-probability per decoded token (closer to 0 = more confident);
            ``nan`` when nothing was decoded.
        n_tokens: decoded tokens the average runs over (text, timestamps and end-of-text).
        seconds: audio length.
        segments: timestamped segments (empty unless ``timestamps=True``).
        chunks: number of <=30 s windows the clip was cut into.
        error: why the clip was not transcribed (``"empty"``, ``"silent"``, ``"unreadable: ..."``).
    """

    text: str
    avg_logprob: float = float("nan")
    n_tokens: int = 0
    seconds: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    chunks: int = 1
    error: str | None = None


# --------------------------------------------------------------------------- CTranslate2 -> transformers
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


def read_ct2_model(path: str | os.PathLike) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """Read a CTranslate2 ``model.bin`` into ``(spec_name, {name: array}, {alias: name})``.

    The format (binary version 6, written by ``ctranslate2.specs.ModelSpec._serialize``) is a
    small header followed by named arrays: for each variable its name, rank, shape, dtype id,
    byte count and raw little-endian data, then a list of aliases (tied weights).
    """
    buf = memoryview(Path(path).read_bytes())
    off = 0

    def unpack(fmt: str) -> Any:
        nonlocal off
        (v,) = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return v

    def string() -> str:
        nonlocal off
        n = unpack("H")
        s = bytes(buf[off: off + n - 1]).decode("utf-8")
        off += n
        return s

    version = unpack("I")
    if version < 5 or version > 6:
        raise ValueError(f"{path}: unsupported CTranslate2 binary version {version}")
    spec = string()
    unpack("I")  # spec revision
    arrays: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        name = string()
        rank = unpack("B")
        shape = [unpack("I") for _ in range(rank)]
        dtype = _CT2_DTYPES[unpack("B")]
        nbytes = unpack("I")
        raw = buf[off: off + nbytes]
        off += nbytes
        if dtype == "bfloat16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        arrays[name] = arr.reshape(shape) if shape else arr.reshape(())
    aliases = {}
    for _ in range(unpack("I")):
        alias = string()
        aliases[alias] = string()
    return spec, arrays, aliases


def _token_ids(tokenizer_json: Path) -> dict[str, int]:
    data = json.loads(tokenizer_json.read_text())
    return {t["content"]: t["id"] for t in data.get("added_tokens", [])}


def _whisper_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variable names to transformers parameter names (float32)."""
    f = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items() if v.ndim > 0}
    sd: dict[str, np.ndarray] = {}

    def lin(src: str, dst: str) -> None:
        sd[f"{dst}.weight"] = f[f"{src}/weight"]
        if f"{src}/bias" in f:
            sd[f"{dst}.bias"] = f[f"{src}/bias"]

    def norm(src: str, dst: str) -> None:
        sd[f"{dst}.weight"] = f[f"{src}/gamma"]
        sd[f"{dst}.bias"] = f[f"{src}/beta"]

    def split(src: str, dsts: list[str], with_bias: list[bool]) -> None:
        w = f[f"{src}/weight"]
        b = f.get(f"{src}/bias")
        parts = np.split(w, len(dsts), axis=0)
        bparts = np.split(b, len(dsts)) if b is not None else [None] * len(dsts)
        for d, pw, pb, keep in zip(dsts, parts, bparts, with_bias):
            sd[f"{d}.weight"] = pw
            if keep and pb is not None:
                sd[f"{d}.bias"] = pb

    for side in ("encoder", "decoder"):
        hf = f"model.{side}"
        n_layers = 1 + max(int(k.split("/")[1][6:]) for k in f if k.split("/")[1].startswith("layer_") and k.split("/")[1][6:].isdigit())
        sd[f"{hf}.embed_positions.weight"] = f[f"{side}/position_encodings/encodings"]
        norm(f"{side}/layer_norm", f"{hf}.layer_norm")
        for i in range(n_layers):
            c, h = f"{side}/layer_{i}", f"{hf}.layers.{i}"
            norm(f"{c}/self_attention/layer_norm", f"{h}.self_attn_layer_norm")
            split(f"{c}/self_attention/linear_0", [f"{h}.self_attn.{p}_proj" for p in "qkv"], [True, False, True])
            lin(f"{c}/self_attention/linear_1", f"{h}.self_attn.out_proj")
            if side == "decoder":
                norm(f"{c}/attention/layer_norm", f"{h}.encoder_attn_layer_norm")
                lin(f"{c}/attention/linear_0", f"{h}.encoder_attn.q_proj")
                split(f"{c}/attention/linear_1", [f"{h}.encoder_attn.{p}_proj" for p in "kv"], [False, True])
                lin(f"{c}/attention/linear_2", f"{h}.encoder_attn.out_proj")
            norm(f"{c}/ffn/layer_norm", f"{h}.final_layer_norm")
            lin(f"{c}/ffn/linear_0", f"{h}.fc1")
            lin(f"{c}/ffn/linear_1", f"{h}.fc2")
    lin("encoder/conv1", "model.encoder.conv1")
    lin("encoder/conv2", "model.encoder.conv2")
    sd["model.decoder.embed_tokens.weight"] = f["decoder/embeddings/weight"]
    return sd


def convert_ct2_whisper(ct2_dir: str | os.PathLike, out_dir: str | os.PathLike, *, verbose: bool = True) -> Path:
    """Convert a CTranslate2 Whisper folder into a transformers Whisper folder (numpy only).

    Writes ``config.json``, ``generation_config.json``, ``model.safetensors`` (float32), the
    tokenizer and the feature-extractor config. The folder is built under a temporary name and
    renamed when complete, so an interrupted conversion never leaves a broken cache.
    """
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperTokenizer)

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    t0 = time.perf_counter()
    spec, arrays, _aliases = read_ct2_model(ct2_dir / "model.bin")
    if spec != "WhisperSpec":
        raise ValueError(f"{ct2_dir} holds a {spec}, not a Whisper model")
    ct2_cfg = json.loads((ct2_dir / "config.json").read_text())
    ids = _token_ids(ct2_dir / "tokenizer.json")
    sd = _whisper_state_dict(arrays)

    vocab, d_model = sd["model.decoder.embed_tokens.weight"].shape
    n_enc = sum(1 for k in sd if k.startswith("model.encoder.layers.") and k.endswith("fc1.weight"))
    n_dec = sum(1 for k in sd if k.startswith("model.decoder.layers.") and k.endswith("fc1.weight"))
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    translate, transcribe = ids["<|translate|>"], ids["<|transcribe|>"]
    no_ts = ids["<|notimestamps|>"]
    multilingual = vocab >= 51865
    cfg = WhisperConfig(
        vocab_size=int(vocab), num_mel_bins=int(sd["model.encoder.conv1.weight"].shape[1]),
        d_model=int(d_model), encoder_layers=n_enc, decoder_layers=n_dec,
        encoder_attention_heads=int(arrays["encoder/num_heads"]), decoder_attention_heads=int(arrays["decoder/num_heads"]),
        encoder_ffn_dim=int(sd["model.encoder.layers.0.fc1.weight"].shape[0]),
        decoder_ffn_dim=int(sd["model.decoder.layers.0.fc1.weight"].shape[0]),
        max_source_positions=int(sd["model.encoder.embed_positions.weight"].shape[0]),
        max_target_positions=int(sd["model.decoder.embed_positions.weight"].shape[0]),
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        suppress_tokens=ct2_cfg.get("suppress_ids"), begin_suppress_tokens=ct2_cfg.get("suppress_ids_begin"),
        scale_embedding=False, tie_word_embeddings=True,
    )
    lang_to_id = {tok: i for tok, i in ids.items() if sot < i < translate and len(tok) <= 9}
    gen = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        max_length=cfg.max_target_positions, suppress_tokens=ct2_cfg.get("suppress_ids"),
        begin_suppress_tokens=ct2_cfg.get("suppress_ids_begin"), alignment_heads=ct2_cfg.get("alignment_heads"),
        no_timestamps_token_id=no_ts, prev_sot_token_id=ids.get("<|startofprev|>"),
        max_initial_timestamp_index=50, is_multilingual=multilingual, return_timestamps=False,
        **({"lang_to_id": lang_to_id, "task_to_id": {"transcribe": transcribe, "translate": translate}} if multilingual else {}),
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(cfg)
    model = model.to_empty(device="cpu")
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"converting {ct2_dir}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = gen
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    shutil.copy(ct2_dir / "tokenizer.json", tmp / "tokenizer.json")
    (tmp / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "WhisperTokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 1024,
        "add_prefix_space": False, "errors": "replace",
    }, indent=2))
    WhisperTokenizer.from_pretrained(tmp)  # fail here, not at first use, if the tokenizer is unusable
    WhisperFeatureExtractor(feature_size=cfg.num_mel_bins).save_pretrained(tmp)
    (tmp / ".complete").write_text(json.dumps({"source": str(ct2_dir), "seconds": round(time.perf_counter() - t0, 1)}))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    if verbose:
        print(f"converted {ct2_dir.name} (CTranslate2) to transformers in {time.perf_counter() - t0:.1f}s -> {out_dir}",
              file=sys.stderr)
    return out_dir


def resolve_whisper_source(name: str, *, verbose: bool = True) -> str:
    """Folder or hub id that transformers should load for ``name``.

    Bundled short names (``whisper-tiny.en``, ``whisper-base``) and local CTranslate2 folders
    are converted once and cached; transformers folders and hub ids are returned unchanged.
    """
    from helpers.core.models import REGISTRY, file_lock

    spec = REGISTRY.get(name)
    if spec is not None:
        if spec.kind != "asr":
            raise ValueError(f"{name!r} is a {spec.kind} model, not a speech recogniser")
        ct2 = spec.locate()
        key = name
    else:
        path = Path(name).expanduser()
        if not (path / "model.bin").exists():
            return name  # hub id or transformers folder
        ct2, key = path, "local-" + path.resolve().as_posix().strip("/").replace("/", "_")
    target = cache_dir("whisper") / key
    if (target / ".complete").exists():
        return str(target)
    with file_lock(cache_dir("whisper") / f"{key}.lock"):
        if not (target / ".complete").exists():
            convert_ct2_whisper(ct2, target, verbose=verbose)
    return str(target)


def ct2_folder(name: str) -> str:
    """CTranslate2 folder for faster-whisper: bundled short name, CT2 folder or size name."""
    from helpers.core.models import REGISTRY

    if name in REGISTRY:
        return str(REGISTRY[name].locate())
    return name  # a local CT2 folder, or a size like "base.en" that faster-whisper downloads online


# --------------------------------------------------------------------------- the recogniser
def _prepare_inputs(audios: Sequence[Any], sample_rate: int | None, max_seconds: float):
    """Turn inputs into 16 kHz pieces; returns (pieces, owner index, offsets, transcripts, counts)."""
    pieces: list[np.ndarray] = []
    owner: list[int] = []
    offsets: list[float] = []
    results: list[Transcript] = []
    counts: Counter = Counter()
    for i, item in enumerate(audios):
        try:
            a, _sr = as_array(item, sr=sample_rate, target_sr=TARGET_SR)
        except Exception as err:  # noqa: BLE001 - counted and reported per clip
            results.append(Transcript("", error=f"unreadable: {type(err).__name__}: {err}"))
            counts["unreadable"] += 1
            continue
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        chk = check_audio(a, TARGET_SR, min_seconds=0.05)
        results.append(Transcript("", seconds=chk.seconds))
        if "empty" in chk.issues or "silent" in chk.issues or "too_short" in chk.issues:
            tag = next(t for t in ("empty", "silent", "too_short") if t in chk.issues)
            results[-1].error = tag
            counts[tag] += 1
            continue
        if "clipped" in chk.issues:
            counts["clipped_transcribed"] += 1
        bounds = chunk_bounds(a, TARGET_SR, max_seconds=max_seconds)
        results[-1].chunks = len(bounds)
        if len(bounds) > 1:
            counts["long_chunked"] += 1
        for s, e in bounds:
            pieces.append(a[s:e])
            owner.append(i)
            offsets.append(s / TARGET_SR)
    return pieces, owner, offsets, results, counts


@dataclass
class _Piece:
    text: str
    logprob_sum: float
    n_tokens: int
    segments: list[Segment]


class ASR:
    """A Whisper recogniser with two back ends and one interface.

    Use :meth:`load`; then :meth:`transcribe` takes a list of paths, arrays (16 kHz unless
    ``sample_rate`` says otherwise), ``(array, sr)`` pairs or ``datasets`` audio dicts.
    """

    def __init__(self, name: str, backend: str, model: Any, processor: Any = None, device: str = "cpu"):
        self.name, self.backend, self.model, self.processor, self.device = name, backend, model, processor, device
        self.last_stats: dict[str, Any] = {}
        self.threads: int | None = None
        if backend == "transformers":
            gc = model.generation_config
            self.multilingual = bool(getattr(gc, "is_multilingual", False))
            self.eot = int(gc.eos_token_id if not isinstance(gc.eos_token_id, list) else gc.eos_token_id[0])
            self.no_ts = int(gc.no_timestamps_token_id)
            self.ts_begin = self.no_ts + 1
        else:
            self.multilingual = bool(model.model.is_multilingual)

    def __repr__(self) -> str:
        return f"ASR({self.name!r}, backend={self.backend!r}, device={self.device!r})"

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, name: str = "whisper-base", backend: str = "transformers", device: str | None = None,
             compute_type: str = "int8", threads: int | None = None, int8: bool = False,
             verbose: bool = True) -> "ASR":
        """Load a Whisper model.

        Args:
            name: ``"whisper-tiny.en"``, ``"whisper-base"`` (bundled), a hub id such as
                ``"openai/whisper-small"``, or a local transformers / CTranslate2 folder.
            backend: ``"transformers"`` (default; one code path for bundled and hub models) or
                ``"faster-whisper"`` (CTranslate2; bundled names and CT2 folders).
            device: ``"cpu"``, ``"cuda"`` ...; default :func:`helpers.core.env.pick_device`.
            compute_type: faster-whisper only (``"int8"``, ``"float32"``, ``"float16"`` on GPU).
            threads: CPU threads (default: all cores for faster-whisper, torch's setting for
                transformers). On a machine shared with other busy processes, ``threads=1`` can be
                several times faster than oversubscribing the cores.
            int8: transformers on CPU only: quantise the linear layers to int8 on the fly
                (``torch.ao.quantization.quantize_dynamic``), about twice as fast on CPU; the
                same precision faster-whisper's ``compute_type="int8"`` uses. Log-probabilities
                shift slightly (the output projection is quantised too).
        """
        from helpers.core.env import pick_device

        device = device or pick_device()
        if backend == "transformers":
            import torch
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            from helpers.core.models import MissingModelError

            source = resolve_whisper_source(name, verbose=verbose)
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            try:
                processor = WhisperProcessor.from_pretrained(source)
                model = WhisperForConditionalGeneration.from_pretrained(source, dtype=dtype)
            except OSError as err:
                raise MissingModelError(
                    f"could not load Whisper {name!r}: not bundled (bundled: whisper-tiny.en, whisper-base), "
                    f"so it was treated as a hub id or folder. Offline machines need a local folder. ({err})"
                ) from err
            model.to(device).eval()
            if int8 and device == "cpu":
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
                qmodel.generation_config = model.generation_config
                model = qmodel
            obj = cls(name, backend, model, processor, device)
            obj.threads = threads
            return obj
        if backend in ("faster-whisper", "ct2"):
            from faster_whisper import WhisperModel

            try:
                n = threads or len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover
                n = threads or (os.cpu_count() or 1)
            fw_device = "cuda" if device.startswith("cuda") else "cpu"
            model = WhisperModel(ct2_folder(name), device=fw_device, compute_type=compute_type, cpu_threads=n)
            return cls(name, "faster-whisper", model, None, fw_device)
        raise ValueError(f"unknown backend {backend!r}: use 'transformers' or 'faster-whisper'")

    # ----------------------------------------------------------------- public API
    def transcribe(self, audios: Sequence[Any] | Any, *, batch_size: int = 8, timestamps: bool = False,
                   language: str | None = "en", sample_rate: int | None = None, max_new_tokens: int = 220,
                   chunk_seconds: float = WINDOW_SECONDS, progress: bool = True, beam_size: int = 1,
                   fallback: bool = False) -> list[Transcript]:
        """Transcribe clips; returns one :class:`Transcript` per input, in input order.

        Args:
            audios: a list of inputs (or a single one, then a list of one comes back).
            batch_size: windows decoded together (transformers back end). ``1`` = one at a time.
            timestamps: also predict segment timestamps (Whisper timestamp tokens).
            language: language code for multilingual models (ignored by English-only ones);
                ``None`` lets the model detect it.
            sample_rate: rate of raw arrays (default 16 kHz); files carry their own.
            max_new_tokens: cap per 30 s window (Whisper's limit is 448 minus the prompt).
            chunk_seconds: longer audio is cut into pieces of at most this length.
            progress: show a tqdm bar.
            beam_size, fallback: faster-whisper back end only. ``beam_size=5, fallback=True`` is
                OpenAI's own decoding recipe (and faster-whisper's default): beam search, and a window
                whose text compresses too well (gzip ratio above 2.4: a loop) or whose average
                log-probability is below -1 is decoded again at temperature 0.2, 0.4, ... 1.0.
                Slower, and the guard against the repetition loops small Whispers fall into on
                noisy audio. The default (1, False) is greedy decoding, as the transformers back end.

        ``self.last_stats`` afterwards holds audio seconds, wall seconds, the real-time factor
        (wall / audio; below 1 is faster than real time) and a Counter of skipped clips.
        """
        if self.backend == "transformers" and (beam_size != 1 or fallback):
            raise ValueError("beam search and temperature fallback are implemented by the faster-whisper back end: "
                             "ASR.load(name, backend='faster-whisper')")
        items = as_list_of_clips(audios)
        t0 = time.perf_counter()
        pieces, owner, offsets, results, counts = _prepare_inputs(items, sample_rate, min(chunk_seconds, WINDOW_SECONDS))
        if self.backend == "transformers":
            import torch

            before = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(int(self.threads))
            try:
                decoded = self._run_transformers(pieces, batch_size, timestamps, language, max_new_tokens, progress)
            finally:
                torch.set_num_threads(before)
        else:
            decoded = self._run_faster_whisper(pieces, timestamps, language, progress, beam_size, fallback)
        # stitch chunks back together
        agg: dict[int, list[tuple[float, _Piece]]] = {}
        for idx, off, piece, audio_piece in zip(owner, offsets, decoded, pieces):
            # Whisper sees a 30 s window padded with silence, so a timestamp can point past the end of a
            # shorter piece (a segment "ending" at 28 s of a chunk cut at 27.15 s). Keep segments inside
            # their piece, so the stitched segments of a chunked clip never overlap at a cut; an
            # unfinished last segment ends where its piece ends.
            dur = len(audio_piece) / TARGET_SR
            piece.segments = [Segment(min(sg.start, dur), min(sg.end, dur) if sg.end > sg.start else dur, sg.text)
                              for sg in piece.segments]
            agg.setdefault(idx, []).append((off, piece))
        for idx, parts in agg.items():
            r = results[idx]
            texts = [p.text.strip() for _, p in parts if p.text.strip()]
            r.text = " ".join(texts)
            lp = sum(p.logprob_sum for _, p in parts)
            nt = sum(p.n_tokens for _, p in parts)
            r.n_tokens = nt
            r.avg_logprob = lp / nt if nt else float("nan")
            r.segments = [Segment(round(off + s.start, 2), round(off + s.end, 2), s.text) for off, p in parts for s in p.segments]
            if not r.text:
                counts["no_speech_recognised"] += 1
        wall = time.perf_counter() - t0
        audio_s = float(sum(r.seconds for r in results))
        counts["transcribed"] = sum(1 for r in results if r.error is None)
        self.last_stats = {
            "clips": len(results), "windows": len(pieces), "audio_s": round(audio_s, 2), "wall_s": round(wall, 3),
            "rtf": wall / audio_s if audio_s else float("nan"), "batch_size": batch_size, "backend": self.backend,
            "counts": counts,
        }
        return results

    def transcribe_one(self, audio: Any, **kwargs: Any) -> Transcript:
        """Transcribe one clip (see :meth:`transcribe`)."""
        return self.transcribe([audio], **kwargs)[0]

    # ----------------------------------------------------------------- back ends
    def _prompt_ids(self, language: str | None, timestamps: bool) -> list[int]:
        gc = self.model.generation_config
        ids = [int(gc.decoder_start_token_id)]
        if self.multilingual:
            if language:
                tok = f"<|{language}|>"
                if tok not in gc.lang_to_id:
                    raise ValueError(f"language {language!r} is not one Whisper knows")
                ids.append(int(gc.lang_to_id[tok]))
            ids.append(int(gc.task_to_id["transcribe"]))
        if not timestamps:
            ids.append(self.no_ts)
        return ids

    def _decode_piece(self, tokens: list[int], logprobs: list[float], timestamps: bool) -> _Piece:
        """Text, segments and log-prob sum from the generated tokens (prompt excluded)."""
        tok = self.processor.tokenizer
        text_ids: list[int] = []
        segments: list[Segment] = []
        seg_start: float | None = None
        seg_ids: list[int] = []
        n = 0
        lp = 0.0
        for t, l in zip(tokens, logprobs):
            n += 1
            lp += l
            if t == self.eot:
                break
            if t >= self.ts_begin:
                time_s = (t - self.ts_begin) * _TS_STEP
                if seg_start is None:
                    seg_start = time_s
                else:
                    if seg_ids:
                        segments.append(Segment(seg_start, time_s, tok.decode(seg_ids).strip()))
                    seg_start, seg_ids = None, []
                continue
            if t >= self.eot:  # other special tokens
                continue
            text_ids.append(t)
            if timestamps:
                seg_ids.append(t)
        if timestamps and seg_ids:  # unfinished last segment
            segments.append(Segment(seg_start or 0.0, seg_start or 0.0, tok.decode(seg_ids).strip()))
        return _Piece(tok.decode(text_ids).strip(), lp, n, segments)

    def _masks(self, vocab: int):
        """Boolean masks over the vocabulary, built once per model: tokens Whisper never emits
        (``suppress_tokens``) and tokens it may not start with (``begin_suppress_tokens``)."""
        import torch

        key = (vocab, str(self.device))
        if getattr(self, "_mask_cache", (None,))[0] != key:
            gc = self.model.generation_config
            never = torch.zeros(vocab, dtype=torch.bool, device=self.device)
            at_begin = torch.zeros(vocab, dtype=torch.bool, device=self.device)
            for mask, ids in ((never, gc.suppress_tokens), (at_begin, gc.begin_suppress_tokens)):
                ids = [int(i) for i in (ids or []) if 0 <= int(i) < vocab]
                if ids:
                    mask[torch.tensor(ids, device=self.device)] = True
            self._mask_cache = (key, never, at_begin)
        return self._mask_cache[1], self._mask_cache[2]

    def _greedy(self, feats: Any, prompt: list[int], timestamps: bool, max_new_tokens: int):
        """Greedy decoding with a KV cache; returns (tokens, log-probs) per row, prompt excluded.

        Log-probabilities are taken after Whisper's logit rules (suppressed tokens, timestamp
        rules), as OpenAI's decoder and faster-whisper compute ``avg_logprob``. The suppression
        masks are built once per model (transformers' ``SuppressTokensLogitsProcessor`` rebuilds
        its mask with ``torch.isin`` over the whole vocabulary at every step, which cost about a
        third of the decoding time on a busy 2-core CPU); the timestamp rules, which depend on
        the tokens so far, use transformers' ``WhisperTimeStampLogitsProcessor``.

        Equivalence (``tests/test_asr.py::test_greedy_loop_matches_transformers_generate``): without
        timestamps it picks the same tokens as transformers' greedy ``generate``, and its log-probs
        equal ``compute_transition_scores`` of generate's ``output_scores`` within 1e-4 once the
        timestamp tokens are masked there too (generate leaves them in the softmax after
        ``<|notimestamps|>``; OpenAI's decoder and this loop do not).
        """
        import torch

        model = self.model
        decoder = model.model.decoder
        bsz = feats.shape[0]
        enc = model.model.encoder(feats).last_hidden_state
        ids = torch.tensor([prompt] * bsz, device=self.device)
        ts_proc = None
        if timestamps:
            from transformers.generation.logits_process import WhisperTimeStampLogitsProcessor

            ts_proc = WhisperTimeStampLogitsProcessor(model.generation_config, begin_index=len(prompt))
        # transformers >= 5.2x calls the decoder's cache argument `cache`; older versions `past_key_values`
        cache_kw = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
        finished = torch.zeros(bsz, dtype=torch.bool, device=self.device)
        toks: list[torch.Tensor] = []
        lps: list[torch.Tensor] = []
        past = None
        cur = ids
        limit = min(max_new_tokens, model.config.max_target_positions - len(prompt))
        for step in range(limit):
            out = decoder(input_ids=cur, encoder_hidden_states=enc, use_cache=True, **{cache_kw: past})
            past = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            scores = model.proj_out(out.last_hidden_state[:, -1]).float()
            if step == 0:
                never, at_begin = self._masks(int(scores.shape[-1]))
            scores = scores.masked_fill(never if step else (never | at_begin), -float("inf"))
            if ts_proc is not None:
                scores = ts_proc(ids, scores)
            else:  # as OpenAI's decoder does after <|notimestamps|>
                scores[:, self.ts_begin:] = -float("inf")
            nxt = scores.argmax(dim=-1)
            # log-probability of the chosen token only: its score minus the log-sum-exp of the row
            lp = scores.gather(1, nxt[:, None]).squeeze(1) - torch.logsumexp(scores, dim=-1)
            nxt = torch.where(finished, torch.full_like(nxt, self.eot), nxt)
            lp = torch.where(finished, torch.zeros_like(lp), lp)
            toks.append(nxt)
            lps.append(lp)
            finished |= nxt == self.eot
            if ts_proc is not None:
                ids = torch.cat([ids, nxt[:, None]], dim=1)
            cur = nxt[:, None]
            if bool(finished.all()):
                break
        if not toks:
            return [[] for _ in range(bsz)], [[] for _ in range(bsz)]
        t = torch.stack(toks, 1).tolist()
        l = torch.stack(lps, 1).tolist()
        return t, l

    def _run_transformers(self, pieces: list[np.ndarray], batch_size: int, timestamps: bool,
                          language: str | None, max_new_tokens: int, progress: bool) -> list[_Piece]:
        import torch
        from tqdm.auto import tqdm

        out: list[_Piece] = []
        if not pieces:
            return out
        prompt = self._prompt_ids(language, timestamps)
        fe = self.processor.feature_extractor
        dtype = next(self.model.parameters()).dtype
        batch_size = max(1, int(batch_size))
        bar = tqdm(total=len(pieces), desc=f"{self.name} transcribe", disable=not progress, leave=False)
        with torch.inference_mode():
            for start in range(0, len(pieces), batch_size):
                batch = pieces[start: start + batch_size]
                feats = fe(batch, sampling_rate=TARGET_SR, return_tensors="pt").input_features.to(self.device, dtype)
                toks, lps = self._greedy(feats, prompt, timestamps, max_new_tokens)
                for row_t, row_l in zip(toks, lps):
                    out.append(self._decode_piece(row_t, row_l, timestamps))
                bar.update(len(batch))
        bar.close()
        return out

    def _run_faster_whisper(self, pieces: list[np.ndarray], timestamps: bool, language: str | None,
                            progress: bool, beam_size: int = 1, fallback: bool = False) -> list[_Piece]:
        from tqdm.auto import tqdm

        out: list[_Piece] = []
        lang = language if self.multilingual else None
        temperature = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if fallback else 0.0
        for a in tqdm(pieces, desc=f"{self.name} (faster-whisper)", disable=not progress, leave=False):
            segs, _info = self.model.transcribe(
                a, language=lang or ("en" if not self.multilingual else None), beam_size=beam_size,
                temperature=temperature, without_timestamps=not timestamps, condition_on_previous_text=False,
                vad_filter=False,
            )
            segs = list(segs)
            n = sum(len(s.tokens) + 1 for s in segs)  # +1: end of text, as in the transformers back end
            lp = sum(s.avg_logprob * (len(s.tokens) + 1) for s in segs)
            text = " ".join(s.text.strip() for s in segs).strip()
            segments = [Segment(round(s.start, 2), round(s.end, 2), s.text.strip()) for s in segs] if timestamps else []
            out.append(_Piece(text, lp, n, segments))
        return out
