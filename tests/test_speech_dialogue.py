"""Unit tests for helpers.speech.dialogue: turn timing, the stereo mixer, VAD, turn events, onset examples."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.speech import dialogue as D

SR = 16000
FS = 0.02


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding pitch under a syllable-rate envelope (webrtcvad calls it speech)."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 30))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * x * env).astype(np.float32)


def act_from(spans: list[tuple[float, float]], seconds: float) -> np.ndarray:
    a = np.zeros(int(round(seconds / FS)), dtype=bool)
    for s, e in spans:
        a[int(round(s / FS)):int(round(e / FS))] = True
    return a


# ---------------------------------------------------------------- timing
def test_fixed_gap_profile_gives_exact_gaps_and_alternating_channels():
    turns = [{"channel": i % 2, "duration": d} for i, d in enumerate([1.0, 2.0, 0.5, 1.5])]
    pl = D.sample_timeline(turns, D.FIXED_GAP, seed=0, lead_in=0.3)
    assert [p.channel for p in pl] == [0, 1, 0, 1]
    assert pl[0].start == pytest.approx(0.3)
    for a, b in zip(pl, pl[1:]):
        assert b.start - a.end == pytest.approx(D.FIXED_GAP.fto_mean)
    assert [p.duration for p in pl] == pytest.approx([1.0, 2.0, 0.5, 1.5])


def test_human_like_offsets_follow_the_profile_and_overlap_is_capped():
    prof = D.TimingProfile("t", fto_mean=0.2, fto_sd=0.4, max_overlap_share=0.5)
    turns = [{"channel": i % 2, "duration": 2.0} for i in range(2001)]
    pl = D.sample_timeline(turns, prof, seed=1)
    fto = np.array([b.start - a.end for a, b in zip(pl, pl[1:])])
    assert fto.min() >= -1.0 - 1e-9  # at most half of a 2 s turn
    assert np.median(fto) == pytest.approx(0.2, abs=0.05)
    assert 0.25 < (fto < 0).mean() < 0.4  # P(N(0.2, 0.4) < 0) = 0.31


def test_laplace_offsets_have_a_sharp_mode_and_the_profile_overlap_share():
    turns = [{"channel": i % 2, "duration": 3.0} for i in range(4001)]
    pl = D.sample_timeline(turns, D.HUMAN_LIKE, seed=2)
    fto = np.array([b.start - a.end for a, b in zip(pl, pl[1:])])
    assert np.median(fto) == pytest.approx(0.1, abs=0.04)
    assert 0.36 < (fto < 0).mean() < 0.44  # exp(-0.1 / (0.63 / sqrt 2)) / 2 = 0.40
    counts, _ = np.histogram(fto, bins=np.arange(-1.0, 1.01, 0.2))
    assert np.argmax(counts) == 5  # the 0..200 ms bin
    with pytest.raises(ValueError, match="fto_dist"):
        D.TimingProfile("x", 0.1, 0.5, fto_dist="uniform")


def test_timeline_rejects_non_alternating_turns_and_bad_durations():
    with pytest.raises(ValueError, match="alternates"):
        D.sample_timeline([{"channel": 0, "duration": 1}, {"channel": 0, "duration": 1}], D.FIXED_GAP)
    with pytest.raises(ValueError, match="duration"):
        D.sample_timeline([{"channel": 0, "duration": 0}], D.FIXED_GAP)
    with pytest.raises(ValueError, match="channel"):
        D.sample_timeline([{"channel": 2, "duration": 1}], D.FIXED_GAP)


def test_backchannels_land_on_the_listener_inside_long_turns_without_self_overlap():
    prof = D.TimingProfile("bc", fto_mean=0.2, fto_sd=0.0, backchannel_rate=1.0)
    turns = [{"channel": i % 2, "duration": 6.0} for i in range(6)]
    pl = D.sample_timeline(turns, prof, seed=3, backchannel_durations={0: [0.4], 1: [0.5, 0.3]})
    bcs = [p for p in pl if p.kind == "backchannel"]
    assert bcs, "a rate of 1 per second over 36 s of turns must place some backchannels"
    turns_pl = [p for p in pl if p.kind == "turn"]
    for b in bcs:
        host = [t for t in turns_pl if t.start <= b.start and b.end <= t.end]
        assert host and host[0].channel == 1 - b.channel
    for ch in (0, 1):
        ps = sorted((p for p in pl if p.channel == ch), key=lambda p: p.start)
        assert all(b.start >= a.end for a, b in zip(ps, ps[1:]))


def test_profile_validates():
    with pytest.raises(ValueError):
        D.TimingProfile("x", 0.2, -0.1)
    with pytest.raises(ValueError):
        D.TimingProfile("x", 0.2, 0.1, max_overlap_share=1.0)


# ---------------------------------------------------------------- mixer and VAD
def test_mix_stereo_puts_each_clip_on_its_channel_at_its_time():
    clips = {0: np.full(SR // 2, 0.1, np.float32), 1: np.full(SR // 4, -0.2, np.float32)}
    pl = [D.Placement(0, 0.0, 0.5, "turn", 0), D.Placement(1, 0.25, 0.5, "turn", 1)]
    st = D.mix_stereo(pl, clips, SR, tail=0.0)
    assert st.shape == (2, SR // 2)
    assert np.all(st[0] == np.float32(0.1))
    assert np.all(st[1, :SR // 4] == 0) and np.all(st[1, SR // 4:] == np.float32(-0.2))


def test_mix_stereo_refuses_two_clips_at_once_on_one_channel():
    clips = {0: np.zeros(SR), 1: np.zeros(SR)}
    pl = [D.Placement(0, 0.0, 1.0, "turn", 0), D.Placement(0, 0.5, 1.5, "turn", 1)]
    with pytest.raises(ValueError, match="starts before"):
        D.mix_stereo(pl, clips, SR)


def test_voice_activity_finds_speech_and_not_silence():
    x = np.concatenate([np.zeros(SR), speechlike(1.0), np.zeros(SR)])
    va = D.voice_activity(x, SR, frame_ms=20)
    assert va.size == 150
    assert va[:45].mean() < 0.1 and va[55:95].mean() > 0.9 and va[105:].mean() < 0.1
    with pytest.raises(ValueError, match="8, 16, 32 or 48"):
        D.voice_activity(x, 22050)
    with pytest.raises(ValueError, match="1-D"):
        D.voice_activity(np.stack([x, x]), SR)


def test_trim_silence_keeps_the_speech_and_refuses_silence():
    x = np.concatenate([np.zeros(SR), speechlike(0.5), np.zeros(SR)])
    y = D.trim_silence(x, SR, pad=0.0)
    assert 0.4 * SR <= y.size <= 0.7 * SR
    with pytest.raises(ValueError, match="no voiced"):
        D.trim_silence(np.zeros(SR, np.float32), SR)


# ---------------------------------------------------------------- events
def test_ipus_bridge_short_silences_only():
    a = act_from([(0, 1.0), (1.1, 2.0), (2.5, 3.0)], 4.0)
    runs = D.segments(D.ipus(a, FS, min_silence=0.2))
    assert runs == [(0, 100), (125, 150)]


def test_turn_events_classify_pause_gap_and_overlap():
    # ch0: 0-1, pause, 1.5-2.5 ; ch1 starts 2.3 (overlap 0.2) to 3.0 ; gap 0.5 ; ch0 3.5-4.0
    a0 = act_from([(0, 1.0), (1.5, 2.5), (3.5, 4.0)], 5.0)
    a1 = act_from([(2.3, 3.0)], 5.0)
    ev = D.turn_events(a0, a1, FS)
    assert ev["pause"] == pytest.approx([0.5])
    assert ev["gap"] == pytest.approx([0.5])
    assert ev["overlap"] == pytest.approx([0.2])
    assert len(ev["ipu_0"]) == 3 and len(ev["ipu_1"]) == 1 and len(ev["ipu"]) == 4
    pm = D.events_per_minute(ev, 30.0)
    assert pm["ipu"] == pytest.approx(8.0) and pm["gap"] == pytest.approx(2.0)


def test_between_speaker_intervals_skip_backchannels_inside_a_turn():
    a0 = act_from([(0, 3.0), (3.4, 4.0)], 8.0)  # turn, pause, more of the same turn
    a1 = act_from([(1.0, 1.4), (3.8, 5.0)], 8.0)  # a backchannel inside, then a reply overlapping 0.2 s
    a0b = act_from([(0, 3.0), (3.4, 4.0), (5.3, 6.0)], 8.0)  # ... and ch0 answers after a 0.3 s gap
    bsi = D.between_speaker_intervals(a0b, a1, FS)
    assert bsi == pytest.approx([-0.2, 0.3])
    assert D.between_speaker_intervals(a0, a1, FS) == pytest.approx([-0.2])


# ---------------------------------------------------------------- placed activity and onset examples
def test_placed_activity_matches_vad_of_the_mixed_channels():
    clips = {0: speechlike(1.0, 0), 1: speechlike(0.8, 1), 2: speechlike(0.6, 2)}
    clips = {k: D.trim_silence(v, SR) for k, v in clips.items()}
    va = {k: D.clip_activity(v, SR) for k, v in clips.items()}
    turns = [{"channel": i % 2, "duration": len(clips[i]) / SR} for i in range(3)]
    pl = D.sample_timeline(turns, D.HUMAN_LIKE, seed=0, quantum=FS)
    placed = D.placed_activity(pl, va, FS)
    st = D.mix_stereo(pl, clips, SR)
    for ch in (0, 1):
        mixed = D.voice_activity(st[ch], SR)
        n = min(mixed.size, placed.shape[1])
        assert (mixed[:n] == placed[ch, :n]).mean() > 0.98
    # without the tail the hangover is missing: the plain VAD of the clip alone misses frames
    bare = D.placed_activity(pl, {k: D.voice_activity(v, SR) for k, v in clips.items()}, FS)
    assert bare.sum() < placed.sum()


def test_onset_examples_label_the_next_half_second():
    # ch0 speaks 0-3 s, ch1 starts at 3.2 s
    act = np.stack([act_from([(0, 3.0)], 6.0), act_from([(3.2, 5.0)], 6.0)])
    X, y = D.onset_examples(act, FS, horizon=0.5, history=2.0, stride=1)
    assert X.shape[1] == len(D.FEATURE_NAMES)
    other_silent_for = X[:, D.FEATURE_NAMES.index("other_silent_for")]
    other_now = X[:, D.FEATURE_NAMES.index("other_active_now")]
    # rows for ch1 while ch0 still speaks at 2.8 s: onset at 3.2 s is within 0.5 s
    pos = y == 1
    assert pos.any() and (~pos).any()
    assert np.all(other_now[pos & (other_silent_for == 0)] == 1)
    # rows: ch0 as self at frames 150..274 (125 rows), then ch1 as self at frames 100..159 and 250..274;
    # ch1's onset is frame 160: within 25 frames (0.5 s) from frame 135 on, not from frame 134 back
    ch1 = y[125:185]
    assert ch1[:35].sum() == 0 and ch1[35:].all()
    with pytest.raises(ValueError, match="shape"):
        D.onset_examples(act[0], FS)


def test_onset_examples_bins_are_the_history_shares():
    act = np.stack([act_from([(0, 1.0)], 4.0), np.zeros(200, bool)])
    X, y = D.onset_examples(act, FS, history=2.0, stride=1)
    # first row for ch1 (self) is at t = 100 frames: other (ch0) active in bins 0-4 (0-1 s) only
    rows_ch1 = X[X[:, D.FEATURE_NAMES.index("self_silent_for")] == 3.0]
    first = rows_ch1[0]
    other_bins = first[10:20]
    assert other_bins == pytest.approx([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    assert not y.any()


# ---------------------------------------------------------------- text dialogues
def test_spoken_dialogues_keep_alternating_speakable_turns_and_count_the_rest():
    convs = [
        {"id": "a", "conversations": [
            {"from": "human", "value": "What is a good name for a cat? I like short names."},
            {"from": "gpt", "value": "How about Miso? It is short and sweet. It also sounds friendly."},
            {"from": "human", "value": "I like it. Any other ideas?"},
            {"from": "gpt", "value": "Pepper, Olive or Toast would all work well."}]},
        {"id": "b", "conversations": [{"from": "gpt", "value": "Hello there."}] * 4},
        {"id": "c", "conversations": [
            {"from": "human", "value": "Fix this:\n```python\nprint(1)\n```"},
            {"from": "gpt", "value": "Sure."}]},
    ]
    dials, why = D.spoken_dialogues(convs, min_turns=4, max_sentences=2)
    assert [d["id"] for d in dials] == ["a"]
    t = dials[0]["turns"]
    assert [x["channel"] for x in t] == [D.USER, D.ASSISTANT, D.USER, D.ASSISTANT]
    assert t[1]["text"] == "How about Miso? It is short and sweet."
    assert why["kept"] == 1 and why["does not start with the user"] == 1
    assert sum(why.values()) == 3
