"""Benchmark: real-time factors of the bundled speech models (TTS and ASR), batched and single.

Measures, on the same inputs:

* **Piper** (``piper-joe``) and **espeak-ng**: RTF of one clip at a time (each call timed on its
  own) and of a whole batch (``TTS.synthesize_batch`` wall time / audio seconds). Piper has no
  batched inference, so "batch" here is throughput over many calls with the voice loaded once.
* **Whisper** ``whisper-base`` and ``whisper-tiny.en`` through :mod:`helpers.speech.asr` (transformers,
  float32): RTF one clip at a time (``batch_size=1``) and batched (``batch_size=8``).
* the same with ``int8=True`` (linear layers quantised to int8 on the fly, the precision
  faster-whisper uses), batched.
* **faster-whisper int8** (CTranslate2) on the same clips, one at a time: the reference the
  transformers path is compared with.
* **DNSMOS**: a cold first call and the first call after ``dnsmos_warmup``, each as a ratio to a
  repeat of the same call (the warm-up should bring the second ratio to about 1).

Clips: the five real LibriVox clips from ``pocketsphinx-testdata`` plus Piper sentences (3 to
7 s each), all resampled to 16 kHz for ASR. Whisper pads every clip to a 30 s window, so short
clips are the hard case for RTF.

Targets (issue 5, on 2 CPU cores): Piper RTF <= 0.1; Whisper base batched RTF <= 0.25 and no
slower than faster-whisper int8 by more than 1.5x. The script prints every figure, the targets
and whether each holds, and writes JSON to ``build/outputs/bench/bench_speech.json`` (``$SDW_OUTPUT/bench/``
when that is set).

Run: ``python benchmarks/bench_speech.py`` (``--quick`` for fewer clips, ``--threads N`` to set
the CPU threads of both ASR back ends; default 2, the target machine). Timings on a machine
shared with other busy processes are inflated, often by several times: rerun on an idle machine
before reading much into a miss.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from helpers.speech.audio import TARGET_SR, load_audio, resample  # noqa: E402
from helpers.core.env import output_dir  # noqa: E402
from helpers.speech.speech_metrics import real_time_factor, wer  # noqa: E402

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remind me to call the dentist tomorrow morning at nine.",
    "Synthetic data can help when real recordings are scarce or private.",
    "She sold three paintings at the market before the rain started.",
    "A good benchmark measures the same thing the same way every time.",
    "Turn left at the second traffic light and park behind the library.",
    "The committee will publish its final report early next spring.",
    "Whisper pads every clip to thirty seconds before it listens.",
]


def librivox() -> tuple[list[np.ndarray], list[str]]:
    refs = {}
    if (LIBRIVOX / "transcription").exists():
        for line in (LIBRIVOX / "transcription").read_text().splitlines():
            text, _, utt = line.rpartition("(")
            refs[utt.strip(" )")] = text.replace("<s>", "").replace("</s>", "").strip()
    files = sorted(LIBRIVOX.glob("*.wav"))
    return [load_audio(f)[0] for f in files], [refs.get(f.stem, "") for f in files]


def bench_tts(n: int) -> tuple[dict, list[np.ndarray], list[str]]:
    """RTF of Piper and espeak-ng; returns the figures and Piper's 16 kHz clips for ASR."""
    from helpers.speech.tts import TTS

    tts = TTS()
    out: dict = {}
    piper_clips: list[np.ndarray] = []
    texts = (SENTENCES * 4)[:n]
    for voice in ("piper-joe", "espeak:en-us+f3"):
        try:
            tts.warmup([voice])
        except Exception as err:  # noqa: BLE001 - a missing engine is reported, not fatal
            out[voice] = {"error": f"{type(err).__name__}: {err}"}
            continue
        single = [tts.synthesize(t, voice) for t in texts[: max(2, n // 2)]]
        batch = tts.synthesize_batch(texts, voice, progress=False)
        ok = [c for c in single if c.ok]
        out[voice] = {
            "clips": len(batch.ok), "audio_s": round(batch.audio_seconds, 1),
            "rtf_single": real_time_factor(sum(c.synth_seconds for c in ok), sum(c.duration for c in ok)),
            "rtf_batch": real_time_factor(batch.wall_seconds, batch.audio_seconds),
        }
        if voice == "piper-joe":
            piper_clips = [resample(c.audio, c.sample_rate, TARGET_SR) for c in batch.ok]
            piper_texts = [c.text for c in batch.ok]
    return out, piper_clips, (piper_texts if piper_clips else [])


def bench_asr(name: str, clips: list[np.ndarray], refs: list[str], threads: int, batch_size: int) -> dict:
    from helpers.speech.asr import ASR

    audio_s = sum(len(c) for c in clips) / TARGET_SR
    res: dict = {"clips": len(clips), "audio_s": round(audio_s, 1)}
    asr = ASR.load(name, device="cpu", threads=threads, verbose=False)
    asr.transcribe(clips[:1], progress=False)  # warm-up (first call allocates)
    t0 = time.perf_counter()
    single = [asr.transcribe_one(c, progress=False) for c in clips]
    res["rtf_single"] = real_time_factor(time.perf_counter() - t0, audio_s)
    t0 = time.perf_counter()
    batched = asr.transcribe(clips, batch_size=batch_size, progress=False)
    res["rtf_batched"] = real_time_factor(time.perf_counter() - t0, audio_s)
    res["wer_batched"] = wer(refs, [t.text for t in batched]).wer
    res["same_text_single_vs_batched"] = sum(a.text == b.text for a, b in zip(single, batched)) / len(clips)
    q = ASR.load(name, device="cpu", threads=threads, int8=True, verbose=False)
    q.transcribe(clips[:1], progress=False)
    t0 = time.perf_counter()
    qout = q.transcribe(clips, batch_size=batch_size, progress=False)
    res["rtf_batched_int8"] = real_time_factor(time.perf_counter() - t0, audio_s)
    res["wer_batched_int8"] = wer(refs, [t.text for t in qout]).wer
    try:
        fw = ASR.load(name, backend="faster-whisper", compute_type="int8", threads=threads, verbose=False)
        fw.transcribe(clips[:1], progress=False)
        t0 = time.perf_counter()
        fout = fw.transcribe(clips, progress=False)
        res["rtf_faster_whisper_int8"] = real_time_factor(time.perf_counter() - t0, audio_s)
        res["wer_faster_whisper_int8"] = wer(refs, [t.text for t in fout]).wer
    except ImportError as err:
        res["faster_whisper_error"] = str(err)
    return res


def bench_dnsmos(clips: list[np.ndarray]) -> dict:
    """DNSMOS cost as ratios: a cold first call (ONNX sessions loaded in it) and the first call after
    :func:`dnsmos_warmup`, each against a repeat of the same call (1.0 = no one-off cost left)."""
    try:
        from speechmos import dnsmos as sm
    except ImportError as err:
        return {"error": str(err)}
    from helpers.speech.speech_metrics import dnsmos, dnsmos_warmup

    clips = clips[:3]
    audio_s = sum(len(c) for c in clips) / TARGET_SR

    def timed() -> float:
        t0 = time.perf_counter()
        dnsmos(clips)
        return time.perf_counter() - t0

    sm.dnsmos = None  # as in a fresh process: the next call loads the models
    cold, repeat_cold = timed(), timed()
    sm.dnsmos = None
    warmup_s = dnsmos_warmup()
    after_warmup, repeat = timed(), timed()
    return {"clips": len(clips), "audio_s": round(audio_s, 1), "warmup_s": round(warmup_s, 2),
            "cold_over_repeat": cold / repeat_cold, "after_warmup_over_repeat": after_warmup / repeat,
            "rtf": real_time_factor(repeat, audio_s)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips (CI)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the ASR back ends (default 2)")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    n_tts = 4 if args.quick else 16
    t_start = time.perf_counter()
    print(f"speech benchmark: {args.threads} threads, {os.cpu_count()} cores visible, load average "
          f"{os.getloadavg()[0]:.1f} (a load above the core count means other processes compete and timings are inflated)")
    tts, piper16k, piper_texts = bench_tts(n_tts)
    real, real_refs = librivox()
    clips = real + piper16k[: (3 if args.quick else 8)]
    refs = real_refs + piper_texts[: (3 if args.quick else 8)]
    if args.quick:
        clips, refs = clips[:2] + piper16k[:2], refs[:2] + piper_texts[:2]
    results = {"threads": args.threads, "load_average": os.getloadavg()[0], "tts": tts, "asr": {}}
    for name in ("whisper-base", "whisper-tiny.en"):
        results["asr"][name] = bench_asr(name, clips, refs, args.threads, args.batch_size)
    results["dnsmos"] = dm = bench_dnsmos(real or piper16k)

    print("\nTTS real-time factor (lower is faster)")
    for voice, r in tts.items():
        if "error" in r:
            print(f"  {voice:18s} not run: {r['error']}")
        else:
            print(f"  {voice:18s} single {r['rtf_single']:.3f}   batch {r['rtf_batch']:.3f}   ({r['clips']} clips, {r['audio_s']} s)")
    print("\nASR real-time factor (lower is faster), WER on the same clips")
    for name, r in results["asr"].items():
        fw = r.get("rtf_faster_whisper_int8", float("nan"))
        print(f"  {name:16s} single {r['rtf_single']:.3f}   batched {r['rtf_batched']:.3f}   batched int8 "
              f"{r['rtf_batched_int8']:.3f}   faster-whisper int8 {fw:.3f}   WER {r['wer_batched']:.1%} "
              f"(int8 {r['wer_batched_int8']:.1%}, fw {r.get('wer_faster_whisper_int8', float('nan')):.1%})"
              f"   [{r['clips']} clips, {r['audio_s']} s]")
    print("\nDNSMOS time ratios (1.0 = no one-off cost)")
    if "error" in dm:
        print(f"  not run: {dm['error']}")
    else:
        print(f"  cold first call / repeat {dm['cold_over_repeat']:.2f}   first call after dnsmos_warmup / repeat "
              f"{dm['after_warmup_over_repeat']:.2f}   (warm-up {dm['warmup_s']} s; RTF {dm['rtf']:.3f} on "
              f"{dm['clips']} clips, {dm['audio_s']} s)")
    base = results["asr"]["whisper-base"]
    piper = tts.get("piper-joe", {})
    fw_base = base.get("rtf_faster_whisper_int8", float("nan"))
    targets = {
        "piper_rtf<=0.1": piper.get("rtf_batch", float("inf")) <= 0.1,
        "whisper_base_batched_rtf<=0.25 (float32)": base["rtf_batched"] <= 0.25,
        "whisper_base_batched_rtf<=0.25 (int8)": base["rtf_batched_int8"] <= 0.25,
        "whisper_base_batched<=1.5x_faster_whisper_int8 (float32)": base["rtf_batched"] <= 1.5 * fw_base,
        "whisper_base_batched<=1.5x_faster_whisper_int8 (int8)": base["rtf_batched_int8"] <= 1.5 * fw_base,
    }
    results["targets"] = targets
    print("\nTargets (2 CPU cores):")
    for k, ok in targets.items():
        print(f"  {'MET ' if ok else 'MISS'} {k}")
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    path = output_dir("bench") / "bench_speech.json"
    path.write_text(json.dumps(results, indent=2, default=float))
    print(f"\n{results['seconds']} s in all; figures written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
