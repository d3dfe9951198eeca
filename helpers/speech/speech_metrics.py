"""Speech metrics: WER with Whisper-style normalisation, DNSMOS, speaker similarity, real-time factor.

- :func:`normalize_text` applies Whisper's English normaliser (from the ``whisper-normalizer``
  package, which ships it with its British -> American spelling map, so it works offline): lower
  case, punctuation removed, numbers spelled the same way ("twenty five" and "25" both become
  "25"), contractions and titles expanded ("Mr." -> "mister"), British spellings made American
  ("colour" -> "color"), fillers and bracketed asides dropped; then neighbouring
  digits are joined on both sides ("five five" and "5 5" both become "55").
- :func:`wer` / :func:`utterance_wer` score hypotheses with jiwer after normalising; empty
  references are counted and kept out of the corpus score instead of crashing.
- :func:`dnsmos` predicts speech quality (Microsoft's DNSMOS P.835 via ``speechmos``);
  :func:`dnsmos_warmup` loads it, so timings that follow measure scoring only.
- :class:`SpeakerEncoder` embeds voices with resemblyzer's GE2E encoder; :func:`speaker_similarity`.
- :func:`real_time_factor` and :class:`RTFTimer` measure speed (wall seconds / audio seconds).
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from helpers.speech.audio import TARGET_SR, as_array, as_list_of_clips


@lru_cache(maxsize=1)
def _normalizer():
    """Whisper's ``EnglishTextNormalizer`` as shipped by the ``whisper-normalizer`` package.

    That package carries OpenAI's code together with its full British -> American spelling map
    (``normalizers/english.json``, about 1,700 words) as package data, so it works offline;
    transformers' copy of the class needs that map passed in, and the map only lives in hub repos.
    """
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def _join_digit_runs(tokens: list[str]) -> list[str]:
    """Join neighbouring digit tokens into one (``5 5`` -> ``55``), reading a lone ``one`` next to
    digits as ``1``.

    Whisper's normaliser joins spelled digits ("five five" -> ``55``, "one two three" -> ``123``)
    but leaves digits that were already written apart ("5 5" stays ``5 5``; "1 2 3" even becomes
    ``one 2 3``, since it keeps "one" as a word). Without this step a correct transcript that
    wrote the digits differently from the reference scores 100% or 200% WER.
    """
    digit = [t.isdigit() for t in tokens]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        run = []
        j = i
        while j < len(tokens) and (digit[j] or (tokens[j] == "one" and (
                (j > 0 and digit[j - 1]) or (j + 1 < len(tokens) and digit[j + 1])))):
            run.append("1" if tokens[j] == "one" else tokens[j])
            j += 1
        if len(run) >= 2:
            out.append("".join(run))
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def whisper_normalize(text: str | None) -> str:
    """Whisper's English normaliser alone, without :func:`normalize_text`'s digit joining
    (to show what number formatting does to WER: ``"five five"`` -> ``55`` but ``"5 5"`` -> ``5 5``)."""
    if not isinstance(text, str) or not text:
        return ""
    return " ".join(w for w in _normalizer()(text).split() if any(c.isalnum() for c in w))


def normalize_text(text: str | None) -> str:
    """Whisper's English text normalisation (``None`` and non-strings become ``""``).

    Leftover tokens with no letter or digit (Whisper's normaliser keeps a lone ``.`` from
    ``"..."``) are dropped, so a reference of only symbols normalises to ``""``. Runs of digits
    are then joined the same way whether they were spelled or written ("five five", "5 5" and
    "55" all become ``55``; see :func:`_join_digit_runs`), so number formatting alone is not an error.
    """
    return " ".join(_join_digit_runs(whisper_normalize(text).split()))


@dataclass
class WERResult:
    """Corpus word error rate and its parts.

    ``wer = (substitutions + deletions + insertions) / reference_words``. ``skipped`` counts
    pairs whose reference was empty after normalisation (they cannot have a WER);
    ``per_utterance`` holds each pair's WER (``nan`` for skipped ones).
    """

    wer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_words: int
    skipped: int = 0
    per_utterance: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"WER {self.wer:.1%} over {self.reference_words} words (S={self.substitutions} D={self.deletions} "
                f"I={self.insertions}; {self.skipped} empty references skipped)")


def _counts(ref: str, hyp: str) -> tuple[int, int, int, int]:
    import jiwer

    if not hyp:
        n = len(ref.split())
        return 0, n, 0, 0
    o = jiwer.process_words(ref, hyp)
    return o.substitutions, o.deletions, o.insertions, o.hits


def _norm_fn(normalize: bool | Callable[[str], str]) -> Callable[[str], str]:
    if callable(normalize):
        return lambda t: normalize(t) if isinstance(t, str) else ""
    return normalize_text if normalize else (lambda t: (t or "").strip())


def utterance_wer(reference: str, hypothesis: str, normalize: bool | Callable[[str], str] = True) -> float:
    """WER of one pair; ``nan`` when the (normalised) reference is empty.

    ``normalize``: ``True`` (:func:`normalize_text`), ``False`` (raw text) or a function of your own,
    for example :func:`whisper_normalize`."""
    norm = _norm_fn(normalize)
    ref, hyp = norm(reference), norm(hypothesis)
    if not ref:
        return float("nan")
    s, d, i, _h = _counts(ref, hyp)
    return (s + d + i) / len(ref.split())


def wer(references: Sequence[str], hypotheses: Sequence[str],
        normalize: bool | Callable[[str], str] = True) -> WERResult:
    """Corpus WER (errors summed over all pairs / reference words summed), Whisper-normalised.

    ``normalize`` as in :func:`utterance_wer`."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    norm = _norm_fn(normalize)
    S = D = I = H = N = skipped = 0
    per: list[float] = []
    for r, h in zip(references, hypotheses):
        ref, hyp = norm(r), norm(h)
        if not ref:
            skipped += 1
            per.append(float("nan"))
            continue
        s, d, i, hits = _counts(ref, hyp)
        n = len(ref.split())
        S, D, I, H, N = S + s, D + d, I + i, H + hits, N + n
        per.append((s + d + i) / n)
    return WERResult((S + D + I) / N if N else float("nan"), S, D, I, H, N, skipped, per)


def wer_diff(references: Sequence[str], hyp_a: Sequence[str], hyp_b: Sequence[str], *, n_boot: int = 2000,
             alpha: float = 0.05, seed: int = 0,
             normalize: bool | Callable[[str], str] = True) -> tuple[float, float, float]:
    """Corpus WER of ``hyp_a`` minus that of ``hyp_b`` on the same references: ``(diff, low, high)``.

    The interval is a paired percentile bootstrap over utterances: each resample draws utterances
    with replacement and recomputes both corpus WERs (errors summed / reference words summed) on
    the same draw, so a hard utterance counts against both systems at once. Utterances whose
    normalised reference is empty are left out, as in :func:`wer`.
    """
    if not len(references) == len(hyp_a) == len(hyp_b):
        raise ValueError(f"{len(references)} references, {len(hyp_a)} and {len(hyp_b)} hypotheses")
    norm = _norm_fn(normalize)
    words, err_a, err_b = [], [], []
    for r, a, b in zip(references, hyp_a, hyp_b):
        ref = norm(r)
        if not ref:
            continue
        n = len(ref.split())
        words.append(n)
        err_a.append(sum(_counts(ref, norm(a))[:3]))
        err_b.append(sum(_counts(ref, norm(b))[:3]))
    if not words:
        return float("nan"), float("nan"), float("nan")
    w, ea, eb = (np.asarray(x, dtype=float) for x in (words, err_a, err_b))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(w), (n_boot, len(w)))
    boots = (ea[idx].sum(1) - eb[idx].sum(1)) / w[idx].sum(1)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float((ea.sum() - eb.sum()) / w.sum()), float(lo), float(hi)


# --------------------------------------------------------------------------- DNSMOS
@dataclass
class QualityScores:
    """DNSMOS P.835 scores (1 to 5): speech signal, background, overall, and P.808 overall."""

    sig: float
    bak: float
    ovrl: float
    p808: float
    error: str | None = None


_NAN_Q = dict(sig=float("nan"), bak=float("nan"), ovrl=float("nan"), p808=float("nan"))


def dnsmos(audios: Sequence[Any] | Any, sample_rate: int | None = None, progress: bool = False,
           min_seconds: float = 0.5) -> list[QualityScores]:
    """DNSMOS quality scores for each clip (resampled to 16 kHz; peaks above 1 are scaled down).

    Empty, silent, too short (under ``min_seconds``) or unreadable clips get ``nan`` scores and an
    ``error`` tag instead of crashing (speechmos would loop forever on empty audio).
    """
    from speechmos import dnsmos as _dns
    from tqdm.auto import tqdm

    items = as_list_of_clips(audios)
    out: list[QualityScores] = []
    for item in tqdm(items, desc="DNSMOS", disable=not progress, leave=False):
        try:
            a, _ = as_array(item, sr=sample_rate, target_sr=TARGET_SR)
        except Exception as err:  # noqa: BLE001
            out.append(QualityScores(**_NAN_Q, error=f"unreadable: {type(err).__name__}"))
            continue
        a = np.nan_to_num(a.astype(np.float32))
        peak = float(np.max(np.abs(a))) if a.size else 0.0
        if a.size < min_seconds * TARGET_SR:
            out.append(QualityScores(**_NAN_Q, error="too_short" if a.size else "empty"))
            continue
        if peak < 1e-4:
            out.append(QualityScores(**_NAN_Q, error="silent"))
            continue
        if peak > 1.0:
            a = a / peak
        r = _dns.run(a, TARGET_SR)
        out.append(QualityScores(float(r["sig_mos"]), float(r["bak_mos"]), float(r["ovrl_mos"]), float(r["p808_mos"])))
    return out


def dnsmos_warmup() -> float:
    """Load the DNSMOS ONNX models and score one dummy clip; returns the seconds it took.

    speechmos loads its two ONNX sessions on the first call, and librosa's mel filter bank and
    onnxruntime's first run are slow once: together several seconds, more than scoring a dozen
    clips. Call this before timing :func:`dnsmos` so a real-time factor measures scoring only.
    DNSMOS itself scores 9 s windows with a 1 s hop (shorter clips are repeated up to 9 s), so its
    cost per clip is one window for clips up to 10 s and grows with length after that.
    """
    t0 = time.perf_counter()
    tone = 0.1 * np.sin(2 * np.pi * 200 * np.arange(TARGET_SR) / TARGET_SR).astype(np.float32)
    dnsmos([tone])
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- speaker similarity
class SpeakerEncoder:
    """resemblyzer's GE2E speaker encoder: one 256-d unit vector per clip.

    Silent or empty clips (nothing left after resemblyzer's voice-activity trimming) give a
    vector of ``nan`` and are counted in :attr:`last_counts`.
    """

    def __init__(self, device: str = "cpu"):
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder(device, verbose=False)
        self.last_counts: Counter = Counter()

    def embed(self, audios: Sequence[Any], sample_rate: int | None = None, progress: bool = False) -> np.ndarray:
        """Embeddings of shape ``(n, 256)`` (rows of ``nan`` for clips with no speech)."""
        from resemblyzer import preprocess_wav
        from tqdm.auto import tqdm

        rows = []
        self.last_counts = Counter()
        for item in tqdm(as_list_of_clips(audios), desc="speaker embeddings", disable=not progress, leave=False):
            try:
                a, _ = as_array(item, sr=sample_rate, target_sr=TARGET_SR)
                a = np.nan_to_num(a)
                if a.size == 0 or float(np.max(np.abs(a))) < 1e-4:
                    raise ValueError("empty or silent")
                wav = preprocess_wav(a, source_sr=TARGET_SR)
                if len(wav) < TARGET_SR * 0.3:
                    raise ValueError("less than 0.3 s of speech")
                rows.append(self.encoder.embed_utterance(wav).astype(np.float32))
                self.last_counts["ok"] += 1
            except Exception:  # noqa: BLE001 - counted
                rows.append(np.full(256, np.nan, dtype=np.float32))
                self.last_counts["no_speech"] += 1
        return np.stack(rows) if rows else np.zeros((0, 256), np.float32)


def speaker_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix between two sets of speaker embeddings (``nan`` rows stay ``nan``)."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float32))
    b = np.atleast_2d(np.asarray(b, dtype=np.float32))
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    return an @ bn.T


# --------------------------------------------------------------------------- speed
def real_time_factor(wall_seconds: float, audio_seconds: float) -> float:
    """Processing time divided by audio duration (0.1 = ten times faster than real time)."""
    if audio_seconds <= 0:
        return float("nan")
    return float(wall_seconds) / float(audio_seconds)


class RTFTimer:
    """Context manager measuring a real-time factor.

    >>> with RTFTimer() as t:                 # doctest: +SKIP
    ...     clips = synthesize(texts)
    ...     t.audio_seconds = sum(c.seconds for c in clips)
    >>> t.rtf
    """

    def __init__(self, audio_seconds: float = 0.0):
        self.audio_seconds = audio_seconds
        self.wall_seconds = float("nan")

    def __enter__(self) -> "RTFTimer":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_seconds = time.perf_counter() - self._t0

    @property
    def rtf(self) -> float:
        return real_time_factor(self.wall_seconds, self.audio_seconds)


def nanmean(values: Iterable[float]) -> float:
    """Mean of the finite values (``nan`` when there are none)."""
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else float("nan")
