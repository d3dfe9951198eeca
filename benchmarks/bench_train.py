"""Training throughput: the tiny from-scratch transformer, and DPO on SmolLM2-135M with LoRA vs full fine-tuning.

    python benchmarks/bench_train.py [--tiny-steps 20] [--tiny-batch 32] [--seq-len 128]
                                     [--model smollm2-135m] [--pairs 8] [--dpo-steps 2] [--batch 4] [--max-length 64]
                                     [--skip-dpo] [--skip-full]

Tiny: tokens/s of helpers.train.tiny.train_tiny on the default TinyConfig (about 3.2M parameters) over
character-level text, on one thread and on every core. DPO: helpers.train.finetune.dpo on the same
short arithmetic pairs, LoRA r=16 on all linear layers vs full fine-tuning, both with precomputed
reference log-probs; steps/s and tokens/s count the training loop only (model loading, tokenising and
the reference pass are reported as setup), and no checkpoints are written. Prints a table and the
ratios LoRA/full (steps/s) and tiny/DPO-LoRA (tokens/s). Nothing is asserted: the numbers depend on
the machine and on whatever else runs on it.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch

from helpers.core.env import describe, use_all_cores
from helpers.train import finetune
from helpers.train.report import TrainReport
from helpers.train.tiny import CharTokenizer, TinyConfig, TinyLM, train_tiny


def tiny_run(steps: int, batch: int, seq_len: int, threads: int) -> TrainReport:
    """Train the default tiny model for ``steps`` steps on ``threads`` threads (one warm-up step first)."""
    texts = [f"Problem {i}: {i % 97} + {i % 13} = {i % 97 + i % 13}. The answer is {i % 97 + i % 13}." * 3
             for i in range(400)]
    tok = CharTokenizer.from_corpus(texts)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = TinyLM(TinyConfig(vocab_size=tok.vocab_size, max_len=max(128, seq_len)))
        train_tiny(model, texts, tokenizer=tok, steps=1, batch_size=batch, seq_len=seq_len, progress=False)
        return train_tiny(TinyLM(model.cfg), texts, tokenizer=tok, steps=steps, batch_size=batch, seq_len=seq_len,
                          progress=False)
    finally:
        torch.set_num_threads(before)


def dpo_run(model: str, pairs: list[dict], *, lora: bool, steps: int, batch: int, max_length: int) -> TrainReport:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        return finetune.dpo(model, pairs, lora=lora, max_steps=steps, batch_size=batch, max_length=max_length,
                            output_dir=out, save_every=0, progress=False)


def row(label: str, r: TrainReport) -> str:
    return (f"{label:22s} {r.steps:6d} {r.seconds:9.1f} {r.setup_seconds:8.1f} {r.tokens:8d} "
            f"{r.tokens_per_second:10.1f} {r.steps_per_second:9.3f} {r.peak_memory_mb:9.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny-steps", type=int, default=20, help="optimizer steps of the tiny model")
    ap.add_argument("--tiny-batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128, help="characters per tiny training sequence")
    ap.add_argument("--model", default="smollm2-135m", help="LM for the DPO runs (bundled name, hub id or path)")
    ap.add_argument("--pairs", type=int, default=8, help="preference pairs (the same for LoRA and full)")
    ap.add_argument("--dpo-steps", type=int, default=2, help="DPO optimizer steps per run")
    ap.add_argument("--batch", type=int, default=4, help="pairs per DPO step")
    ap.add_argument("--max-length", type=int, default=64, help="DPO tokens of prompt plus reply")
    ap.add_argument("--skip-dpo", action="store_true", help="only the tiny model")
    ap.add_argument("--skip-full", action="store_true", help="DPO with LoRA only (full fine-tuning needs ~3 GB)")
    args = ap.parse_args()
    cores = use_all_cores()
    print(describe())
    print(f"{'run':22s} {'steps':>6s} {'train s':>9s} {'setup s':>8s} {'tokens':>8s} {'tok/s':>10s} "
          f"{'steps/s':>9s} {'peak MiB':>9s}")
    results: dict[str, TrainReport] = {}
    for threads in sorted({1, cores}):
        r = tiny_run(args.tiny_steps, args.tiny_batch, args.seq_len, threads)
        results[f"tiny {threads}t"] = r
        print(row(f"tiny 3.2M, {threads} thread{'s' if threads > 1 else ''}", r), flush=True)
    if not args.skip_dpo:
        pairs = [{"prompt": f"What is {a} + {b}?", "chosen": f"{a + b}", "rejected": f"{a + b + 1}"}
                 for a, b in ((i % 7 + 1, i % 5 + 2) for i in range(args.pairs))]
        kinds = [("lora", True)] + ([] if args.skip_full else [("full", False)])
        for label, lora in kinds:
            t0 = time.perf_counter()
            r = dpo_run(args.model, pairs, lora=lora, steps=args.dpo_steps, batch=args.batch,
                        max_length=args.max_length)
            results[f"dpo {label}"] = r
            print(row(f"dpo {label}" + (" r=16" if lora else ""), r) + f"  ({time.perf_counter() - t0:.0f}s in all)",
                  flush=True)
    print()
    best_tiny = max((v for k, v in results.items() if k.startswith("tiny")), key=lambda r: r.tokens_per_second)
    if "dpo lora" in results and "dpo full" in results:
        ratio = results["dpo lora"].steps_per_second / results["dpo full"].steps_per_second
        print(f"DPO steps/s, LoRA / full fine-tuning: {ratio:.2f}x "
              f"(peak memory {results['dpo lora'].peak_memory_mb:.0f} vs {results['dpo full'].peak_memory_mb:.0f} MiB)")
    if "dpo lora" in results:
        ratio = best_tiny.tokens_per_second / results["dpo lora"].tokens_per_second
        print(f"training tokens/s, tiny 3.2M / SmolLM2 DPO-LoRA: {ratio:.0f}x")
    if f"tiny {cores}t" in results and cores > 1:
        ratio = results[f"tiny {cores}t"].tokens_per_second / results["tiny 1t"].tokens_per_second
        print(f"tiny tokens/s, {cores} threads / 1 thread: {ratio:.2f}x" + (
            "  (below 1: the threads fight over busy cores)" if ratio < 1 and not math.isnan(ratio) else ""))


if __name__ == "__main__":
    main()
