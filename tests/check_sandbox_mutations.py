"""Mutation check for tests/test_sandbox.py: remove one protection, the matching tests must fail.

    python tests/check_sandbox_mutations.py          # every mutation, 2 at a time (needs root)
    python tests/check_sandbox_mutations.py -k nofile,network   # only mutations whose name matches

Each mutation patches :mod:`helpers.verify.sandbox` in a fresh interpreter (the launcher script, the
``unshare`` command line, the environment passed on, or one method), runs the hostile-code
tests that guard that protection, and reports whether *every one of them* failed, as it should.
``tests/test_sandbox.py::test_every_protection_is_tested`` runs this whole check (about 20 s
on an idle 2-core machine), so the suite fails when a protection loses its test. Not collected
by pytest itself (the file name does not start with ``test_``).

Needs root (namespaces mode); elsewhere most protections are not in force, and it says so.
Two protections are checked by hand, not here, because their tests run a separate process
that imports the unpatched module: the relative process limit of basic mode without root
(``test_basic_mode_as_a_non_root_user_with_many_threads``) and, where this interpreter can be
read by the sandbox user, the interpreter probe (``test_sandboxed_python_uses_its_own_...``).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = str(ROOT / "tests" / "test_sandbox.py")


def _script(old: str, new: str, where: str = "_NS_SCRIPT") -> str:
    return (f"assert {old!r} in S.{where}, 'pattern not found in {where}'\n"
            f"S.{where} = S.{where}.replace({old!r}, {new!r})")


def _command(cmd_fix: str, kw_fix: str) -> str:
    return ("_Orig = subprocess.Popen\n"
            "class _P(_Orig):\n"
            "    def __init__(self, cmd, **kw):\n"
            "        if cmd and cmd[0] == 'unshare':\n"
            f"            cmd, kw = {cmd_fix}, {kw_fix}\n"
            "        super().__init__(cmd, **kw)\n"
            "S.subprocess.Popen = _P")


_NPROC_SET = 'ulimit -p "$NPROC" 2>/dev/null || ulimit -u "$NPROC" 2>/dev/null || fail "could not set the process limit"'

#: name: (python that patches helpers.verify.sandbox as S, -k expression of the tests that must all fail)
MUTATIONS: dict[str, tuple[str, str]] = {
    "memory limit (RLIMIT_AS)": (_script('ulimit -v "$MEMKB" 2>/dev/null;', ""), "memory_bomb_hits"),
    "file size limit (RLIMIT_FSIZE)": (_script('ulimit -f "$FBLK"', "true"), "huge_file"),
    "process limit (RLIMIT_NPROC)": (_script(_NPROC_SET, "true"), "fork_bomb_is_capped"),
    "nproc fallback where sh is bash": (_script(_NPROC_SET, 'ulimit -p "$NPROC" 2>/dev/null'), "where_sh_is_bash"),
    "cpu limit (RLIMIT_CPU)": (_script('ulimit -S -t "$CPU"; ulimit -H -t $((CPU + 1));', ""), "cpu_limit"),
    "open-file limit (RLIMIT_NOFILE)": (_script('ulimit -n "$NFILE"', "true"), "open_file_limit"),
    "private tmpfs": (_script('mount --all --fstab "$W" || fail "mounting the private tmpfs"\ncd /tmp || fail "cd /tmp"',
                              'D=$(mktemp -d /var/tmp/sdw-mut.XXXXXX) && chmod 1777 "$D" && cd "$D"'),
                      "filling_the_disk or files_outside"),
    "separate uid": (_script('setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs -- "$@"', '"$@"'),
                     "files_outside or fork_bomb_is_capped"),
    "network namespace": (_command("[c for c in cmd if c != '--net']", "kw"), "network"),
    # safe to run: the program still runs as a fresh unprivileged uid, so `kill -1` reaches only that uid
    "PID namespace": (_command("[c for c in cmd if c not in ('--pid', '--fork', '--kill-child', '--mount-proc')]",
                               "kw"), "cannot_kill"),
    # strays that left the process group are killed by the PID namespace's end and by cgroup.kill: remove both
    "stray-process kill (PID namespace + cgroup.kill)": (
        _command("[c for c in cmd if c not in ('--pid', '--fork', '--kill-child', '--mount-proc')]", "kw")
        + "\nS._cgroup_write = lambda *a, **k: None", "outlives"),
    "environment scrub": (_command("cmd", "{**kw, 'env': {**os.environ, **kw['env']}}"), "secrets"),
    # the group is never killed (the real kill runs at exit, so nothing is left behind)
    "wall-clock kill": ("import atexit\n_kill, _left = S.Sandbox._kill_group, []\n"
                        "S.Sandbox._kill_group = staticmethod(lambda *a: _left.append(a))\n"
                        "atexit.register(lambda: [_kill(*a) for a in _left])", "catching_signals"),
    # no CPU accounting over the tree: neither the cgroup's cpu.stat nor the rusage of waited-for children
    "process-tree cpu budget": ("S.Sandbox._tree_cpu = staticmethod(lambda *a, **k: None)", "process_tree"),
    # the output cap raised to 50 MB (not removed: an unbounded flood would fill this machine's memory)
    "output cap": ("_collect = S.Sandbox._collect\n"
                   "S.Sandbox._collect = lambda self, proc, data, lim, t0: "
                   "_collect(self, proc, data, S.replace(lim, max_output_bytes=50_000_000), t0)", "output_flood"),
}


def run(patch: str, tests: str) -> tuple[bool, str]:
    """Run the tests selected by ``tests`` with ``patch`` applied; (all of them failed, summary)."""
    code = f"""
import os, subprocess, sys, pytest
import helpers.verify.sandbox as S
{patch}
sys.exit(pytest.main(['-q', '-rA', '-p', 'no:cacheprovider', {TESTS!r}, '-k', {tests!r}]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    failed = re.findall(r"^FAILED \S+::(\w+)", r.stdout, re.M)
    passed = re.findall(r"^PASSED \S+::(\w+)", r.stdout, re.M)
    skipped = re.findall(r"^SKIPPED", r.stdout, re.M)
    why = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("E ")][:1]
    ok = r.returncode == 1 and bool(failed) and not passed and not skipped
    info = f"failed: {', '.join(failed) or '-'}"
    if passed or skipped:
        info += f"; PASSED anyway: {', '.join(passed) or '-'}; skipped: {len(skipped)}"
    if not failed and not passed:
        info += " | " + (r.stdout.strip().splitlines() or [r.stderr[-300:]])[-1]
    return ok, " | ".join([info] + why)[:300]


def check(names: list[str] | None = None, workers: int = 2, echo: bool = True) -> dict[str, tuple[bool, str]]:
    """Run the mutations (all, or those whose name contains one of ``names``); name -> (caught, info)."""
    sys.path.insert(0, str(ROOT))
    from helpers.verify.sandbox import detect_isolation

    if detect_isolation().mode != "namespaces":
        raise SystemExit("the mutation check needs namespaces (run as root): " + " ".join(detect_isolation().notes))
    todo = {n: m for n, m in MUTATIONS.items() if not names or any(k.lower() in n.lower() for k in names)}
    results: dict[str, tuple[bool, str]] = {}
    try:
        with ThreadPoolExecutor(workers) as pool:
            futs = {name: pool.submit(run, patch, tests) for name, (patch, tests) in todo.items()}
            for name, fut in futs.items():
                results[name] = fut.result()
                if echo:
                    ok, info = results[name]
                    print(f"without {name:34s}: {'tests FAIL, as they should' if ok else 'NOT CAUGHT'} :: {info}",
                          flush=True)
    finally:
        subprocess.run("rm -rf /var/tmp/sdw-mut.*", shell=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="comma-separated parts of mutation names to run (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="mutations run at the same time")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = check([k for k in args.k.split(",") if k.strip()] or None, args.workers)
    bad = [n for n, (ok, _) in res.items() if not ok]
    print(f"\n{len(res) - len(bad)}/{len(res)} protections caught by their tests in {time.perf_counter() - t0:.0f} s"
          + (f"; NOT caught: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
