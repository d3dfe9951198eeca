"""Chat generation engines on the same prompts: a naive one-prompt loop, the batched transformers
backend (helpers.lm.generation.LM.chat) and llama.cpp's server (helpers.lm.server), single stream
and with parallel slots, for each bundled LM.

    python benchmarks/bench_generation.py [--models smollm2-135m,qwen-coder-0.5b] [--prompts 16]
                                          [--new-tokens 64] [--batch 16] [--slots 1,4,8] [--skip-naive]

Two workloads, from the same GGUF file (transformers runs its float32 de-quantisation), each row in
its own process so its peak memory (RSS) is its own:

* fixed: every engine generates exactly ``--new-tokens`` tokens per prompt (transformers:
  min_new_tokens = max_new_tokens; llama.cpp: ignore_eos), greedy: the same work, raw decoding speed.
* chains (``--chains N``): chapter 06's real job, N maths problems x 8 sampled chains of thought
  (temperature 0.8, up to 200 tokens, replies end when the model stops): useful tokens per second
  and wall time, where a padded batch pays for its longest reply and continuous batching does not.

Prints tokens/s, peak RSS and every ratio against the naive loop and against batched transformers.
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
    if engine.endswith("-chains"):
        return run_chains(model_name, engine.removesuffix("-chains"), n_prompts, batch, slots)
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


def run_chains(model_name: str, engine: str, n_problems: int, batch: int, slots: int) -> dict:
    """Chapter 06's sampling job on one engine: n_problems x 8 chains, temperature 0.8, up to 200 tokens."""
    from helpers.lm.generation import LM
    from helpers.verify import mathgen as mg

    t0 = time.perf_counter()
    lm = LM.load(model_name, engine=engine, slots=slots)
    load_s = time.perf_counter() - t0
    problems = mg.make_problems(n_problems, seed=0)
    example = mg.make_problem("shopping", 2, seed=10_000)
    t0 = time.perf_counter()
    s = mg.sample_chains(lm, problems, 8, example=example, max_new_tokens=200, temperature=0.8, seed=0,
                         batch_size=batch, progress=False)
    seconds = time.perf_counter() - t0
    grades = mg.grade_chains(problems, s.texts, s.truncated)
    correct = sum(g.correct for row in grades for g in row) / (8 * n_problems)
    return {"model": model_name, "engine": engine, "slots": slots if engine == "llama.cpp" else None,
            "batch": batch if engine == "transformers" else None, "tokens": s.new_tokens, "seconds": seconds,
            "tok_s": s.new_tokens / seconds, "load_s": load_s, "peak_rss_mb": peak_rss_mb(), "correct": correct}


def chains_table(args: argparse.Namespace) -> None:
    """The chains workload on each engine, with wall-time ratios."""
    model = "qwen-coder-0.5b"
    print(f"\nchapter 06's job: {args.chains} problems x 8 chains, temperature 0.8, up to 200 tokens ({model})")
    rows = []
    for engine, slots in [("transformers", 1)] + [("llama.cpp", int(s)) for s in args.slots.split(",") if s != "1"]:
        row = child(model, f"{engine}-chains", slots, args, args.chains)
        rows.append(row)
        what = f"transformers batch {args.batch}" if engine == "transformers" else f"llama.cpp {slots} slots"
        print(f"{what:22s} {row['seconds']:6.1f} s   {row['tok_s']:6.1f} useful tok/s   {row['tokens']} tokens   "
              f"correct {row['correct']:.0%}   peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    for r in rows[1:]:
        print(f"llama.cpp {r['slots']} slots: {rows[0]['seconds'] / r['seconds']:.2f}x faster than batched "
              f"transformers on this job")


def child(model: str, engine: str, slots: int, args: argparse.Namespace, prompts: int) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{model}:{engine}:{slots}", "--prompts", str(prompts),
           "--new-tokens", str(args.new_tokens), "--batch", str(args.batch)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise SystemExit(f"{model} {engine} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="smollm2-135m,qwen-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16, help="transformers batch size")
    ap.add_argument("--slots", default="1,4,8", help="llama.cpp parallel slots to try")
    ap.add_argument("--skip-naive", action="store_true", help="leave out the (slow) naive loop")
    ap.add_argument("--chains", type=int, default=6, help="problems in the chains workload (0: skip it)")
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
            row = child(model, engine, slots, args, args.prompts)
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
    if args.chains:
        chains_table(args)


if __name__ == "__main__":
    main()
