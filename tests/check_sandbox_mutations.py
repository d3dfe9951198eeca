"""Mutation check for tests/test_sandbox.py: remove one protection, the matching test must fail.

    python tests/check_sandbox_mutations.py          # all mutations (about a minute; needs root)

Each mutation patches :mod:`helpers.sandbox` in a fresh interpreter (the launcher script, or
the ``unshare`` command line, or the environment passed on), runs the hostile-code tests that
guard that protection, and reports whether they failed as they should. Not collected by pytest.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = str(ROOT / "tests" / "test_sandbox.py")

# name: (python that patches helpers.sandbox as S, -k expression of the tests that must fail)
SCRIPT_EDITS = {
    "memory limit (RLIMIT_AS)": ('ulimit -v "$MEMKB" 2>/dev/null;', "", "memory_bomb_hits"),
    "file size limit (RLIMIT_FSIZE)": ('ulimit -f "$FBLK"', "true", "huge_file"),
    "process limit (RLIMIT_NPROC)": ('ulimit -p "$NPROC"\n', "\n", "fork_bomb_is_capped"),
    "cpu limit (RLIMIT_CPU)": ('ulimit -S -t "$CPU"; ulimit -H -t $((CPU + 1));', "", "cpu_limit"),
    "private tmpfs": ('mount --all --fstab "$W" || fail "mounting the private tmpfs"\ncd /tmp || fail "cd /tmp"',
                      'D=$(mktemp -d /var/tmp/sdw-mut.XXXXXX) && chmod 1777 "$D" && cd "$D"',
                      "filling_the_disk or files_outside"),
    "separate uid": ('setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs -- "$@"', '"$@"',
                     "files_outside or fork_bomb_is_capped"),
}
CMD_EDITS = {
    "network namespace": ("[c for c in cmd if c != '--net']", "kw", "network"),
    "PID namespace": ("[c for c in cmd if c not in ('--pid', '--fork', '--kill-child', '--mount-proc')]", "kw",
                      "outlives"),
    "environment scrub": ("cmd", "{**kw, 'env': {**os.environ, **kw['env']}}", "secrets"),
}


def run(patch: str, tests: str) -> tuple[int, str]:
    code = f"""
import os, subprocess, sys, pytest
import helpers.sandbox as S
{patch}
sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', {TESTS!r}, '-k', {tests!r}]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    why = [ln.strip() for ln in r.stdout.splitlines() if ln.startswith("E ")][:1]
    last = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else [r.stderr[-200:]]
    return r.returncode, " | ".join(why + last)[:220]


def main() -> int:
    bad = 0
    for name, (old, new, tests) in SCRIPT_EDITS.items():
        patch = (f"assert {old!r} in S._NS_SCRIPT, 'pattern not found'\n"
                 f"S._NS_SCRIPT = S._NS_SCRIPT.replace({old!r}, {new!r})")
        rc, info = run(patch, tests)
        bad += rc != 1
        print(f"without {name:32s}: {'test FAILS, as it should' if rc == 1 else 'UNEXPECTED rc=%d' % rc} :: {info}")
    for name, (cmd_fix, kw_fix, tests) in CMD_EDITS.items():
        patch = ("_Orig = subprocess.Popen\n"
                 "class _P(_Orig):\n"
                 "    def __init__(self, cmd, **kw):\n"
                 "        if cmd and cmd[0] == 'unshare':\n"
                 f"            cmd, kw = {cmd_fix}, {kw_fix}\n"
                 "        super().__init__(cmd, **kw)\n"
                 "S.subprocess.Popen = _P")
        rc, info = run(patch, tests)
        bad += rc != 1
        print(f"without {name:32s}: {'test FAILS, as it should' if rc == 1 else 'UNEXPECTED rc=%d' % rc} :: {info}")
    subprocess.run("rm -rf /var/tmp/sdw-mut.*", shell=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
