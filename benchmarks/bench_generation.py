"""Chat generation engines on the same prompts: a naive one-prompt loop, the batched transformers
backend (helpers.lm.generation.LM.chat) and llama.cpp's server (helpers.lm.server), single stream
and with parallel slots, for each bundled LM.

    python benchmarks/bench_generation.py [--models smollm2-135m,qwen-coder-0.5b] [--prompts 16]
                                          [--new-tokens 64] [--batch 16] [--slots 1,4,8] [--skip-naive]

Every engine generates exactly ``--new-tokens`` tokens per prompt (transformers: min_new_tokens =
max_new_tokens; llama.cpp: ignore_eos), greedy, from the same GGUF file (transformers runs its
float32 de-quantisation), so each row is the same work. Each row runs in its own process, so its
peak memory (RSS) is its own. Prints tokens/s, peak RSS and every ratio against the naive loop and
against batched transformers.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prompts_for(n: int) -> list[str]:
    return [f"Write a short paragraph about the number {i} and why it is interesting." for i in range(n)]


def run_one(model_name: str, engine: str, n_prompts: int, n_tok: int, batch: int, slots: int) -> dict:
    """One engine on one model, in this process; returns its measurements."""
    import torch

    from helpers.core.env import use_all_cores
    from helpers.lm.generation import LM

    use_all_cores()
    prompts = prompts_for(n_prompts)
    t0 = time.perf_counter()
    if engine == "naive" or engine == "transformers":
        lm = LM.load(model_name)
    else:
        lm = LM.load(model_name, engine="llama.cpp", slots=slots)
        lm.engine.extra = {"ignore_eos": True}
    load_s = time.perf_counter() - t0
    if engine == "naive":  # render, tokenize and generate one prompt at a time with plain model.generate
        tok, model = lm.tokenizer, lm.model
        model.generate(**tok(lm.render(prompts[0]), return_tensors="pt", add_special_tokens=False),
                       max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)  # warm-up
        t0 = time.perf_counter()
        new = 0
        with torch.inference_mode():
            for p in prompts:
                enc = tok(lm.render(p), return_tensors="pt", add_special_tokens=False)
                out = model.generate(**enc, max_new_tokens=n_tok, min_new_tokens=n_tok, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
                new += out.shape[1] - enc["input_ids"].shape[1]
        seconds = time.perf_counter() - t0
    else:
        lm.chat(prompts[:2], max_new_tokens=4, temperature=0, batch_size=batch, progress=False)  # warm-up
        if engine == "transformers":
            lm.model.generation_config.min_new_tokens = n_tok
        lm.chat(prompts, max_new_tokens=n_tok, temperature=0, batch_size=batch, progress=False)
        st = lm.last_stats
        assert st.failed == 0, st
        new, seconds = st.new_tokens, st.seconds
    return {"model": model_name, "engine": engine, "slots": slots if engine == "llama.cpp" else None,
            "batch": batch if engine == "transformers" else None, "tokens": new, "seconds": seconds,
            "tok_s": new / seconds, "load_s": load_s, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="smollm2-135m,qwen-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16, help="transformers batch size")
    ap.add_argument("--slots", default="1,4,8", help="llama.cpp parallel slots to try")
    ap.add_argument("--skip-naive", action="store_true", help="leave out the (slow) naive loop")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # model:engine:slots, run in a child process
    args = ap.parse_args()
    if args.one:
        model, engine, slots = args.one.split(":")
        print(json.dumps(run_one(model, engine, args.prompts, args.new_tokens, args.batch, int(slots))))
        return

    from helpers.core.env import describe

    print(describe())
    print(f"{args.prompts} prompts x {args.new_tokens} new tokens, greedy, each row in its own process\n")
    rows = []
    for model in args.models.split(","):
        plan = ([] if args.skip_naive else [("naive", 1)]) + [("transformers", 1)]
        plan += [("llama.cpp", int(s)) for s in args.slots.split(",")]
        for engine, slots in plan:
            cmd = [sys.executable, __file__, "--one", f"{model}:{engine}:{slots}", "--prompts", str(args.prompts),
                   "--new-tokens", str(args.new_tokens), "--batch", str(args.batch)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-3000:])
                raise SystemExit(f"{model} {engine} failed")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            what = {"naive": "naive loop", "transformers": f"transformers batch {row['batch']}",
                    "llama.cpp": f"llama.cpp {row['slots']} slot{'s' if row['slots'] != 1 else ''}"}[engine]
            print(f"{model:16s} {what:22s} {row['tok_s']:7.1f} tok/s   peak RSS {row['peak_rss_mb']:6.0f} MB   "
                  f"load {row['load_s']:5.1f}s", flush=True)
    print()
    for model in args.models.split(","):
        mine = [r for r in rows if r["model"] == model]
        ref = {r["engine"]: r for r in mine if r["engine"] in ("naive", "transformers")}
        for r in mine:
            if r["engine"] == "llama.cpp":
                vs = [f"{r['tok_s'] / ref[k]['tok_s']:.2f}x {k}" for k in ("transformers", "naive") if k in ref]
                print(f"{model}: llama.cpp {r['slots']} slots / " + ", ".join(vs))
        if "naive" in ref:
            print(f"{model}: transformers batch {args.batch} / naive: "
                  f"{ref['transformers']['tok_s'] / ref['naive']['tok_s']:.2f}x")


if __name__ == "__main__":
    main()
