"""Two-channel (Fisher-style) dialogue: turn timing, a stereo mixer, voice activity and turn statistics.

The pieces chapter 15 needs to turn a text dialogue into stereo audio with one speaker per
channel (channel 0 the assistant, channel 1 the user, the layout Moshi's fine-tuning expects)
and to check the result the way one checks real conversational data:

- :class:`TimingProfile` and :func:`sample_timeline`: when each turn starts. The floor
  transfer offset (FTO: next speaker's start minus the previous speaker's end; negative is an
  overlap) is drawn from a distribution, and backchannels ("yeah", "right") are put on the
  listener's channel during long turns. :data:`HUMAN_LIKE` and :data:`FIXED_GAP` are the two
  profiles the chapter compares; their numbers are ours, set from the published facts in
  ``data/turn_taking_targets.json`` (no table of Fisher numbers ships offline).
- :func:`mix_stereo`: the placed clips summed into a ``(2, n)`` array, refusing a channel whose
  clips would overlap each other (one voice per channel, never two at once).
- :func:`voice_activity`: per-frame speech/non-speech with ``webrtcvad`` (the WebRTC VAD, a
  well-kept library; its GMM is built for telephone speech), on 16-bit PCM at 8/16/32/48 kHz.
- :func:`ipus` and :func:`turn_events`: inter-pausal units (speech bounded by at least 200 ms of
  silence) per channel, then pauses, gaps and overlaps, with the definitions dGSLM uses for its
  turn-taking comparison (Nguyen et al. 2022, after Heldner & Edlund 2010). Written by hand:
  the definitions are the lesson, and they are a few lines on frame arrays.
- :func:`placed_activity` and :func:`onset_examples`: voice activity of re-timed clips without
  mixing audio, and frame examples for a turn-shift predictor ("will this channel start speaking
  in the next half second?", a one-horizon version of voice-activity projection, Ekstedt &
  Skantze 2022) from the past two seconds of both channels' activity.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["ASSISTANT", "USER", "BACKCHANNELS", "spoken_dialogues", "TimingProfile", "HUMAN_LIKE", "FIXED_GAP", "Placement",
           "sample_timeline", "mix_stereo", "voice_activity", "clip_activity", "trim_silence", "segments", "ipus",
           "turn_events", "events_per_minute", "between_speaker_intervals", "placed_activity",
           "onset_examples", "FEATURE_NAMES"]

ASSISTANT, USER = 0, 1
#: Short listener responses placed on the other channel (Yngve 1970's "backchannels"). "Mm-hm" and
#: "uh-huh" are the commonest in conversation, but Piper and Kokoro mispronounce them (Whisper heard
#: "MMA-chan" and "Uh oh"), so the list keeps words the voices say well.
BACKCHANNELS = ("yeah", "right", "okay", "I see", "sure")


@dataclass(frozen=True)
class TimingProfile:
    """How turns are timed.

    Attributes:
        name: label for tables and plots.
        fto_mean, fto_sd: mean and standard deviation of the floor transfer offset in seconds
            (``fto_sd=0`` gives the same offset every time). Negative values start the turn before
            the other speaker has finished.
        fto_dist: ``"normal"`` or ``"laplace"`` (peaked, with heavier tails: closer to the shape of
            measured offset distributions, whose sharp mode sits near 200 ms).
        max_overlap_share: an overlap may cover at most this share of the previous turn (a reply
            does not start before the question is mostly said).
        backchannel_rate: backchannels per second of the other speaker's turn (Poisson), placed
            only in turns longer than ``backchannel_min_turn`` seconds.
        backchannel_min_turn: shortest turn that gets backchannels.
        backchannel_spacing: least time between two backchannels on one channel.
    """

    name: str
    fto_mean: float
    fto_sd: float
    fto_dist: str = "normal"
    max_overlap_share: float = 0.5
    backchannel_rate: float = 0.0
    backchannel_min_turn: float = 2.5
    backchannel_spacing: float = 1.5

    def __post_init__(self) -> None:
        if self.fto_sd < 0:
            raise ValueError("fto_sd must be >= 0")
        if self.fto_dist not in ("normal", "laplace"):
            raise ValueError(f"fto_dist must be 'normal' or 'laplace', got {self.fto_dist!r}")
        if not 0 <= self.max_overlap_share < 1:
            raise ValueError("max_overlap_share must be in [0, 1)")
        if self.backchannel_rate < 0:
            raise ValueError("backchannel_rate must be >= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Laplace offsets centred on 100 ms, so the most common offset falls in 0-200 ms and about 40% of
#: speaker changes overlap (P < 0 = exp(-0.1 / (0.63 / sqrt 2)) / 2 = 0.40), and backchannels.
HUMAN_LIKE = TimingProfile("human-like", fto_mean=0.1, fto_sd=0.63, fto_dist="laplace", backchannel_rate=0.12)
#: What a naive pipeline does: every reply 800 ms after the other speaker stops, no backchannels.
FIXED_GAP = TimingProfile("fixed-gap", fto_mean=0.8, fto_sd=0.0, backchannel_rate=0.0)


@dataclass
class Placement:
    """One clip on the timeline: ``channel``, ``start`` and ``end`` in seconds, ``kind``
    (``"turn"`` or ``"backchannel"``) and ``key`` (which clip; the turn index for turns)."""

    channel: int
    start: float
    end: float
    kind: str
    key: Any

    @property
    def duration(self) -> float:
        return self.end - self.start


def _check_channel(ch: int) -> int:
    if ch not in (0, 1):
        raise ValueError(f"channel must be 0 or 1, got {ch!r}")
    return int(ch)


_ROLE = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "assistant": "assistant"}
_CHANNEL = {"assistant": ASSISTANT, "user": USER}


def _first_sentences(text: str, k: int) -> str:
    import re

    parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p]
    return " ".join(parts[:k])


def spoken_dialogues(conversations: Sequence[Mapping[str, Any]], *, n: int | None = None, min_turns: int = 4,
                     max_turns: int = 6, max_sentences: int = 2, max_words: int = 40,
                     rewriter: Any = None) -> tuple[list[dict[str, Any]], "Counter[str]"]:
    """Short spoken-style dialogues from ShareGPT-shaped conversations, and why others were dropped.

    Each conversation (``{"id", "conversations": [{"from", "value"}]}``) must open with the user and
    is read from its first turn while speakers alternate (``human`` -> ``"user"``, ``gpt`` -> ``"assistant"``). A turn
    keeps its first paragraph, is rewritten by the spoken-style rewriter of chapter 11
    (:class:`~helpers.speech.spoken_style.SpokenRewriter`, or ``rewriter``), and is cut to its first
    ``max_sentences`` sentences; a turn the rewriter rejects, or longer than ``max_words`` words,
    ends the dialogue there. Dialogues with fewer than ``min_turns`` turns are dropped and counted
    under the reason that stopped them; at most ``max_turns`` are kept.

    Returns ``(dialogues, reasons)``: dialogues are ``{"id", "turns": [{"role", "channel", "text",
    "original"}]}``; ``reasons`` counts every dropped conversation (``"kept"`` counts the rest).
    """
    from collections import Counter

    from helpers.speech.spoken_style import SpokenRewriter

    rw = rewriter or SpokenRewriter(max_words=max(max_words * 4, 120))
    if min_turns < 2 or max_turns < min_turns:
        raise ValueError("need 2 <= min_turns <= max_turns")
    out: list[dict[str, Any]] = []
    reasons: Counter = Counter()
    for conv in conversations:
        if n is not None and len(out) >= n:
            break
        turns: list[dict[str, Any]] = []
        stop = "too few turns"
        prev = None
        for msg in (conv.get("conversations") or [])[:max_turns]:
            role = _ROLE.get(str(msg.get("from", "")).lower())
            if prev is None and role != "user":
                stop = "does not start with the user"
                break
            if role is None or role == prev:
                stop = "speakers do not alternate"
                break
            raw = str(msg.get("value") or "").strip().split("\n\n")[0]
            res = rw.rewrite(raw)
            if not res.ok:
                stop = f"turn rejected: {res.rejected or ', '.join(res.checks)}"
                break
            text = _first_sentences(res.text, max_sentences)
            if len(text.split()) > max_words:
                stop = "turn rejected: too long"
                break
            turns.append({"role": role, "channel": _CHANNEL[role], "text": text, "original": raw})
            prev = role
        if len(turns) >= min_turns:
            out.append({"id": str(conv.get("id", len(out))), "turns": turns})
            reasons["kept"] += 1
        else:
            reasons[stop] += 1
    return out, reasons


def sample_timeline(turns: Sequence[Mapping[str, Any]], profile: TimingProfile, *, seed: int = 0,
                    backchannel_durations: Mapping[int, Sequence[float]] | None = None,
                    lead_in: float = 0.3, quantum: float = 0.01) -> list[Placement]:
    """Start and end times for alternating turns, plus backchannels on the listener's channel.

    Args:
        turns: one dict per turn with ``channel`` (0 or 1) and ``duration`` (seconds); consecutive
            turns must be on different channels (a two-party dialogue alternates).
        profile: the timing distribution.
        backchannel_durations: per channel, the durations of the backchannel clips that channel
            can say (index ``j`` -> ``key`` ``(channel, j)`` of the placement). Without it no
            backchannels are placed.
        lead_in: silence before the first turn.
        quantum: start times are rounded to this step (a VAD frame), so activity computed from
            placed clips lines up with frames.

    Returns placements sorted by start time. Backchannel keys are ``(channel, j)``.
    """
    rng = np.random.default_rng(seed)
    out: list[Placement] = []
    last_end = {0: 0.0, 1: 0.0}  # each channel's last end: a channel never overlaps itself
    prev: Placement | None = None

    def q(t: float) -> float:
        return round(round(t / quantum) * quantum, 6)

    for i, t in enumerate(turns):
        ch = _check_channel(t["channel"])
        dur = float(t["duration"])
        if dur <= 0:
            raise ValueError(f"turn {i} has duration {dur}; it must be > 0")
        if prev is not None and ch == prev.channel:
            raise ValueError(f"turns {i - 1} and {i} are both on channel {ch}: a two-party dialogue alternates")
        if prev is None:
            start = lead_in
        else:
            if not profile.fto_sd:
                fto = profile.fto_mean
            elif profile.fto_dist == "laplace":
                fto = rng.laplace(profile.fto_mean, profile.fto_sd / np.sqrt(2))
            else:
                fto = rng.normal(profile.fto_mean, profile.fto_sd)
            start = prev.end + fto
            start = max(start, prev.end - profile.max_overlap_share * prev.duration, last_end[ch] + 0.2)
        start = q(start)
        p = Placement(ch, start, q(start + dur), "turn", i)
        out.append(p)
        last_end[ch] = p.end
        prev = p
    if backchannel_durations and profile.backchannel_rate > 0:
        turn_list = [p for p in out if p.kind == "turn"]
        for p in turn_list:
            listener = 1 - p.channel
            bcs = list(backchannel_durations.get(listener, ()))
            if not bcs or p.duration < profile.backchannel_min_turn:
                continue
            n = rng.poisson(profile.backchannel_rate * p.duration)
            # the listener's own turns and backchannels, so a backchannel never collides with them
            busy = [(o.start, o.end) for o in out if o.channel == listener]
            for _ in range(n):
                j = int(rng.integers(len(bcs)))
                d = float(bcs[j])
                s = q(rng.uniform(p.start + 1.0, max(p.start + 1.0, p.end - d - 0.3)))
                e = q(s + d)
                if any(s < b + profile.backchannel_spacing and e > a - 0.2 for a, b in busy):
                    continue  # too close to something the listener already says
                out.append(Placement(listener, s, e, "backchannel", (listener, j)))
                busy.append((s, e))
    return sorted(out, key=lambda p: (p.start, p.channel))


def mix_stereo(placements: Sequence[Placement], clips: Mapping[Any, np.ndarray], sample_rate: int, *,
               tail: float = 0.3) -> np.ndarray:
    """A ``(2, n)`` float32 array with each placed clip written into its channel.

    ``clips[p.key]`` is the audio of placement ``p`` (mono, at ``sample_rate``). Raises
    ``ValueError`` if two clips on one channel overlap (a channel holds one voice, one thing at
    a time), ``KeyError`` for a missing clip.
    """
    if not placements:
        raise ValueError("no placements to mix")
    by_ch: dict[int, list[Placement]] = {0: [], 1: []}
    for p in placements:
        by_ch[_check_channel(p.channel)].append(p)
    for ch, ps in by_ch.items():
        ps.sort(key=lambda p: p.start)
        for a, b in zip(ps, ps[1:]):
            if b.start < a.start + len(clips[a.key]) / sample_rate - 1e-6:
                raise ValueError(f"channel {ch}: clip {b.key!r} at {b.start:.2f} s starts before clip {a.key!r} "
                                 f"ends ({a.start:.2f} + {len(clips[a.key]) / sample_rate:.2f} s)")
    end = max(p.start + len(clips[p.key]) / sample_rate for p in placements) + tail
    out = np.zeros((2, int(np.ceil(end * sample_rate))), dtype=np.float32)
    for p in placements:
        a = np.asarray(clips[p.key], dtype=np.float32)
        if a.ndim != 1:
            raise ValueError(f"clip {p.key!r} must be mono, got shape {a.shape}")
        s = int(round(p.start * sample_rate))
        out[p.channel, s:s + a.size] += a
    return out


def voice_activity(audio: np.ndarray, sample_rate: int, *, frame_ms: int = 20, aggressiveness: int = 3) -> np.ndarray:
    """Per-frame speech flags (bool array) from the WebRTC VAD.

    ``sample_rate`` must be 8, 16, 32 or 48 kHz and ``frame_ms`` 10, 20 or 30 (what webrtcvad
    accepts); a last partial frame is dropped. Aggressiveness 3 (the strictest) suits clean
    synthetic channels: it keeps breaths and the TTS noise floor out.
    """
    import webrtcvad

    if sample_rate not in (8000, 16000, 32000, 48000):
        raise ValueError(f"webrtcvad needs 8, 16, 32 or 48 kHz audio, got {sample_rate}")
    if frame_ms not in (10, 20, 30):
        raise ValueError(f"frame_ms must be 10, 20 or 30, got {frame_ms}")
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim != 1:
        raise ValueError(f"voice_activity takes one channel (1-D), got shape {a.shape}")
    vad = webrtcvad.Vad(int(aggressiveness))
    n = sample_rate * frame_ms // 1000
    pcm = (np.clip(np.nan_to_num(a), -1, 1) * 32767).astype("<i2")
    frames = len(pcm) // n
    return np.array([vad.is_speech(pcm[i * n:(i + 1) * n].tobytes(), sample_rate) for i in range(frames)], dtype=bool)


def clip_activity(audio: np.ndarray, sample_rate: int, *, frame_ms: int = 20, tail: float = 0.3) -> np.ndarray:
    """Voice activity of one clip as it will look inside a channel: computed on the clip followed by
    ``tail`` seconds of silence, because webrtcvad keeps saying "speech" for about 100 ms after speech
    stops (its hangover). Placing these flags with :func:`placed_activity` then matches the VAD of the
    mixed channel frame for frame, hangover included."""
    a = np.concatenate([np.asarray(audio, dtype=np.float32), np.zeros(int(tail * sample_rate), np.float32)])
    va = voice_activity(a, sample_rate, frame_ms=frame_ms)
    idx = np.flatnonzero(va)
    return va[:idx[-1] + 1] if idx.size else va[:0]


def trim_silence(audio: np.ndarray, sample_rate: int, *, frame_ms: int = 20, pad: float = 0.03) -> np.ndarray:
    """The clip from its first to its last voiced frame (plus ``pad`` seconds each side).

    TTS engines add silence before and after speech; a backchannel or a turn placed by its
    start time should start with speech. Raises ``ValueError`` when no frame is voiced.
    """
    va = voice_activity(audio, sample_rate, frame_ms=frame_ms)
    idx = np.flatnonzero(va)
    if idx.size == 0:
        raise ValueError("no voiced frame in the clip")
    n = sample_rate * frame_ms // 1000
    p = int(pad * sample_rate)
    return np.asarray(audio[max(0, idx[0] * n - p):min(len(audio), (idx[-1] + 1) * n + p)], dtype=np.float32)


def segments(flags: np.ndarray) -> list[tuple[int, int]]:
    """Runs of ``True`` as ``(start, end)`` frame indices, end exclusive."""
    f = np.asarray(flags, dtype=bool).astype(np.int8)
    d = np.diff(np.concatenate([[0], f, [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def ipus(flags: np.ndarray, frame_s: float, *, min_silence: float = 0.2, min_speech: float = 0.0) -> np.ndarray:
    """Inter-pausal units: speech runs merged across silences shorter than ``min_silence``.

    Returns the smoothed activity (bool per frame): silences under 200 ms inside speech are
    filled (they are not pauses, dGSLM's and Heldner & Edlund's convention), and speech runs
    shorter than ``min_speech`` are dropped (clicks).
    """
    f = np.asarray(flags, dtype=bool).copy()
    runs = segments(f)
    for (_, e0), (s1, _) in zip(runs, runs[1:]):
        if (s1 - e0) * frame_s < min_silence:
            f[e0:s1] = True
    if min_speech > 0:
        for s, e in segments(f):
            if (e - s) * frame_s < min_speech:
                f[s:e] = False
    return f


def turn_events(act0: np.ndarray, act1: np.ndarray, frame_s: float) -> dict[str, list[float]]:
    """Durations (seconds) of IPUs, pauses, gaps and overlaps in a two-channel activity pair.

    ``act0``, ``act1``: per-frame activity of each channel after :func:`ipus`. Definitions (as in
    dGSLM's turn-taking table): an *IPU* is a speech run on one channel; a *pause* is a silence
    on both channels between two IPUs of the same speaker; a *gap* is a silence on both channels
    between IPUs of different speakers; an *overlap* is a stretch where both channels speak.
    Silences at the start and the end are neither. Also returns ``"ipu_0"`` and ``"ipu_1"``.
    """
    a = np.asarray(act0, dtype=bool)
    b = np.asarray(act1, dtype=bool)
    if a.shape != b.shape:
        n = min(a.size, b.size)
        a, b = a[:n], b[:n]
    out: dict[str, list[float]] = {"ipu": [], "ipu_0": [], "ipu_1": [], "pause": [], "gap": [], "overlap": []}
    for ch, x in ((0, a), (1, b)):
        d = [(e - s) * frame_s for s, e in segments(x)]
        out[f"ipu_{ch}"] = d
        out["ipu"] += d
    out["overlap"] = [(e - s) * frame_s for s, e in segments(a & b)]
    silent = ~(a | b)
    for s, e in segments(silent):
        if s == 0 or e == silent.size:
            continue
        before = {c for c, x in ((0, a), (1, b)) if x[s - 1]}
        after = {c for c, x in ((0, a), (1, b)) if x[e]}
        kind = "pause" if (len(before) == 1 and before == after) else "gap"
        out[kind].append((e - s) * frame_s)
    return out


def events_per_minute(events: Mapping[str, Sequence[float]], seconds: float) -> dict[str, float]:
    """Counts per minute of each event kind, given the dialogue length in seconds."""
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    return {k: len(v) * 60.0 / seconds for k, v in events.items()}


def between_speaker_intervals(act0: np.ndarray, act1: np.ndarray, frame_s: float) -> np.ndarray:
    """Signed intervals at each change of speaker: gaps (positive seconds) and overlaps (negative).

    Heldner & Edlund's (2010) between-speaker intervals: an IPU that starts after the other
    channel's last IPU ended, when the other channel spoke last, gives a gap ``start - other_end``;
    an IPU that starts while the other channel speaks and outlasts it gives an overlap
    ``-(other_end - start)``. An IPU wholly inside the other's speech (a backchannel) is not a
    change of speaker and gives nothing. In human conversation this distribution has its mode
    between 0 and 200 ms, and a large share of it is negative.
    """
    a = np.asarray(act0, dtype=bool)
    b = np.asarray(act1, dtype=bool)
    n = min(a.size, b.size)
    units = sorted([(s, e, 0) for s, e in segments(a[:n])] + [(s, e, 1) for s, e in segments(b[:n])])
    out = []
    last: dict[int, tuple[int, int] | None] = {0: None, 1: None}
    for s, e, ch in units:
        other, mine = last[1 - ch], last[ch]
        if other is not None:
            os_, oe = other
            if s >= oe:
                if mine is None or mine[1] <= oe:  # the other spoke last: a change of speaker
                    out.append((s - oe) * frame_s)
            elif e > oe:  # starts inside the other's IPU and outlasts it
                out.append(-(oe - s) * frame_s)
        last[ch] = (s, e)
    return np.array(out, dtype=float)


def placed_activity(placements: Sequence[Placement], clip_activity: Mapping[Any, np.ndarray], frame_s: float,
                    *, tail: float = 0.3) -> np.ndarray:
    """A ``(2, frames)`` bool array: each clip's own voice activity written at its placement.

    With flags from :func:`clip_activity`, this is what the VAD of the mixed channels gives (each
    channel holds one clip at a time and the clips are clean), without synthesising or mixing audio: the way to make many re-timed
    dialogues cheaply from a pool of already synthesised turns. Placements start on frame
    boundaries when :func:`sample_timeline` used ``quantum = frame_s``.
    """
    end = max(p.start + len(clip_activity[p.key]) * frame_s for p in placements) + tail
    out = np.zeros((2, int(np.ceil(end / frame_s))), dtype=bool)
    for p in placements:
        va = np.asarray(clip_activity[p.key], dtype=bool)
        s = int(round(p.start / frame_s))
        out[p.channel, s:s + va.size] |= va
    return out


#: Names of the columns :func:`onset_examples` returns, in order.
FEATURE_NAMES = ([f"self_active_{i}" for i in range(10)] + [f"other_active_{i}" for i in range(10)]
                 + ["self_silent_for", "other_silent_for", "other_active_now", "other_ipu_so_far"])


def _frames_since(x: np.ndarray, frame_s: float, cap: float) -> np.ndarray:
    """Seconds since ``x`` was last true at each frame (0 where true), capped at ``cap``."""
    t = np.arange(x.size)
    last = np.maximum.accumulate(np.where(x, t, -10**9))
    return np.minimum((t - last) * frame_s, cap)


def onset_examples(act: np.ndarray, frame_s: float, *, horizon: float = 0.5, history: float = 2.0,
                   stride: int = 5, cap: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Frame examples for "will this channel start speaking within ``horizon`` seconds?".

    For each channel in turn as *self* (so one model serves both), at every ``stride``-th frame
    where self is silent and at least ``history`` seconds have passed, the features are: the
    share of active frames in ten equal bins of the last ``history`` seconds, for self and for
    the other channel (oldest first); seconds since self and since the other last spoke (capped
    at ``cap``); whether the other speaks now; and how long the other's current IPU has lasted.
    The label is 1 when self has a speech onset within the next ``horizon`` seconds.

    Returns ``(X, y)`` with ``X.shape == (n, len(FEATURE_NAMES))``; ``history`` must be a whole
    number of frames divisible by ten.
    """
    act = np.asarray(act, dtype=bool)
    if act.ndim != 2 or act.shape[0] != 2:
        raise ValueError(f"act must have shape (2, frames), got {act.shape}")
    T = act.shape[1]
    H = int(round(history / frame_s))
    K = int(round(horizon / frame_s))
    if H < 10 or H % 10 or K < 1:
        raise ValueError(f"history must be a multiple of 10 frames ({H} given) and horizon at least one frame")
    B = H // 10
    xs, ys = [], []
    for me in (0, 1):
        s, o = act[me], act[1 - me]
        ts = np.arange(H, T - K, stride)
        ts = ts[~s[ts]]
        if ts.size == 0:
            continue
        onset = np.zeros(T, dtype=np.int64)
        onset[1:] = s[1:] & ~s[:-1]
        c_on = np.concatenate([[0], np.cumsum(onset)])
        c_s = np.concatenate([[0], np.cumsum(s)])
        c_o = np.concatenate([[0], np.cumsum(o)])
        edges = ts[:, None] - H + B * np.arange(11)[None, :]  # bin edges, oldest first
        hs = np.diff(c_s[edges], axis=1) / B
        ho = np.diff(c_o[edges], axis=1) / B
        o_run = np.where(o, _frames_since(~o, frame_s, cap), 0.0)
        extra = np.stack([_frames_since(s, frame_s, cap)[ts], _frames_since(o, frame_s, cap)[ts],
                          o[ts].astype(float), o_run[ts]], axis=1)
        xs.append(np.concatenate([hs, ho, extra], axis=1))
        ys.append((c_on[ts + K + 1] - c_on[ts + 1] > 0).astype(int))
    if not xs:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32), np.zeros(0, dtype=int)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)
