"""Audio degradations that real speech pipelines use as augmentation (chapter 14).

Every function takes a mono float32 array and its sample rate and returns a new float32 array of
the *same length and rate*, so a clean clip and its degraded copy line up sample for sample (for
players, spectrograms, WER and DNSMOS side by side).

- :func:`white_noise`: Gaussian noise at an SNR (audiomentations ``AddGaussianSNR``).
- :func:`babble` and :func:`mix_at_snr`: "cocktail party" noise summed from other talkers' clips,
  mixed at an exact SNR. Written here because audiomentations' ``AddBackgroundNoise`` reads noise
  files from a folder, while our babble lives in memory; the mix is the one-line SNR formula.
- :func:`room_ir` and :func:`reverberate`: a shoebox room simulated with pyroomacoustics' image
  source method for a target RT60 (Sabine's formula inverted), convolved with scipy's FFT
  convolution; :func:`measured_rt60` reads the RT60 back from the impulse response.
- :func:`bandpass`: a Butterworth band-pass (scipy), e.g. the 300-3400 Hz telephone band.
- :func:`codec_roundtrip`: encode and decode in memory with libsndfile (through soundfile):
  MP3, Opus and Vorbis at a compression level, and the telephone codecs µ-law, A-law and
  GSM 6.10 (8 kHz). Returns the decoded audio and the bitrate actually measured.
- :func:`telephone`: the whole telephone chain: band-pass, 8 kHz, a telephone codec, back up.
- :func:`degrade`: one entry point ``(kind, strength)`` for sweeping a grid of conditions.
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from helpers.speech.audio import resample

#: codec name -> (soundfile format, subtype, sample rates it accepts or None for any)
CODECS: dict[str, tuple[str, str, tuple[int, ...] | None]] = {
    "mp3": ("MP3", "MPEG_LAYER_III", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "opus": ("OGG", "OPUS", (8000, 12000, 16000, 24000, 48000)),
    "vorbis": ("OGG", "VORBIS", None),
    "ulaw": ("WAV", "ULAW", None),
    "alaw": ("WAV", "ALAW", None),
    "gsm": ("WAV", "GSM610", (8000,)),
}
#: codecs whose size is set by ``compression_level`` (the others have a fixed bitrate)
VARIABLE_BITRATE = ("mp3", "opus", "vorbis")
#: the kinds :func:`degrade` knows, with what ``strength`` means for each
KINDS = {
    "white": "SNR in dB (lower is stronger)",
    "babble": "SNR in dB (lower is stronger); needs babble_noise",
    "reverb": "RT60 in seconds (higher is stronger)",
    "telephone": "telephone codec: 'none' (band-pass and 8 kHz only), 'ulaw', 'alaw' or 'gsm'",
    "mp3": "compression level 0..0.99 (higher is smaller and worse)",
    "opus": "compression level 0..1 (higher is smaller and worse)",
}


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim != 1:
        raise ValueError(f"expected mono 1-D audio, got shape {a.shape}")
    if a.size == 0:
        raise ValueError("audio is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or inf")
    return a


def _fit(a: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``a`` to ``n`` samples (codecs and resampling add or drop a few)."""
    return a[:n] if a.size >= n else np.pad(a, (0, n - a.size))


def _power(a: np.ndarray) -> float:
    return float(np.mean(np.square(a, dtype=np.float64)))


# --------------------------------------------------------------------------- noise
def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g * noise`` with ``g`` chosen so that the speech-to-noise power ratio is ``snr_db``.

    ``noise`` is tiled or cut to the speech length. Raises ``ValueError`` on silent speech or
    noise (no SNR exists). The sum is not renormalised, so a peak above 1 can occur at low SNR;
    callers that write 16-bit files should :func:`helpers.speech.audio.peak_normalize` first.
    """
    s = _mono(speech)
    n = _mono(noise)
    if n.size < s.size:
        n = np.tile(n, int(np.ceil(s.size / n.size)))
    n = n[: s.size]
    ps, pn = _power(s), _power(n)
    if ps == 0.0 or pn == 0.0:
        raise ValueError("speech and noise must both have non-zero power to set an SNR")
    g = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (s + g * n).astype(np.float32)


def white_noise(audio: np.ndarray, sr: int, snr_db: float, seed: int | None = None) -> np.ndarray:
    """Gaussian white noise at ``snr_db`` (audiomentations ``AddGaussianSNR``, seeded).

    The noise is drawn with the standard deviation for that SNR, so the realised SNR of a short
    clip differs by sampling noise (about 0.1 dB for half a second).
    """
    from audiomentations import AddGaussianSNR

    a = _mono(audio)
    np.random.seed(None if seed is None else int(seed) % 2**32)  # audiomentations draws from numpy's global RNG
    return AddGaussianSNR(min_snr_db=float(snr_db), max_snr_db=float(snr_db), p=1.0)(samples=a, sample_rate=sr)


def babble(clips: Sequence[np.ndarray], length: int, n_talkers: int = 4, seed: int | None = None) -> np.ndarray:
    """Babble noise of ``length`` samples: ``n_talkers`` random clips, each at the same power, summed.

    Each talker is a clip from ``clips`` looped to ``length`` and rolled by a random offset, so the
    talkers do not start together. Use clips of speakers *other* than the one the babble will cover.
    """
    if n_talkers < 1:
        raise ValueError("n_talkers must be >= 1")
    usable = [np.asarray(c, dtype=np.float32) for c in clips if np.size(c) and _power(np.asarray(c)) > 0]
    if not usable:
        raise ValueError("babble needs at least one non-silent clip")
    rng = np.random.default_rng(seed)
    out = np.zeros(length, dtype=np.float64)
    for i in rng.choice(len(usable), size=n_talkers, replace=len(usable) < n_talkers):
        c = usable[i]
        c = np.tile(c, int(np.ceil(length / c.size)))[:length]
        c = np.roll(c, int(rng.integers(0, length)))
        out += c / np.sqrt(_power(c))
    return (out / np.sqrt(max(_power(out), 1e-20)) * 0.1).astype(np.float32)


# --------------------------------------------------------------------------- reverberation
def room_ir(rt60: float, sr: int = 16000, room_dim: Sequence[float] = (6.0, 5.0, 3.0),
            seed: int | None = None) -> np.ndarray:
    """Impulse response of a simulated shoebox room with reverberation time ``rt60`` seconds.

    pyroomacoustics' ``inverse_sabine`` gives the wall absorption and reflection order for the target
    RT60; the source and microphone are placed at random (seeded) points at least 1 m apart and
    0.5 m from the walls. The response is scaled to a unit peak (the direct path). Rooms with
    RT60 near 1 s take about 2 s to simulate on a CPU: make a small bank and reuse it.
    """
    import pyroomacoustics as pra

    if not rt60 > 0:
        raise ValueError(f"rt60 must be > 0 seconds, got {rt60}")
    dim = np.asarray(room_dim, dtype=float)
    try:
        absorption, max_order = pra.inverse_sabine(float(rt60), dim)
    except ValueError as err:  # a room too small for that RT60 cannot reach it
        raise ValueError(f"a {tuple(dim)} m room cannot have RT60 {rt60} s: {err}") from err
    rng = np.random.default_rng(seed)
    for _ in range(100):
        src, mic = rng.uniform(0.5, dim - 0.5), rng.uniform(0.5, dim - 0.5)
        if np.linalg.norm(src - mic) >= 1.0:
            break
    room = pra.ShoeBox(dim, fs=sr, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float32)
    return h / np.max(np.abs(h))


def measured_rt60(rir: np.ndarray, sr: int) -> float:
    """RT60 read from an impulse response (pyroomacoustics' Schroeder-curve fit over 30 dB of decay)."""
    import pyroomacoustics as pra

    return float(pra.experimental.measure_rt60(np.asarray(rir, dtype=float), fs=sr, decay_db=30))


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve ``audio`` with ``rir`` (scipy FFT convolution), aligned on the direct path.

    The output starts at the direct sound (the propagation delay before the impulse response's
    peak is dropped), keeps the input length (the reverberant tail past the end is cut) and has
    the input's RMS level, so WER and DNSMOS compare reverberation, not loudness or a time shift.
    """
    from scipy.signal import fftconvolve

    a = _mono(audio)
    h = _mono(rir)
    delay = int(np.argmax(np.abs(h)))
    y = fftconvolve(a, h)[delay: delay + a.size]
    y = _fit(y, a.size)
    py = _power(y)
    return (y * np.sqrt(_power(a) / py) if py > 0 else y).astype(np.float32)


# --------------------------------------------------------------------------- filters and codecs
def bandpass(audio: np.ndarray, sr: int, low: float = 300.0, high: float = 3400.0, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth band-pass ``low``..``high`` Hz (scipy ``butter`` + ``sosfiltfilt``)."""
    from scipy.signal import butter, sosfiltfilt

    a = _mono(audio)
    if not 0 < low < high < sr / 2:
        raise ValueError(f"need 0 < low < high < sr/2, got low={low}, high={high}, sr={sr}")
    sos = butter(order // 2, [low, high], btype="bandpass", fs=sr, output="sos")
    return sosfiltfilt(sos, a).astype(np.float32)


def codec_roundtrip(audio: np.ndarray, sr: int, codec: str, level: float | None = None) -> tuple[np.ndarray, float]:
    """Encode ``audio`` with ``codec`` in memory and decode it again; returns ``(decoded, kbps)``.

    ``codec`` is a key of :data:`CODECS`. ``level`` is libsndfile's compression level (0 = best
    quality, largest file; about 0.99 = smallest) for MP3, Opus and Vorbis; the telephone codecs
    have a fixed bitrate and take no level. ``kbps`` is measured from the encoded size (container
    included). Raises ``ValueError`` for an unknown codec or a sample rate the codec cannot carry
    (GSM 6.10 is 8 kHz only; resample first, as :func:`telephone` does).
    """
    import soundfile as sf

    a = _mono(audio)
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose from {sorted(CODECS)}")
    fmt, subtype, rates = CODECS[codec]
    if rates is not None and sr not in rates:
        raise ValueError(f"{codec} cannot encode {sr} Hz audio; supported rates: {rates}")
    if level is not None and codec not in VARIABLE_BITRATE:
        raise ValueError(f"{codec} has a fixed bitrate; pass level=None")
    if level is not None and not 0.0 <= level <= 1.0:
        raise ValueError(f"level must be in [0, 1], got {level}")
    buf = io.BytesIO()
    sf.write(buf, np.clip(a, -1.0, 1.0), sr, format=fmt, subtype=subtype, compression_level=level)
    nbytes = buf.tell()
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    y = y if y.ndim == 1 else y.mean(axis=1)
    return _fit(y.astype(np.float32), a.size), nbytes * 8 / (a.size / sr) / 1000.0


def telephone(audio: np.ndarray, sr: int, codec: str | None = "ulaw", narrow_sr: int = 8000,
              low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """The telephone chain: band-pass ``low``..``high`` Hz, resample to ``narrow_sr``, a telephone
    codec (``"ulaw"``, ``"alaw"``, ``"gsm"`` or ``None``), then back to ``sr`` (the missing band stays empty).
    """
    if codec not in (None, "none", "ulaw", "alaw", "gsm"):
        raise ValueError(f"telephone codec must be None, 'ulaw', 'alaw' or 'gsm', got {codec!r}")
    a = _mono(audio)
    nb = resample(bandpass(a, sr, low, high), sr, narrow_sr)
    if codec not in (None, "none"):
        nb, _ = codec_roundtrip(nb, narrow_sr, codec)
    return _fit(resample(nb, narrow_sr, sr), a.size)


# --------------------------------------------------------------------------- one entry point
def degrade(audio: np.ndarray, sr: int, kind: str, strength, *, babble_noise: np.ndarray | None = None,
            rir: np.ndarray | None = None, seed: int | None = None) -> np.ndarray:
    """Apply one degradation of :data:`KINDS` at ``strength``; ``kind="clean"`` returns a copy.

    ``reverb`` simulates a room for ``strength`` (RT60) unless a precomputed ``rir`` is given.
    """
    a = _mono(audio)
    if kind == "clean":
        return a.copy()
    if kind == "white":
        return white_noise(a, sr, float(strength), seed=seed)
    if kind == "babble":
        if babble_noise is None:
            raise ValueError("babble needs babble_noise (see babble())")
        return mix_at_snr(a, babble_noise, float(strength))
    if kind == "reverb":
        return reverberate(a, rir if rir is not None else room_ir(float(strength), sr, seed=seed))
    if kind == "telephone":
        return telephone(a, sr, codec=strength)
    if kind in ("mp3", "opus"):
        return codec_roundtrip(a, sr, kind, float(strength))[0]
    raise ValueError(f"unknown kind {kind!r}; choose from clean, {', '.join(KINDS)}")
