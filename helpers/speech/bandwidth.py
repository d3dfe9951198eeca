"""Bandwidth extension: put back the 4-8 kHz band that 8 kHz (telephone) audio lost (chapter 14).

Moshi's Fisher conversations were 8 kHz telephone audio, upsampled to 24 kHz with AudioSR, a
258M-parameter latent diffusion model. Here three small methods make 16 kHz audio from 8 kHz audio:

- :func:`zero_fill`: plain resampling (librosa/soxr via :func:`helpers.speech.audio.resample`): the
  upper band stays empty. The baseline every method must beat.
- :func:`spectral_fold`: the classic trick from early telephone bandwidth extension: upsample by
  inserting zeros *without* the anti-imaging filter, so the 0-4 kHz spectrum appears mirrored in
  4-8 kHz; keep only that mirror image, scaled by a gain, on top of the zero-filled signal.
  :func:`fit_fold_gain` picks the gain that fits training clips best.
- :class:`BandwidthExtender`: a small MLP (torch) trained to predict the upper band's log magnitude
  spectrum from a few frames of the lower band's; the phase comes from the folded signal and
  librosa's inverse STFT makes the waveform. Written by hand because it is the lesson: the whole
  model is a few dozen lines and trains in seconds on a CPU.

:func:`log_spectral_distance` measures how close a result is to the original wideband audio.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from helpers.speech.audio import resample

N_FFT = 512
HOP = 128


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"expected non-empty mono 1-D audio, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("audio contains NaN or inf")
    return a


def _check_rates(narrow_sr: int, wide_sr: int) -> int:
    if wide_sr % narrow_sr or wide_sr <= narrow_sr:
        raise ValueError(f"wide_sr must be an integer multiple (> 1) of narrow_sr, got {narrow_sr} -> {wide_sr}")
    return wide_sr // narrow_sr


def narrowband(audio: np.ndarray, sr: int = 16000, narrow_sr: int = 8000) -> np.ndarray:
    """``audio`` resampled down to ``narrow_sr`` (the anti-aliasing filter drops everything above narrow_sr/2)."""
    return resample(_mono(audio), sr, narrow_sr)


def zero_fill(audio_nb: np.ndarray, narrow_sr: int = 8000, wide_sr: int = 16000) -> np.ndarray:
    """Resample up to ``wide_sr``: the band above ``narrow_sr/2`` stays (almost) empty."""
    _check_rates(narrow_sr, wide_sr)
    return resample(_mono(audio_nb), narrow_sr, wide_sr)


def _highpass(a: np.ndarray, sr: int, cutoff: float) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(8, cutoff, btype="highpass", fs=sr, output="sos")
    return sosfiltfilt(sos, a).astype(np.float32)


def folded_band(audio_nb: np.ndarray, narrow_sr: int = 8000, wide_sr: int = 16000) -> np.ndarray:
    """Only the mirror image: zero-insertion upsampling, high-passed above ``narrow_sr/2`` (unit gain)."""
    factor = _check_rates(narrow_sr, wide_sr)
    a = _mono(audio_nb)
    up = np.zeros(a.size * factor, dtype=np.float32)
    up[::factor] = a * factor
    return _highpass(up, wide_sr, 0.98 * narrow_sr / 2)


def spectral_fold(audio_nb: np.ndarray, gain: float = 0.3, narrow_sr: int = 8000, wide_sr: int = 16000) -> np.ndarray:
    """Zero-filled signal plus ``gain`` times the mirrored image of the lower band in the upper band."""
    base = zero_fill(audio_nb, narrow_sr, wide_sr)
    img = folded_band(audio_nb, narrow_sr, wide_sr)
    n = min(base.size, img.size)
    return (base[:n] + gain * img[:n]).astype(np.float32)


def fit_fold_gain(wideband: Sequence[np.ndarray], sr: int = 16000, narrow_sr: int = 8000,
                  gains: Sequence[float] = tuple(np.geomspace(0.003, 1.0, 16))) -> float:
    """The folding gain, from ``gains``, with the lowest mean upper-band :func:`log_spectral_distance`
    over the training clips (matching the band's total power instead makes the mirrored low
    formants far too loud near ``sr/2``, worse than leaving the band empty)."""
    clips = [_mono(w) for w in wideband]
    if not clips:
        raise ValueError("fit_fold_gain needs at least one clip")
    parts = []
    for w in clips:
        nb = narrowband(w, sr, narrow_sr)
        parts.append((w, zero_fill(nb, narrow_sr, sr)[: w.size], folded_band(nb, narrow_sr, sr)[: w.size]))
    scores = [np.mean([log_spectral_distance(w[: z.size], z + g * f, sr) for w, z, f in parts]) for g in gains]
    return float(gains[int(np.argmin(scores))])


def _stft(a: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.stft(a, n_fft=N_FFT, hop_length=HOP, center=True)


def log_spectral_distance(reference: np.ndarray, estimate: np.ndarray, sr: int = 16000,
                          band: tuple[float, float] | None = (4000.0, 8000.0), floor_db: float = 80.0) -> float:
    """Log-spectral distance in dB between two equally long clips, averaged over frames.

    Per STFT frame: the root mean square, over the frequency bins in ``band`` (``None`` = all), of
    the difference of the two power spectra in dB; then the mean over frames. Both spectra are
    floored at ``floor_db`` below the reference's loudest bin, so digital silence counts as a large
    but finite error, and frames whose reference is silent in the band are not counted.
    0 means identical; zero-filled telephone audio typically scores tens of dB in the upper band.
    """
    r, e = _mono(reference), _mono(estimate)
    n = min(r.size, e.size)
    if abs(r.size - e.size) > HOP:
        raise ValueError(f"clips differ in length: {r.size} vs {e.size} samples")
    R = np.abs(_stft(r[:n])) ** 2
    E = np.abs(_stft(e[:n])) ** 2
    f = np.linspace(0, sr / 2, R.shape[0])
    sel = np.ones_like(f, dtype=bool) if band is None else (f >= band[0]) & (f <= band[1])
    floor = R.max() * 10 ** (-floor_db / 10)
    if floor <= 0:
        raise ValueError("the reference is silent")
    Rd = 10 * np.log10(np.maximum(R[sel], floor))
    Ed = 10 * np.log10(np.maximum(E[sel], floor))
    active = R[sel].max(axis=0) > floor
    if not active.any():
        raise ValueError("the reference has no energy in that band")
    d = np.sqrt(np.mean((Rd - Ed) ** 2, axis=0))
    return float(d[active].mean())


# --------------------------------------------------------------------------- the learned model
def _frames_db(a: np.ndarray) -> np.ndarray:
    return (20 * np.log10(np.abs(_stft(a)) + 1e-6)).T.astype(np.float32)  # (frames, bins)


def _context(low_db: np.ndarray, context: int) -> np.ndarray:
    pad = np.pad(low_db, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([pad[i: i + low_db.shape[0]] for i in range(2 * context + 1)], axis=1)


@dataclass
class BandwidthExtender:
    """A small MLP from lower-band to upper-band log spectra (8 kHz -> 16 kHz by default).

    Inputs: the dB magnitudes of the bins below ``narrow_sr/2`` of the zero-filled signal, for the
    frame and ``context`` frames on each side; targets: the dB magnitudes of the bins above it. Both
    are taken relative to the frame's mean lower-band level, so loudness does not matter.
    ``fit`` trains on wideband clips (it makes the narrowband input itself); ``extend`` turns an
    8 kHz clip into a 16 kHz one with the predicted upper-band magnitudes and the folded signal's phase.
    """
    narrow_sr: int = 8000
    wide_sr: int = 16000
    context: int = 2
    hidden: int = 128
    seed: int = 0
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_rates(self.narrow_sr, self.wide_sr)
        bins = N_FFT // 2 + 1
        self.cut = int(round((self.narrow_sr / 2) / (self.wide_sr / 2) * (bins - 1)))  # first upper-band bin
        self.n_in = (self.cut) * (2 * self.context + 1)
        self.n_out = bins - self.cut
        self.model = None

    def _features(self, zf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Context features of the lower band and each frame's level (mean lower-band dB), which the
        features and the targets are taken relative to, so the model does not depend on loudness."""
        low = _frames_db(zf)[:, : self.cut]
        level = low.mean(axis=1, keepdims=True)
        return _context(low - level, self.context), level

    def _pairs(self, clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for w in clips:
            w = _mono(w)
            nb = narrowband(w, self.wide_sr, self.narrow_sr)
            zf = zero_fill(nb, self.narrow_sr, self.wide_sr)[: w.size]
            x, level = self._features(zf)
            y = _frames_db(w[: zf.size])
            active = y.max(axis=1) > y.max() - 60  # skip frames of digital silence
            xs.append(x[active])
            ys.append((y[:, self.cut:] - level)[active])
        return np.concatenate(xs), np.concatenate(ys)

    def fit(self, clips: Sequence[np.ndarray], epochs: int = 20, batch_size: int = 512, lr: float = 3e-3,
            max_frames: int | None = 12000, progress: bool = False) -> "BandwidthExtender":
        """Train on wideband clips at ``wide_sr``; ``history`` gets the training loss (dB^2) per epoch.

        ``max_frames``: train on at most this many STFT frames, drawn at random (seeded) from all the
        clips, which bounds the cost on a CPU; ``None`` keeps every frame.
        """
        import torch
        from tqdm.auto import trange

        if not len(clips):
            raise ValueError("fit needs at least one clip")
        x, y = self._pairs(clips)
        if max_frames is not None and len(x) > max_frames:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(x), max_frames, replace=False))
            x, y = x[keep], y[keep]
        self.x_mean, self.x_std = x.mean(0), x.std(0) + 1e-3
        self.y_mean, self.y_std = y.mean(0), y.std(0) + 1e-3
        X = torch.from_numpy((x - self.x_mean) / self.x_std)
        Y = torch.from_numpy((y - self.y_mean) / self.y_std)
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(self.n_in, self.hidden), torch.nn.GELU(),
            torch.nn.Linear(self.hidden, self.hidden), torch.nn.GELU(),
            torch.nn.Linear(self.hidden, self.n_out))
        opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        self.history = []
        for _ in trange(epochs, desc="bandwidth model", disable=not progress, leave=False):
            perm = torch.randperm(len(X), generator=g)
            total = 0.0
            for i in range(0, len(X), batch_size):
                idx = perm[i: i + batch_size]
                loss = torch.nn.functional.mse_loss(self.model(X[idx]), Y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            sched.step()
            self.history.append(total / len(X) * float(np.mean(self.y_std ** 2)))
        self.n_frames = len(X)
        return self

    @property
    def n_params(self) -> int:
        return 0 if self.model is None else sum(p.numel() for p in self.model.parameters())

    def extend(self, audio_nb: np.ndarray) -> np.ndarray:
        """An 8 kHz clip -> a ``wide_sr`` clip: zero-filled lower band plus the predicted upper band."""
        import librosa
        import torch

        if self.model is None:
            raise RuntimeError("call fit() first")
        zf = zero_fill(audio_nb, self.narrow_sr, self.wide_sr)
        Z = _stft(zf)
        x, level = self._features(zf)
        with torch.no_grad():
            y = self.model(torch.from_numpy((x - self.x_mean) / self.x_std)).numpy() * self.y_std + self.y_mean
        y = y + level
        phase = np.angle(_stft(folded_band(audio_nb, self.narrow_sr, self.wide_sr)[: zf.size]))
        n = min(Z.shape[1], phase.shape[1])
        out = Z[:, :n].copy()
        out[self.cut:] = (10 ** (y[:n].T / 20)) * np.exp(1j * phase[self.cut:, :n])
        return librosa.istft(out, hop_length=HOP, n_fft=N_FFT, length=zf.size).astype(np.float32)
