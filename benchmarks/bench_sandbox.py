"""How cheap is a sandboxed run? Executions per second for trivial passing code.

Compares, for the same trivial program (``pass`` in Python):

* a bare ``subprocess.run([python, "-c", ...])`` (no limits, no isolation),
* the sandbox in ``basic`` mode (rlimits, scrubbed env, process group, temp dir),
* the sandbox in ``namespaces`` mode (the default as root: + network/PID/mount namespaces,
  own uid, private tmpfs),

each serially and with one worker per core, and prints the overhead ratio against the bare
subprocess. Target from the course issue: >= 20 sandboxed runs/s on 2 cores.

    python benchmarks/bench_sandbox.py            # 60 runs per variant
    python benchmarks/bench_sandbox.py --n 200    # steadier numbers

Numbers on a shared machine are inflated by other load: the load average is printed too.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.verify.sandbox import Sandbox, detect_isolation  # noqa: E402


def rate(fn, n: int, workers: int) -> float:
    """Runs per second of ``fn`` called ``n`` times with ``workers`` threads."""
    t0 = time.perf_counter()
    if workers == 1:
        for _ in range(n):
            fn()
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda _: fn(), range(n)))
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="runs per variant")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()

    iso = detect_isolation()
    py = iso.python or os.path.realpath(sys.executable)  # the interpreter the sandbox runs, for a fair ratio
    bare = lambda: subprocess.run([py, "-E", "-s", "-S", "-c", "pass"], check=True)  # noqa: E731
    variants = {"bare subprocess": bare}
    basic = Sandbox(isolation="basic")
    variants["sandbox (basic)"] = lambda: _check(basic.run_python("pass"))
    if iso.mode == "namespaces":
        full = Sandbox()
        variants["sandbox (namespaces)"] = lambda: _check(full.run_python("pass"))

    bare()  # warm caches
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other load inflates timings)")
    print(f"isolation available: {iso.mode}; {args.n} runs of trivial passing Python ({py}) per variant\n")
    print(f"{'variant':24s} {'serial runs/s':>14s} {f'{args.workers} workers runs/s':>18s} {'ms/run':>8s} {'overhead':>9s}")
    base = None
    results = {}
    for name, fn in variants.items():
        serial = rate(fn, args.n, 1)
        par = rate(fn, args.n, args.workers)
        base = base or serial
        results[name] = par
        print(f"{name:24s} {serial:14.1f} {par:18.1f} {1000 / serial:8.1f} {base / serial:8.2f}x")
    best = results.get("sandbox (namespaces)", results["sandbox (basic)"])
    verdict = "meets" if best >= 20 else "MISSES"
    print(f"\ndefault sandbox: {best:.1f} runs/s with {args.workers} workers -> {verdict} the target of 20 runs/s")

    if Sandbox().node:
        node = Sandbox()
        print(f"node (JavaScript) in the default sandbox: "
              f"{rate(lambda: _check(node.run_javascript('1'), 'javascript'), max(10, args.n // 4), args.workers):.1f} runs/s")


def _check(res, what: str = "python") -> None:
    if res.status != "passed":
        raise RuntimeError(f"trivial {what} program did not pass: {res}\n{res.stderr}")


if __name__ == "__main__":
    main()
