"""Batched chat generation (helpers.lm.generation.LM.chat) vs a naive one-prompt-at-a-time loop.

    python benchmarks/bench_generation.py [--model smollm2-135m] [--prompts 32] [--batch 32] [--new-tokens 64]

Both sides generate exactly ``--new-tokens`` tokens per prompt (min_new_tokens = max_new_tokens, greedy), so
the comparison is the same work. Prints tokens/s of each, the throughput ratio, and peak memory (RSS).
Target on 2 CPU cores with the bundled SmolLM2-135M: at least 6x at batch 32.
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from helpers.core.env import describe, use_all_cores
from helpers.lm.generation import LM


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    use_all_cores()
    print(describe())
    t0 = time.perf_counter()
    lm = LM.load(args.model)
    print(f"loaded {args.model} in {time.perf_counter() - t0:.2f}s (bundled models load from the de-quantised cache)")
    prompts = [f"Write a short paragraph about the number {i} and why it is interesting." for i in range(args.prompts)]
    n_tok = args.new_tokens
    # Naive: render, tokenize and generate one prompt at a time with plain model.generate.
    tok, model = lm.tokenizer, lm.model
    model.generate(**tok(lm.render(prompts[0]), return_tensors="pt", add_special_tokens=False).to(model.device),
                   max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)  # warm-up
    t0 = time.perf_counter()
    naive_tokens = 0
    with torch.inference_mode():
        for p in prompts:
            enc = tok(lm.render(p), return_tensors="pt", add_special_tokens=False).to(model.device)
            out = model.generate(**enc, max_new_tokens=n_tok, min_new_tokens=n_tok, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
            naive_tokens += out.shape[1] - enc["input_ids"].shape[1]
    naive_s = time.perf_counter() - t0
    rss_naive = peak_rss_mb()
    # Batched: helpers.lm.generation.
    lm.chat(prompts[:4], max_new_tokens=4, temperature=0, batch_size=args.batch, progress=False)  # warm-up
    model.generation_config.min_new_tokens = n_tok
    lm.chat(prompts, max_new_tokens=n_tok, temperature=0, batch_size=args.batch, progress=False)
    model.generation_config.min_new_tokens = None
    st = lm.last_stats
    naive_tps = naive_tokens / naive_s
    print(f"naive loop : {naive_tokens} tokens in {naive_s:.1f}s = {naive_tps:.1f} tok/s (peak RSS {rss_naive:.0f} MB)")
    print(f"batched {args.batch:3d}: {st.new_tokens} tokens in {st.seconds:.1f}s = {st.tokens_per_second:.1f} tok/s "
          f"(peak RSS {peak_rss_mb():.0f} MB)")
    print(f"throughput ratio batched/naive: {st.tokens_per_second / naive_tps:.2f}x")


if __name__ == "__main__":
    main()
