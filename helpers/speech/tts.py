"""Text to speech: the bundled Piper voice and espeak-ng voices behind one interface.

Two engines ship with the course and load offline (see ``MODELS.md``):

* **Piper** ``piper-joe``: a neural (VITS) voice, one US male speaker, natural sounding.
* **espeak-ng**: a formant synthesiser with many accents and male/female variants;
  robotic, but it gives *voice diversity* for free.

Everything goes through :class:`TTS`::

    tts = TTS(speed=1.0)
    clip = tts.synthesize("Hello there.", "espeak:en+f2")
    batch = tts.synthesize_batch(texts, assign_voices(len(texts), mode="random", seed=0))
    print(batch.report())

Voices are chosen from :data:`CATALOGUE` (tagged by engine, gender and accent) with
:func:`assign_voices`: ``mode="random"`` draws a random male or female voice per item (the
way LLaMA-Omni's InstructS2S data varies speakers), ``mode="consistent"`` gives every item
the same voice (the way Moshi trains on one voice of its own).

Bad input never crashes a batch and is never lost silently: every text gets a :class:`Clip`
whose ``status`` says what happened (``ok``, ``empty``, ``no_speakable``, ``too_long``,
``silent``, ``error``), and :class:`TTSBatch` counts them.

All audio is mono float32 in [-1, 1] at :attr:`TTS.sample_rate` (22,050 Hz by default, the
native rate of both engines; other rates are resampled with :func:`helpers.speech.audio.resample`).
"""
from __future__ import annotations

import functools
import io
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from helpers.speech.audio import add_noise, resample, save_audio

#: Native sample rate of the Piper ``medium`` voice and of espeak-ng.
NATIVE_SAMPLE_RATE = 22050
#: espeak-ng's default speaking rate in words per minute (``speed=1.0``).
ESPEAK_BASE_WPM = 175
#: Statuses a :class:`Clip` can have; only ``ok`` clips carry audio.
STATUSES = ("ok", "empty", "no_speakable", "too_long", "silent", "error")


# --------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class Voice:
    """One voice in the catalogue.

    Attributes:
        name: the id used everywhere (``"piper-joe"``, ``"espeak:en+f2"``).
        engine: ``"piper"`` or ``"espeak"``.
        gender: ``"male"`` or ``"female"``.
        accent: a short accent tag (``"US"``, ``"GB"``, ``"Scottish"``, ...).
        spec: what the engine needs: a bundled model name or path (Piper), or an espeak-ng
            voice string such as ``"en-us+f3"``.
        pitch: espeak-ng base pitch 0..99 (``None`` keeps the variant's own).
        description: one line for learners.
    """

    name: str
    engine: str
    gender: str
    accent: str
    spec: str
    pitch: int | None = None
    description: str = ""


def _espeak(voice: str, gender: str, accent: str, description: str, pitch: int | None = None) -> Voice:
    return Voice(f"espeak:{voice}", "espeak", gender, accent, voice, pitch, description)


#: The voices this course can use offline, by name. espeak-ng ``+mN`` variants are male
#: and ``+fN`` female (the variant files in ``espeak-ng-data/voices/!v`` say so). Careful:
#: espeak-ng silently ignores a variant on a *language* alias such as ``en-gb+f2`` (it speaks
#: plain ``en-gb``), so British voices use the voice name ``en``; a unit test checks that every
#: catalogue voice sounds different.
CATALOGUE: dict[str, Voice] = {
    v.name: v
    for v in [
        Voice("piper-joe", "piper", "male", "US", "piper-joe", None, "Piper en_US-joe-medium, neural"),
        _espeak("en-us+m1", "male", "US", "espeak-ng American, male variant 1"),
        _espeak("en-us+m3", "male", "US", "espeak-ng American, male variant 3"),
        _espeak("en+m2", "male", "GB", "espeak-ng British (voice \"en\"), male variant 2"),
        _espeak("en-gb-scotland+m4", "male", "Scottish", "espeak-ng Scottish, male variant 4"),
        _espeak("en-029+m7", "male", "Caribbean", "espeak-ng Caribbean, male variant 7"),
        _espeak("en-us+f1", "female", "US", "espeak-ng American, female variant 1"),
        _espeak("en-us+f3", "female", "US", "espeak-ng American, female variant 3"),
        _espeak("en+f2", "female", "GB", "espeak-ng British (voice \"en\"), female variant 2"),
        _espeak("en-gb-x-rp+f4", "female", "GB (RP)", "espeak-ng Received Pronunciation, female variant 4"),
        _espeak("en-gb-scotland+f5", "female", "Scottish", "espeak-ng Scottish, female variant 5"),
        _espeak("en-us-nyc+f2", "female", "US (NYC)", "espeak-ng New York City, female variant 2"),
    ]
}


def get_voice(name: str | Voice) -> Voice:
    """Look a voice up by name.

    Besides catalogue names this accepts any ``"espeak:<voice>"`` string (gender guessed
    from a ``+f``/``+m`` variant, accent ``"?"``) and any ``.onnx`` Piper voice path.
    """
    if isinstance(name, Voice):
        return name
    if name in CATALOGUE:
        return CATALOGUE[name]
    if name.startswith("espeak:"):
        spec = name.split(":", 1)[1]
        if not spec or not re.fullmatch(r"[A-Za-z0-9_+\-]+", spec):
            raise ValueError(f"bad espeak-ng voice string {spec!r}")
        variant = spec.split("+", 1)[1] if "+" in spec else ""
        gender = "female" if variant.startswith("f") else "male" if variant.startswith("m") else "unknown"
        return Voice(name, "espeak", gender, "?", spec, None, "espeak-ng voice (not in the catalogue)")
    if name.endswith(".onnx"):
        return Voice(name, "piper", "unknown", "?", name, None, "Piper voice file (not in the catalogue)")
    raise KeyError(f"unknown voice {name!r}; catalogue: {', '.join(CATALOGUE)} (or 'espeak:<voice>', or a .onnx path)")


def voices(gender: str | None = None, accent: str | None = None, engine: str | None = None) -> list[Voice]:
    """Catalogue voices filtered by gender, accent (prefix match) and/or engine."""
    out = []
    for v in CATALOGUE.values():
        if gender and v.gender != gender:
            continue
        if engine and v.engine != engine:
            continue
        if accent and not v.accent.lower().startswith(accent.lower()):
            continue
        out.append(v)
    return out


def catalogue_table() -> list[dict]:
    """The catalogue as rows (for ``pandas.DataFrame``), with whether each engine is installed."""
    ok = {"piper": _piper_available(), "espeak": shutil.which("espeak-ng") is not None}
    return [
        {"voice": v.name, "engine": v.engine, "gender": v.gender, "accent": v.accent,
         "installed": ok[v.engine], "description": v.description}
        for v in CATALOGUE.values()
    ]


def assign_voices(
    n: int,
    mode: str = "random",
    *,
    voice: str = "piper-joe",
    pool: Sequence[str] | None = None,
    p_female: float = 0.5,
    seed: int = 0,
) -> list[str]:
    """Pick a voice name for each of ``n`` items.

    Args:
        n: how many items.
        mode: ``"random"``: each item draws a gender (female with probability ``p_female``)
            and then a random voice of that gender from ``pool``; ``"consistent"``: every
            item gets ``voice``; ``"cycle"``: go round ``pool`` in order (balanced per voice,
            handy for comparing voices).
        voice: the one voice of ``"consistent"`` mode.
        pool: voice names to draw from (default: the whole catalogue).
        p_female: probability of a female voice in ``"random"`` mode.
        seed: makes the draw reproducible.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if mode == "consistent":
        get_voice(voice)
        return [voice] * n
    names = list(pool) if pool is not None else list(CATALOGUE)
    if not names:
        raise ValueError("empty voice pool")
    for name in names:
        get_voice(name)
    if mode == "cycle":
        return [names[i % len(names)] for i in range(n)]
    if mode != "random":
        raise ValueError(f"mode must be 'random', 'consistent' or 'cycle', not {mode!r}")
    by_gender = {g: [x for x in names if get_voice(x).gender == g] for g in ("male", "female")}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = "female" if rng.random() < p_female else "male"
        choices = by_gender[g] or by_gender["male" if g == "female" else "female"] or names
        out.append(choices[int(rng.integers(len(choices)))])
    return out


# --------------------------------------------------------------------------- text checks
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Drop control characters and collapse whitespace (what both engines get)."""
    return re.sub(r"\s+", " ", _CONTROL.sub(" ", text or "")).strip()


def check_text(text: str | None, max_chars: int = 1500) -> str | None:
    """Why ``text`` cannot be spoken (``"empty"``, ``"no_speakable"``, ``"too_long"``), or ``None``.

    ``no_speakable`` means no letter or digit at all (``"!!! ###"``): espeak-ng would read the
    symbol names aloud ("exclamation exclamation hash"), which is never what a dataset wants.
    """
    if not isinstance(text, str):
        return "empty"
    t = clean_text(text)
    if not t:
        return "empty"
    if not any(ch.isalnum() for ch in t):
        return "no_speakable"
    if len(t) > max_chars:
        return "too_long"
    return None


# --------------------------------------------------------------------------- engines
def _piper_available() -> bool:
    try:
        import piper  # noqa: F401

        from helpers.core.models import locate

        locate("piper-joe")
        return True
    except Exception:
        return False


@functools.lru_cache(maxsize=4)
def _load_piper(spec: str):
    """Load (and cache) a Piper voice from a bundled short name or a ``.onnx`` path."""
    from piper import PiperVoice

    from helpers.core.models import REGISTRY, locate

    path = locate(spec) if spec in REGISTRY else Path(spec)
    if not Path(path).exists():
        raise FileNotFoundError(f"Piper voice {path} does not exist")
    return PiperVoice.load(str(path), config_path=f"{path}.json")


def _espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        from helpers.core.models import MissingModelError

        raise MissingModelError("espeak-ng is not installed. Install it with `sudo apt-get install espeak-ng`.")
    return exe


# --------------------------------------------------------------------------- results
@dataclass
class Clip:
    """The outcome of synthesising one text.

    ``audio`` is ``None`` unless ``status == "ok"``; ``error`` explains any other status.
    """

    text: str
    voice: str
    status: str
    audio: np.ndarray | None = None
    sample_rate: int = NATIVE_SAMPLE_RATE
    synth_seconds: float = 0.0
    path: str | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def duration(self) -> float:
        """Length of the audio in seconds (0 when there is none)."""
        return 0.0 if self.audio is None else len(self.audio) / self.sample_rate

    @property
    def rtf(self) -> float:
        """Real-time factor: synthesis seconds per second of audio (lower is faster)."""
        return self.synth_seconds / self.duration if self.duration > 0 else float("nan")


@dataclass
class TTSBatch:
    """Clips of a batch in input order, with counts by status."""

    clips: list[Clip]
    wall_seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    def __getitem__(self, i: int) -> Clip:
        return self.clips[i]

    @property
    def ok(self) -> list[Clip]:
        return [c for c in self.clips if c.ok]

    @property
    def audio_seconds(self) -> float:
        return sum(c.duration for c in self.clips)

    @property
    def rtf(self) -> float:
        """Whole-batch real-time factor: synthesis time over audio time."""
        synth = sum(c.synth_seconds for c in self.clips if c.ok)
        return synth / self.audio_seconds if self.audio_seconds > 0 else float("nan")

    def rtf_by_engine(self) -> dict[str, float]:
        """Real-time factor per engine (``piper``/``espeak``)."""
        out: dict[str, list[float]] = {}
        for c in self.ok:
            eng = get_voice(c.voice).engine
            s = out.setdefault(eng, [0.0, 0.0])
            s[0] += c.synth_seconds
            s[1] += c.duration
        return {k: (a / b if b else float("nan")) for k, (a, b) in out.items()}

    def report(self) -> str:
        """One line: clips ok/total, the reasons for the rest, audio length and RTF."""
        rest = ", ".join(f"{k} {v}" for k, v in self.counts.items() if k != "ok") or "none rejected"
        eng = ", ".join(f"{k} {v:.3f}" for k, v in self.rtf_by_engine().items())
        return (f"{self.counts.get('ok', 0)}/{len(self.clips)} clips ok ({rest}); "
                f"{self.audio_seconds:.1f}s of audio in {self.wall_seconds:.1f}s; RTF {eng or 'n/a'}")


# --------------------------------------------------------------------------- the interface
class TTS:
    """Synthesise text with any catalogue voice, with shared speed and noise settings.

    Args:
        sample_rate: rate of every returned clip (resampled from 22,050 Hz when different).
        speed: 1.0 is each engine's normal rate; 1.2 is 20% faster (Piper ``length_scale =
            1/speed``, espeak-ng ``-s 175*speed`` words per minute).
        noise_scale: Piper's generator noise (``None``: the voice's own, 0.667); higher
            gives more varied, less clean speech. espeak-ng has no such knob. Piper draws
            this noise inside its ONNX graph, unseeded, so two runs differ slightly;
            ``noise_scale=0, noise_w=0`` makes Piper deterministic (and a little flatter).
        noise_w: Piper's phoneme-duration noise (``None``: the voice's own, 0.8).
        snr_db: when set, add white noise at this signal-to-noise ratio to every clip
            (any engine): a way to make degraded data that a quality gate must catch.
        max_chars: longer texts are rejected as ``too_long`` (synthesis time grows with
            length, and long clips exceed what speech models train on).
        sentence_gap: seconds of silence Piper puts between sentences.
        seed: seeds the added noise.
    """

    def __init__(
        self,
        sample_rate: int = NATIVE_SAMPLE_RATE,
        *,
        speed: float = 1.0,
        noise_scale: float | None = None,
        noise_w: float | None = None,
        snr_db: float | None = None,
        max_chars: int = 1500,
        sentence_gap: float = 0.25,
        seed: int = 0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if sample_rate < 8000:
            raise ValueError("sample_rate must be at least 8000 Hz")
        self.sample_rate = int(sample_rate)
        self.speed = float(speed)
        self.noise_scale = noise_scale
        self.noise_w = noise_w
        self.snr_db = snr_db
        self.max_chars = int(max_chars)
        self.sentence_gap = float(sentence_gap)
        self._rng = np.random.default_rng(seed)

    # -- engines
    def _piper(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        pv = _load_piper(voice.spec)
        cfg = SynthesisConfig(
            length_scale=1.0 / self.speed,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w,
        )
        sr = pv.config.sample_rate
        gap = np.zeros(int(self.sentence_gap * sr), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for chunk in pv.synthesize(text, syn_config=cfg):
            if pieces:
                pieces.append(gap)
            pieces.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return audio, sr

    def _espeak(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        import soundfile as sf

        cmd = [_espeak_exe(), "-v", voice.spec, "-s", str(max(80, int(round(ESPEAK_BASE_WPM * self.speed)))),
               "--stdin", "--stdout"]
        if voice.pitch is not None:
            cmd[3:3] = ["-p", str(int(voice.pitch))]
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120)
        if proc.returncode != 0 or not proc.stdout:
            raise RuntimeError(f"espeak-ng exited {proc.returncode}: {proc.stderr.decode(errors='replace')[:200]}")
        audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        return audio, int(sr)

    # -- public
    def warmup(self, voice_names: Iterable[str | Voice] = ("piper-joe",)) -> None:
        """Load each engine and run it once, so first-call costs (model load, ONNX graph
        optimisation) do not inflate the real-time factor of the clips that follow."""
        for v in {get_voice(x).engine: get_voice(x) for x in voice_names}.values():
            self.synthesize("Warming up.", v)

    def synthesize(self, text: str, voice: str | Voice = "piper-joe", path: str | Path | None = None) -> Clip:
        """Speak one text with one voice; never raises for bad text (see :class:`Clip`).

        Unknown voice names and missing engines *do* raise: those are set-up errors, not data.
        When ``path`` is given, an ``ok`` clip is also written there as 16-bit WAV.
        """
        v = get_voice(voice)
        if v.engine == "espeak":
            _espeak_exe()
        else:
            _load_piper(v.spec)  # load once, outside the timed part (RTF measures synthesis only)
        clean = clean_text(text) if isinstance(text, str) else ""
        why = check_text(text, self.max_chars)
        if why:
            return Clip(clean, v.name, why, sample_rate=self.sample_rate,
                        error={"empty": "no text", "no_speakable": "no letters or digits",
                               "too_long": f"{len(clean)} > {self.max_chars} characters"}[why])
        t0 = time.perf_counter()
        try:
            audio, sr = self._piper(clean, v) if v.engine == "piper" else self._espeak(clean, v)
        except (ImportError, FileNotFoundError):
            raise
        except Exception as err:  # engine failure on this text: count it, keep going
            return Clip(clean, v.name, "error", sample_rate=self.sample_rate,
                        synth_seconds=time.perf_counter() - t0, error=f"{type(err).__name__}: {err}"[:300])
        audio = resample(audio, sr, self.sample_rate)
        if self.snr_db is not None:
            audio = add_noise(audio, self.snr_db, seed=int(self._rng.integers(2**31)))
        elapsed = time.perf_counter() - t0
        if audio.size < int(0.05 * self.sample_rate) or float(np.max(np.abs(audio), initial=0.0)) < 1e-4:
            return Clip(clean, v.name, "silent", sample_rate=self.sample_rate, synth_seconds=elapsed,
                        error="the engine returned no audible audio")
        clip = Clip(clean, v.name, "ok", audio, self.sample_rate, elapsed)
        if path is not None:
            clip.path = str(save_audio(path, audio, self.sample_rate))
        return clip

    def synthesize_batch(
        self,
        texts: Sequence[str],
        voices: Sequence[str | Voice] | str | Voice = "piper-joe",
        *,
        out_dir: str | Path | None = None,
        prefix: str = "clip",
        progress: bool = True,
        desc: str = "TTS",
    ) -> TTSBatch:
        """Speak many texts; ``voices`` is one voice for all or one per text.

        With ``out_dir`` every ``ok`` clip is written as ``<prefix>_<index>.wav`` there.
        The result keeps input order and counts every status.
        """
        texts = list(texts)
        if isinstance(voices, (str, Voice)):
            voices = [voices] * len(texts)
        voices = list(voices)
        if len(voices) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(voices)} voices")
        iterator: Iterable = range(len(texts))
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc=desc, total=len(texts))
        width = max(4, len(str(len(texts))))
        t0 = time.perf_counter()
        clips = []
        for i in iterator:
            path = Path(out_dir) / f"{prefix}_{i:0{width}d}.wav" if out_dir is not None else None
            clips.append(self.synthesize(texts[i], voices[i], path=path))
        return TTSBatch(clips, time.perf_counter() - t0, Counter(c.status for c in clips))
