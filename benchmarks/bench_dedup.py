"""Benchmark: embedding dedup at scale, clustered (SemDeDup-style) search vs exact all-pairs.

For 10k and 100k (and 1M with ``--full``) random-but-clustered 384-d unit vectors with planted
near-duplicates (``helpers.text.dedup.clustered_embeddings``) it measures:

* items/s of the full clustered dedup (k-means + probe search + grouping),
* items/s of exact blocked all-pairs search (at 1M exact search is timed on a sample of
  query rows against all rows and extrapolated: the cost is linear in the number of query
  rows),
* recall of the clustered search against exact search: the share of exact pairs with cosine
  >= threshold that the clustered search also finds (on all pairs where exact ran in full,
  otherwise on every pair touching the sampled query rows),
* the ratios (speed-up, recall), and whether the target holds: 100k deduplicated in under
  60 s with recall >= 0.95.

Run: ``python benchmarks/bench_dedup.py`` (10k + 100k), ``--full`` adds 1M, ``--quick`` runs
10k only (for CI), ``--sizes 1000000`` picks sizes. Timings on a shared machine are inflated.
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

from helpers.text.dedup import (clustered_embeddings, embedding_dedup, pair_recall,  # noqa: E402
                           similar_pairs_exact)


def sampled_exact(x: np.ndarray, threshold: float, n_queries: int, seed: int = 0):
    """Exact search for a random sample of query rows against all rows.

    Returns (reference pairs as global (i, j) with i != j, seconds, extrapolated seconds for
    the full all-pairs search: n/2 queries' worth, since all-pairs only needs the upper half).
    """
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(len(x), n_queries, replace=False))
    t0 = time.perf_counter()
    pairs, _ = similar_pairs_exact(x[q], threshold, other=x)
    dt = time.perf_counter() - t0
    pairs = np.stack([q[pairs[:, 0]], pairs[:, 1]], 1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return pairs, dt, dt * (len(x) / 2) / n_queries, q


def run(n: int, threshold: float, exact_mode: str, n_queries: int, seed: int, **kw) -> dict:
    x, _ = clustered_embeddings(n, seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    res = embedding_dedup(x, threshold, search="clustered", seed=seed, **kw)
    t_cl, c_cl = time.perf_counter() - t0, time.process_time() - c0
    row = {"n": n, "clustered_s": round(t_cl, 2), "clustered_cpu_s": round(c_cl, 2),
           "clustered_items_per_s": round(n / t_cl),
           "removed": res.n_removed, "pairs_found": int(len(res.pairs)),
           "clusters": res.stats["clusters"], "n_probe": res.stats["n_probe"],
           "comparison_fraction": round(res.stats["comparison_fraction"], 4)}
    if exact_mode == "full":
        t0, c0 = time.perf_counter(), time.process_time()
        ref, _ = similar_pairs_exact(x, threshold)
        t_ex = time.perf_counter() - t0
        row.update(exact_s=round(t_ex, 2), exact_cpu_s=round(time.process_time() - c0, 2), exact_measured="all pairs", exact_pairs=int(len(ref)),
                   recall=round(pair_recall(res.pairs, ref, n), 4))
    else:
        ref, dt, t_ex, q = sampled_exact(x, threshold, min(n_queries, n), seed)
        # clustered pairs that touch the sampled queries, in the same (query, other) orientation
        p = res.pairs
        inq = np.zeros(n, dtype=bool)
        inq[q] = True
        found = np.concatenate([p[inq[p[:, 0]]], p[inq[p[:, 1]]][:, ::-1]])
        row.update(exact_s=round(t_ex, 2), exact_measured=f"extrapolated from {len(q)} query rows ({dt:.1f} s)",
                   exact_pairs=int(len(ref)), recall=round(_directed_recall(found, ref, n), 4))
    row["exact_items_per_s"] = round(n / row["exact_s"]) if row["exact_s"] else None
    row["speedup"] = round(row["exact_s"] / t_cl, 2)
    return row


def _directed_recall(found: np.ndarray, ref: np.ndarray, n: int) -> float:
    if len(ref) == 0:
        return 1.0
    key = lambda p: p[:, 0].astype(np.int64) * n + p[:, 1]  # noqa: E731
    return float(np.isin(key(ref), key(found)).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="also run 1M embeddings (several minutes)")
    ap.add_argument("--quick", action="store_true", help="10k only (a few seconds; for CI)")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--n-probe", type=int, default=3)
    ap.add_argument("--queries", type=int, default=2000, help="query rows for sampled exact search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", type=str, default=None,
                    help="comma-separated sizes to run instead (exact search in full up to 100k, sampled above)")
    ap.add_argument("--json", type=str, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    try:
        from helpers.core.env import use_all_cores
        threads = use_all_cores()  # torch may default to fewer threads than the cores we may use
    except ImportError:  # pragma: no cover
        threads = None
    print("Wall times on a shared machine are inflated; CPU time (all threads) shows the work done.")
    print(f"cores visible: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}"
          f" | torch threads: {threads} | threshold {args.threshold} | n_probe {args.n_probe}")
    plan = [(10_000, "full")] if args.quick else [(10_000, "full"), (100_000, "full")]
    if args.full:
        plan.append((1_000_000, "sampled"))
    if args.sizes:
        plan = [(int(x), "full" if int(x) <= 100_000 else "sampled") for x in args.sizes.split(",")]
    rows = []
    for n, mode in plan:
        row = run(n, args.threshold, mode, args.queries, args.seed, n_probe=args.n_probe)
        rows.append(row)
        print(f"\n== n = {n:,} ({row['clusters']} clusters, n_probe {row['n_probe']}, "
              f"{row['comparison_fraction']:.2%} of all pairs compared)")
        print(f"clustered dedup : {row['clustered_s']:8.2f} s  {row['clustered_items_per_s']:>10,} items/s"
              f"  removed {row['removed']:,}  (CPU time {row['clustered_cpu_s']:.1f} s over all threads)")
        print(f"exact all-pairs : {row['exact_s']:8.2f} s  {row['exact_items_per_s']:>10,} items/s"
              f"  ({row['exact_measured']})")
        print(f"ratios          : speed-up {row['speedup']:.1f}x   recall vs exact {row['recall']:.4f}"
              f"  ({row['exact_pairs']:,} exact pairs)")
    target = [r for r in rows if r["n"] == 100_000]
    ok = True
    if target:
        r = target[0]
        ok = r["clustered_s"] < 60 and r["recall"] >= 0.95
        print(f"\nTARGET 100k in < 60 s with recall >= 0.95: {'MET' if ok else 'NOT MET'} "
              f"({r['clustered_s']} s, recall {r['recall']})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
