"""Audio I/O, resampling and sanity checks for the speech notebooks.

Everything here works on plain ``numpy`` float32 arrays in ``[-1, 1]`` plus a sample rate,
so it plugs into Whisper (16 kHz), Piper (22.05 kHz), DNSMOS and resemblyzer alike.

- :func:`load_audio` / :func:`save_audio`: WAV or FLAC through ``soundfile`` (16-bit PCM on disk).
- :func:`resample`: polyphase resampling (``scipy.signal.resample_poly``), exact for integer ratios.
- :func:`to_mono`, :func:`peak_normalize`, :func:`add_noise`, :func:`chunk_bounds`.
- :func:`as_array`: turns a path, an array, an ``(array, sr)`` pair or a ``datasets`` audio dict
  into ``(float32 mono array, sr)``; :func:`as_list_of_clips` tells one clip from a tuple of clips.
- :func:`check_audio` / :func:`check_batch`: silent, clipped, empty, too short, wrong rate and
  non-finite audio are *detected and counted*, never a crash.
"""
from __future__ import annotations

import io
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

#: Whisper, DNSMOS and resemblyzer all work at 16 kHz.
TARGET_SR = 16000

AudioLike = Any  # path, np.ndarray, (array, sr) tuple, {"array", "sampling_rate"} or {"bytes"/"path"} dict


# --------------------------------------------------------------------------- basic transforms
def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of ``audio`` into one float32 channel.

    Accepts ``(n,)``, ``(n, channels)`` (soundfile's layout) and ``(channels, n)`` (torch's
    layout, recognised when the first axis is the short one).
    """
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise ValueError(f"audio must be 1-D or 2-D, got shape {a.shape}")
    axis = 0 if a.shape[0] < a.shape[1] else 1
    return a.mean(axis=axis).astype(np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample mono ``audio`` from ``orig_sr`` to ``target_sr`` (polyphase filter, float32).

    Uses :func:`scipy.signal.resample_poly` with the reduced ratio (22050 -> 16000 is 320/441),
    which is fast and has a proper anti-aliasing filter. Returns the input when rates match.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    a = np.asarray(audio, dtype=np.float32)
    if orig_sr == target_sr or a.size == 0:
        return a
    from scipy.signal import resample_poly

    ratio = Fraction(target_sr, orig_sr)
    out = resample_poly(a, ratio.numerator, ratio.denominator, axis=-1)
    return out.astype(np.float32)


def peak_normalize(audio: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale ``audio`` so its largest absolute sample is ``peak`` (silence is returned as is)."""
    a = np.asarray(audio, dtype=np.float32)
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m < 1e-8:
        return a
    return (a * (peak / m)).astype(np.float32)


def add_noise(audio: np.ndarray, snr_db: float, seed: int | None = None) -> np.ndarray:
    """Add white Gaussian noise at a given signal-to-noise ratio (dB); result clipped to [-1, 1]."""
    a = np.asarray(audio, dtype=np.float32)
    if a.size == 0:
        return a
    rng = np.random.default_rng(seed)
    p_signal = float(np.mean(a.astype(np.float64) ** 2))
    if p_signal <= 0:
        return a
    p_noise = p_signal / (10 ** (snr_db / 10))
    noisy = a + rng.normal(0.0, math.sqrt(p_noise), size=a.shape).astype(np.float32)
    return np.clip(noisy, -1.0, 1.0).astype(np.float32)


def duration(audio: np.ndarray, sr: int) -> float:
    """Length in seconds."""
    return float(len(audio)) / float(sr) if sr else 0.0


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level in dBFS (``-inf`` for empty or all-zero audio)."""
    a = np.asarray(audio, dtype=np.float64)
    if a.size == 0:
        return -math.inf
    r = math.sqrt(float(np.mean(a * a)))
    return 20 * math.log10(r) if r > 0 else -math.inf


# --------------------------------------------------------------------------- I/O
def load_audio(path: str | os.PathLike, sr: int | None = TARGET_SR, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG file as float32; resample to ``sr`` unless ``sr`` is ``None``.

    Returns ``(audio, sample_rate)``. ``mono=False`` keeps soundfile's ``(n, channels)`` layout.
    """
    import soundfile as sf

    data, file_sr = sf.read(str(path), dtype="float32", always_2d=False)
    if mono:
        data = to_mono(data)
    if sr is not None and sr != file_sr:
        if not mono and data.ndim == 2:
            data = np.stack([resample(data[:, c], file_sr, sr) for c in range(data.shape[1])], axis=1)
        else:
            data = resample(data, file_sr, sr)
        file_sr = sr
    return np.asarray(data, dtype=np.float32), int(file_sr)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    """Write ``audio`` to ``path`` (format from the suffix: ``.wav`` or ``.flac``), 16-bit PCM.

    Samples outside ``[-1, 1]`` are clipped (and would otherwise wrap around in integer PCM);
    non-finite samples are written as zeros. The parent folder is created.
    """
    import soundfile as sf

    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"save_audio writes .wav or .flac, not {path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    sf.write(str(path), np.clip(a, -1.0, 1.0), int(sr), format=fmt, subtype=subtype)
    return path


def is_array_sr_pair(x: Any) -> bool:
    """True for one ``(array, sample_rate)`` pair, False for anything else, including a tuple of two paths.

    The rate must be a number (not a bool) and the first element must not be a path or a string,
    so ``("a.wav", "b.wav")`` is two clips and ``(audio, 22050)`` is one.
    """
    if not (isinstance(x, tuple) and len(x) == 2):
        return False
    rate, first = x[1], x[0]
    return (isinstance(rate, (int, float, np.integer, np.floating)) and not isinstance(rate, (bool, np.bool_))
            and not isinstance(first, (str, bytes, os.PathLike)))


def as_list_of_clips(audios: Any) -> list[Any]:
    """A list of clips from one clip or many: a single path, array, dict or ``(array, sr)`` pair
    becomes a list of one; a list or tuple of clips (``("a.wav", "b.wav")`` too) stays as it is."""
    if isinstance(audios, list) or (isinstance(audios, tuple) and not is_array_sr_pair(audios)):
        return list(audios)
    return [audios]


def as_array(x: AudioLike, sr: int | None = None, target_sr: int | None = TARGET_SR) -> tuple[np.ndarray, int]:
    """Normalise any audio input to ``(mono float32 array, sample_rate)``.

    ``x`` may be a path, a numpy array or torch tensor (then ``sr`` gives its rate; default
    16 kHz), an ``(array, sr)`` pair, a ``datasets`` audio dict (``{"array", "sampling_rate"}``
    or ``{"bytes", "path"}``), or a torchcodec ``AudioDecoder``. The result is resampled to
    ``target_sr`` unless that is ``None``.
    """
    import soundfile as sf

    if isinstance(x, (str, os.PathLike)):
        a, rate = load_audio(x, sr=None)
    elif is_array_sr_pair(x):
        a, rate = to_mono(np.asarray(x[0], dtype=np.float32)), int(x[1])
    elif isinstance(x, dict):
        if x.get("array") is not None:
            a, rate = to_mono(np.asarray(x["array"], dtype=np.float32)), int(x.get("sampling_rate") or sr or TARGET_SR)
        elif x.get("bytes"):
            data, rate = sf.read(io.BytesIO(x["bytes"]), dtype="float32", always_2d=False)
            a = to_mono(data)
        elif x.get("path"):
            a, rate = load_audio(x["path"], sr=None)
        else:
            raise ValueError(f"audio dict has no 'array', 'bytes' or 'path': keys {sorted(x)}")
    elif hasattr(x, "get_all_samples"):  # torchcodec AudioDecoder (datasets >= 4)
        samples = x.get_all_samples()
        a, rate = to_mono(samples.data.numpy()), int(samples.sample_rate)
    else:
        if hasattr(x, "detach"):  # torch tensor
            x = x.detach().cpu().numpy()
        a, rate = to_mono(np.asarray(x, dtype=np.float32)), int(sr or TARGET_SR)
    if target_sr is not None and rate != target_sr:
        a, rate = resample(a, rate, target_sr), target_sr
    return a, rate


# --------------------------------------------------------------------------- checks
#: Thresholds used by :func:`check_audio` (tune per corpus).
SILENCE_PEAK = 1e-3  # peak below this (about -60 dBFS) counts as silent
SILENCE_RMS_DB = -55.0  # or an RMS level below this
CLIP_LEVEL = 0.999  # |sample| at or above this is a clipped sample
CLIP_FRACTION = 1e-3  # more than 0.1% clipped samples flags the clip
MIN_SECONDS = 0.1


@dataclass
class AudioCheck:
    """What :func:`check_audio` found in one clip.

    ``issues`` is a list of short tags: ``empty``, ``non_finite``, ``silent``, ``clipped``,
    ``too_short``, ``wrong_rate``. ``ok`` is True when there are none.
    """

    seconds: float
    sample_rate: int
    peak: float
    rms_db: float
    clipped_fraction: float
    issues: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.issues


def check_audio(audio: np.ndarray, sr: int, expected_sr: int | None = None,
                min_seconds: float = MIN_SECONDS) -> AudioCheck:
    """Inspect one clip for the usual failures (never raises on bad audio)."""
    a = np.asarray(audio, dtype=np.float32).reshape(-1) if np.size(audio) else np.zeros(0, np.float32)
    issues: list[str] = []
    if a.size == 0:
        return AudioCheck(0.0, int(sr), 0.0, -math.inf, 0.0, ["empty"])
    finite = np.isfinite(a)
    if not finite.all():
        issues.append("non_finite")
        a = np.where(finite, a, 0.0).astype(np.float32)
    peak = float(np.max(np.abs(a)))
    level = rms_db(a)
    clipped = float(np.mean(np.abs(a) >= CLIP_LEVEL))
    if peak < SILENCE_PEAK or level < SILENCE_RMS_DB:
        issues.append("silent")
    if clipped > CLIP_FRACTION:
        issues.append("clipped")
    secs = duration(a, sr)
    if secs < min_seconds:
        issues.append("too_short")
    if expected_sr is not None and int(sr) != int(expected_sr):
        issues.append("wrong_rate")
    return AudioCheck(secs, int(sr), peak, level, clipped, issues)


def check_batch(items: Iterable[AudioLike], sr: int | None = None, expected_sr: int | None = None) -> tuple[list[AudioCheck], Counter]:
    """Run :func:`check_audio` over many inputs; returns the checks and a Counter of issues.

    Inputs that cannot even be read count as ``unreadable`` (with a placeholder check).
    The Counter always has ``total`` and ``ok``.
    """
    checks: list[AudioCheck] = []
    counts: Counter = Counter()
    for item in items:
        counts["total"] += 1
        try:
            a, rate = as_array(item, sr=sr, target_sr=None)
            c = check_audio(a, rate, expected_sr=expected_sr)
        except Exception as err:  # noqa: BLE001 - a bad file must be counted, not crash the batch
            c = AudioCheck(0.0, 0, 0.0, -math.inf, 0.0, ["unreadable"], error=f"{type(err).__name__}: {err}")
        checks.append(c)
        counts.update(c.issues)
        if c.ok:
            counts["ok"] += 1
    counts.setdefault("ok", 0)
    return checks, counts


# --------------------------------------------------------------------------- long audio
def chunk_bounds(audio: np.ndarray, sr: int, max_seconds: float = 30.0, search_seconds: float = 3.0,
                 frame_seconds: float = 0.02) -> list[tuple[int, int]]:
    """Split long audio into pieces of at most ``max_seconds``, cutting in quiet places.

    For each cut, the quietest ``frame_seconds`` frame within the last ``search_seconds``
    before the limit is chosen, so words are rarely cut in half (Whisper itself works on
    30 s windows). Returns ``[(start_sample, end_sample), ...]`` covering the whole clip.
    """
    n = len(audio)
    max_len = int(max_seconds * sr)
    if n <= max_len:
        return [(0, n)]
    frame = max(1, int(frame_seconds * sr))
    search = max(frame, int(search_seconds * sr))
    a = np.asarray(audio, dtype=np.float32)
    bounds: list[tuple[int, int]] = []
    start = 0
    while n - start > max_len:
        lo, hi = start + max_len - search, start + max_len
        seg = a[lo:hi]
        k = len(seg) // frame
        energy = (seg[: k * frame].reshape(k, frame) ** 2).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        cut = min(max(cut, start + frame), hi)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def concat_with_pauses(clips: Sequence[np.ndarray], sr: int, pause_seconds: float = 0.5) -> np.ndarray:
    """Join clips with silence between them (to build long test audio)."""
    gap = np.zeros(int(pause_seconds * sr), dtype=np.float32)
    parts: list[np.ndarray] = []
    for i, c in enumerate(clips):
        if i:
            parts.append(gap)
        parts.append(np.asarray(c, dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
