"""Hostile-code tests for helpers.verify.sandbox (no models needed).

Each hostile program is written so that it *succeeds at its attack* when the matching
limit is removed (the assertion below it then fails): e.g. the memory bomb allocates 3 GiB
with calloc, which passes instantly without RLIMIT_AS; the fork bomb stops at 200 forks,
which it reaches without RLIMIT_NPROC. Attacks that only namespaces can stop (network,
files outside the folder, stray processes) are skipped, with the reason, where the machine
does not allow namespaces (not root).

``tests/check_sandbox_mutations.py`` removes each protection in turn and checks that the
matching test here fails (run by :func:`test_every_protection_is_tested` below).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import helpers.verify.sandbox as S
from helpers.verify.sandbox import Limits, Sandbox, SandboxResult, choose_python, classify, detect_isolation

ISO = detect_isolation()
needs_ns = pytest.mark.skipif(ISO.mode != "namespaces", reason="needs root namespaces: " + " ".join(ISO.notes))
REPO = Path(__file__).resolve().parent.parent

LIMITS = Limits(timeout=6.0, cpu_seconds=4, memory_mb=256, file_size_mb=4, disk_mb=16, max_processes=16,
                max_open_files=64, max_output_bytes=20_000)


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return Sandbox(LIMITS)


def bounded(fn, *args, limit: float = 40.0, **kwargs) -> SandboxResult:
    """Call ``fn`` in a thread; fail (instead of hanging) if the sandbox never returns."""
    out: list = []
    th = threading.Thread(target=lambda: out.append(fn(*args, **kwargs)), daemon=True)
    th.start()
    th.join(limit)
    if th.is_alive():
        pytest.fail(f"sandbox did not return within {limit}s: the limit did not hold")
    return out[0]


def survivors(marker: str) -> list[int]:
    """PIDs of processes whose command line contains ``marker`` (left behind by a run)."""
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                pids.append(int(pid))
    return pids


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ---------------------------------------------------------------------- ordinary programs
def test_pass_fail_syntax_exception(box):
    assert bounded(box.run_python, "print('hi')").status == "passed"
    r = bounded(box.run_python, "assert 1 + 1 == 3, 'maths'")
    assert (r.status, r.error_type) == ("failed", "AssertionError") and "maths" in r.reason
    r = bounded(box.run_python, "def f(:\n    pass")
    assert (r.status, r.error_type) == ("failed", "SyntaxError")
    r = bounded(box.run_python, "raise KeyError('k')")
    assert (r.status, r.error_type) == ("failed", "KeyError")
    r = bounded(box.run_python, "import sys; sys.exit(3)")
    assert r.status == "failed" and r.returncode == 3


def test_files_stdin_and_cwd(box):
    r = bounded(box.run_python, "import sol, sys; print(sol.double(int(sys.stdin.read())))",
                files={"sol.py": "def double(x):\n    return 2 * x\n"}, stdin="21")
    assert r.status == "passed" and r.stdout.strip() == "42"


def test_bad_input_is_reported_not_raised(box):
    assert bounded(box.run_python, "").status == "passed"  # empty program: nothing to do
    r = bounded(box.run_python, "pass", files={"../escape.py": "x"})
    assert r.status == "crashed" and "unsafe file name" in r.reason
    r = bounded(box.run_python, "pass", files={"a.py": "x = 1\0"})
    assert r.status == "crashed" and "NUL" in r.reason
    r = bounded(box.run_python, "x = 1\n" * 40_000)  # 240 kB of source
    assert r.status == "crashed" and "larger than" in r.reason
    r = bounded(box.run_python, "print('\\udcff ok \\u00e9')")  # odd characters survive decoding
    assert r.status in ("passed", "failed")


# ---------------------------------------------------------------------- time
def test_infinite_loop_killed_at_wall_clock(box):
    r = bounded(box.run_python, "while True:\n    pass", timeout=1.0, cpu_seconds=30)
    assert r.status == "timed_out" and r.reason == "wall-clock timeout", r  # not the (30 s) CPU limit


def test_cpu_limit_stops_busy_loop_that_ignores_sigxcpu(box):
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass"
    r = bounded(box.run_python, code, timeout=12.0, cpu_seconds=1)
    # without RLIMIT_CPU this would run on until the process-tree budget (cpu_seconds + 1.5) or the
    # 12 s wall clock stops it; with it, the kernel's hard limit (2 CPU s) kills the process itself
    assert r.status == "limit_hit" and r.reason.startswith("killed (SIGKILL)"), r


def test_catching_signals_does_not_survive_timeout(box):
    code = ("import signal, time\n"
            "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGXCPU, signal.SIGUSR1):\n"
            "    signal.signal(s, signal.SIG_IGN)\n"
            "while True:\n    time.sleep(0.05)\n")
    r = bounded(box.run_python, code, timeout=1.5, limit=10)  # never returning fails the test (no kill)
    assert r.status == "timed_out", r


@needs_ns
def test_no_process_outlives_the_run(box):
    marker = f"{1000 + os.getpid() % 1000}.{int(time.time()) % 100000}"
    code = (f"import os\n"
            f"if os.fork() == 0:\n"
            f"    os.setsid()\n"  # leave the process group: killpg alone cannot reach it
            f"    if os.fork() == 0:\n"
            f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
            f"    os._exit(0)\n"
            f"print('spawned', flush=True)\n")
    try:
        r = bounded(box.run_python, code)
        assert r.status == "passed", r
        time.sleep(0.3)
        assert survivors(f"sleep {marker}") == [], "a daemonised child survived the sandbox"
    finally:
        kill_all(survivors(f"sleep {marker}"))


# ---------------------------------------------------------------------- processes
def test_fork_bomb_is_capped(box):
    marker = f"{2000 + os.getpid() % 1000}.{int(time.time()) % 100000}"
    code = (f"import os\nn = 0\n"
            f"for i in range(200):\n"
            f"    try:\n        pid = os.fork()\n"
            f"    except OSError as e:\n        print('EAGAIN after', n, flush=True)\n        break\n"
            f"    if pid == 0:\n        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
            f"    n += 1\n"
            f"print('forked', n, flush=True)\n")
    try:
        r = bounded(box.run_python, code)
        forked = int(r.stdout.split("forked")[-1].split()[0]) if "forked" in r.stdout else -1
        assert "EAGAIN" in r.stdout, r
        assert 0 <= forked < LIMITS.max_processes
    finally:
        time.sleep(0.2)
        left = survivors(f"sleep {marker}")
        kill_all(left)
    if ISO.pid_namespace:
        assert left == [], "forked children survived"


def test_exponential_fork_bomb_is_contained(box):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    r = bounded(box.run_python, code, timeout=2.0, cpu_seconds=2, limit=30)
    assert r.status in ("timed_out", "limit_hit"), r
    # the machine still works: a new run passes straight away
    assert bounded(box.run_python, "print(1)").status == "passed"


# ---------------------------------------------------------------------- memory and disk
def test_memory_bomb_hits_memory_limit(box):
    # bytes(n) uses calloc: without RLIMIT_AS it "succeeds" instantly without touching RAM
    r = bounded(box.run_python, "x = bytes(3 * 1024 ** 3)\nprint('allocated', len(x))")
    assert r.status == "limit_hit" and r.reason == "memory", r
    assert "allocated" not in r.stdout


def test_huge_file_hits_file_size_limit(box):
    code = "with open('big.bin', 'wb') as f:\n    for i in range(64):\n        f.write(b'x' * 2 ** 20)\nprint('wrote 64 MiB')"
    r = bounded(box.run_python, code)
    assert r.status == "limit_hit" and r.reason == "file size", r
    assert "wrote" not in r.stdout


@needs_ns
def test_filling_the_disk_stops_at_the_private_tmpfs(box):
    code = ("import os\nn = 0\n"
            "for i in range(100):\n"
            "    with open(f'f{i}.bin', 'wb') as f:\n        f.write(b'x' * 2 ** 20)\n"  # 1 MiB each: under the file-size limit
            "    n += 1\n    print(n, flush=True)\n")
    r = bounded(box.run_python, code)
    written = int(r.stdout.split()[-1]) if r.stdout.split() else 0
    assert r.status == "limit_hit" and r.reason == "disk full", r
    assert written <= LIMITS.disk_mb


def test_output_flood_is_cut(box):
    r = bounded(box.run_python, "while True:\n    print('spam' * 250)")
    assert r.status == "limit_hit" and r.reason == "output limit", r
    assert r.output_truncated and len(r.stdout) <= LIMITS.max_output_bytes


# ---------------------------------------------------------------------- CPU over the process tree
_CPU_CHILDREN = """import os
pids = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        while True:  # each child burns CPU until its own CPU limit kills it
            pass
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)  # and the parent shrugs: whatever killed them, it exits 0
print('parent done', flush=True)
"""


@pytest.mark.parametrize("accounting", ["cgroup", "rusage"])
def test_cpu_budget_covers_the_process_tree(box, accounting):
    """A parent whose CPU-burning children are each killed at their CPU limit, and which exits 0, is not 'passed'."""
    tree_box = Sandbox(LIMITS)
    if accounting == "cgroup":
        if not tree_box.cgroup:
            pytest.skip("no writable cgroup v2 here: " + tree_box.isolation.describe())
    else:
        tree_box.cgroup = None  # the fallback: rusage of the processes that were waited for
    r = bounded(tree_box.run_python, _CPU_CHILDREN, timeout=20, cpu_seconds=1, limit=60)
    assert r.status == "limit_hit" and r.reason.startswith("cpu time"), r
    # a parent whose children use little CPU still passes
    r = bounded(tree_box.run_python, _CPU_CHILDREN.replace("while True:", "for _ in range(10):"), timeout=20,
                cpu_seconds=1)
    assert (r.status, r.stdout.strip()) == ("passed", "parent done"), r


# ---------------------------------------------------------------------- network, secrets, files, processes
@needs_ns
def test_network_is_cut_off(box):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(4)
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def accept() -> None:
        try:
            conn, _ = srv.accept()
            got.append(conn.recv(100))
            conn.close()
        except OSError:
            pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    code = ("import socket\n"
            f"for host in [('127.0.0.1', {port}), ('1.1.1.1', 53)]:\n"
            "    try:\n"
            "        s = socket.create_connection(host, timeout=1)\n"
            "        s.sendall(b'pwned'); print('CONNECTED', host)\n"
            "    except OSError as e:\n"
            "        print('blocked', host, e)\n")
    r = bounded(box.run_python, code)
    th.join(5)
    srv.close()
    assert "CONNECTED" not in r.stdout, r.stdout
    assert got == [], "the sandboxed program reached a server on the host"


def test_environment_secrets_do_not_leak(box, monkeypatch):
    secret = "sk-test-" + os.urandom(6).hex()
    for var in ("HF_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "SDW_FAKE_SECRET"):
        monkeypatch.setenv(var, secret)
    code = ("import os\nprint(dict(os.environ))\n"
            "for path in ['/proc/self/environ', '/proc/1/environ', f'/proc/{os.getppid()}/environ', "
            f"'/proc/{os.getpid()}/environ']:\n"
            "    try:\n        print(path, open(path, 'rb').read())\n"
            "    except OSError as e:\n        print(path, 'denied', e)\n")
    r = bounded(box.run_python, code)
    assert r.status == "passed", r
    shown = r.stdout + r.stderr
    if ISO.mode == "namespaces":
        assert secret not in shown
    else:  # without a PID namespace/own uid the caller's /proc/<pid>/environ is readable
        assert secret not in shown.split("/proc/")[0]


@needs_ns
def test_files_outside_the_folder_are_safe(box):
    # victim 1: world-writable file in the host's /tmp (only the private /tmp protects it)
    open_dir = tempfile.mkdtemp(prefix="sdw-victim-")
    os.chmod(open_dir, 0o777)
    v1 = Path(open_dir) / "notes.txt"
    v1.write_text("precious")
    v1.chmod(0o666)
    # victim 2: a normal 0644 file of the caller in a 0755 folder that the sandbox shows (only the
    # separate uid protects it). Not under the repo: a clone under /tmp is hidden by the private /tmp.
    d2 = Path(tempfile.mkdtemp(prefix="sdw-victim-", dir=_visible_dir()))
    os.chmod(d2, 0o755)
    v2 = d2 / f"keep-{os.getpid()}.txt"
    v2.write_text("precious")
    v2.chmod(0o644)
    code = (f"import os, shutil\n"
            f"print('SEEN', open({str(v2)!r}).read(), flush=True)\n"  # visible inside, so the test means something
            f"for p in [{str(v1)!r}, {str(v2)!r}]:\n"
            f"    for attack in ('edit', 'delete'):\n"
            f"        try:\n"
            f"            if attack == 'edit':\n                open(p, 'w').write('pwned')\n"
            f"            else:\n                os.remove(p)\n"
            f"            print('DID', attack, p)\n"
            f"        except OSError as e:\n            print('blocked', attack, p, e)\n")
    try:
        r = bounded(box.run_python, code)
        assert "SEEN precious" in r.stdout, ("victim 2 is not visible inside the sandbox", r, r.stderr)
        assert "DID" not in r.stdout, r.stdout
        assert v1.read_text() == "precious" and v2.read_text() == "precious"
    finally:
        v2.unlink(missing_ok=True)
        v1.unlink(missing_ok=True)
        os.rmdir(open_dir)
        os.rmdir(d2)


def _visible_dir() -> str:
    """A root-owned folder outside every place the sandbox hides (/tmp and S._HIDE), wherever the repo is."""
    hidden = ("/tmp",) + S._HIDE
    for d in ("/var/lib", "/opt", "/srv", "/usr/local/share", "/var/cache"):
        real = os.path.realpath(d)
        if os.path.isdir(real) and os.access(real, os.W_OK) and not any(
                real == h or real.startswith(h + "/") for h in hidden):
            return real
    pytest.skip("no writable folder outside /tmp that the sandbox shows")


@needs_ns
def test_cannot_kill_its_parent_or_other_processes(box, monkeypatch):
    """The program really tries: its parent, every PID it can see, ``kill -1``, and host PIDs.

    Victims outside: a root process, and a process running as the *same uid* the program
    gets (so only the PID namespace protects it from ``kill(-1)``, which signals every process
    of one's own uid). The caller (pytest) must survive too.
    """
    same_uid = 190_000 + os.getpid() % 9_000  # outside the sandbox's own uid range (>= 200000)
    monkeypatch.setattr(S, "_next_uid", lambda: same_uid)
    victim = subprocess.Popen(["sleep", "60"])
    twin = subprocess.Popen(["setpriv", f"--reuid={same_uid}", f"--regid={same_uid}", "--clear-groups", "--",
                             "sleep", "60"])
    code = (f"import os, signal\n"
            f"def hit(pid, what):\n"
            f"    try:\n        os.kill(pid, signal.SIGKILL); print('KILLED', what, pid, flush=True)\n"
            f"    except OSError as e:\n        print('blocked', what, pid, e.strerror, flush=True)\n"
            f"print('parent is', os.getppid(), 'uid', os.getuid(), flush=True)\n"
            f"hit(os.getppid(), 'parent')\n"
            f"for pid in ({victim.pid}, {twin.pid}, {os.getpid()}, {os.getppid()}):  # host numbers\n"
            f"    hit(pid, 'host-pid')\n"
            f"seen = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
            f"print('visible', len(seen), seen, flush=True)\n"
            f"for pid in seen:\n    hit(pid, 'visible')\n"
            f"try:\n    os.kill(-1, signal.SIGKILL); print('kill -1 sent', flush=True)\n"
            f"except OSError as e:\n    print('kill -1 blocked', e.strerror, flush=True)\n"
            f"os.killpg(0, signal.SIGCONT)\n"
            f"print('still here', flush=True)\n")
    try:
        time.sleep(0.2)  # both victims are running
        assert victim.poll() is None and twin.poll() is None
        r = bounded(box.run_python, code)
        time.sleep(0.3)
        assert f"uid {same_uid}" in r.stdout and "visible" in r.stdout, r  # the attack really ran
        assert "blocked parent" in r.stdout, r.stdout  # its parent (the namespace's PID 1) refused
        assert victim.poll() is None, "the sandboxed program killed a root process outside it"
        assert twin.poll() is None, "the sandboxed program killed a process of its own uid outside it"
        assert "KILLED host-pid" not in r.stdout, r.stdout
    finally:
        for p in (victim, twin):
            p.kill()
            p.wait()


def test_open_file_limit(box):
    code = ("fs = []\ntry:\n    for i in range(500):\n        fs.append(open('/dev/null'))\n"
            "except OSError as e:\n    print('refused:', e)\nprint('opened', len(fs))\n")
    r = bounded(box.run_python, code)
    opened = int(r.stdout.split("opened")[-1]) if "opened" in r.stdout else -1
    assert r.status == "passed" and "Too many open files" in r.stdout, r  # 500 < the usual 1024 default
    assert 0 < opened < LIMITS.max_open_files, r.stdout
    r = bounded(box.run_python, "fs = [open('/dev/null') for _ in range(500)]")
    assert (r.status, r.reason) == ("limit_hit", "open files"), r


# ---------------------------------------------------------------------- which Python, which shell
def _identity(py: str) -> list[str]:
    out = subprocess.run([py, "-E", "-s", "-S", "-c", "import sys; print(sys.version); print(sys.prefix)"],
                         capture_output=True, text=True, check=True, env=S.SAFE_ENV, cwd="/")
    return out.stdout.split("\n")[:2]


def test_sandboxed_python_uses_its_own_standard_library(box):
    """The interpreter inside reports the version and prefix it has outside (not a stranger's stdlib)."""
    assert box.python and box.python == ISO.python
    r = bounded(box.run_python, "import sys, json, re, collections\nprint(sys.version)\nprint(sys.prefix)")
    assert r.status == "passed", r
    assert r.stdout.split("\n")[:2] == _identity(box.python), (r.stdout, box.isolation.describe())


@pytest.mark.skipif(not ISO.own_user or not ISO.python, reason="needs root and setpriv (a separate sandbox uid)")
def test_choose_python_skips_an_interpreter_with_a_private_stdlib(tmp_path):
    """Like a pyenv/conda Python under /root (drwx------): it starts as another uid, but reads the wrong stdlib."""
    stdlib = subprocess.run([ISO.python, "-E", "-S", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    home = tmp_path / "private-home"
    ver = Path(stdlib).name  # "python3.11"
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "lib" / ver).symlink_to(stdlib)  # its own stdlib, inside the private folder
    private = home / "bin" / ver
    shutil.copy2(ISO.python, private)
    home.chmod(0o700)
    assert _identity(str(private))[1] == str(home)  # as the caller it finds its own prefix
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    py, notes = choose_python(True, [str(private), str(broken), ISO.python])
    assert py == ISO.python, notes
    assert "cannot read its own standard library" in notes[0] and "does not run" in notes[0], notes
    py, notes = choose_python(True, [str(private), str(broken)])
    assert py is None and "NO usable Python" in notes[0], notes
    nobody = Sandbox(LIMITS)
    nobody.python, nobody.isolation = None, replace(nobody.isolation, python=None, notes=notes)
    r = nobody.run_python("print(1)")
    assert r.status == "crashed" and "NO usable Python" in r.reason, r


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="bash is not installed")
def test_limits_hold_where_sh_is_bash(tmp_path):
    """Where /bin/sh is bash, `ulimit -p` is the read-only pipe size: the launcher must fall back to -u."""
    sh = tmp_path / "sh"
    sh.symlink_to("/bin/bash")  # bash started as "sh" runs in POSIX mode, as /bin/sh would
    bash_box = Sandbox(LIMITS)
    bash_box.shell = str(sh)
    marker = f"{3000 + os.getpid() % 1000}.{int(time.time()) % 100000}"
    code = (f"import os\nn = 0\n"
            f"for i in range(200):\n"
            f"    try:\n        pid = os.fork()\n"
            f"    except OSError:\n        print('EAGAIN', flush=True)\n        break\n"
            f"    if pid == 0:\n        os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
            f"    n += 1\n"
            f"print('forked', n, flush=True)\n")
    try:
        r = bounded(bash_box.run_python, code)
        forked = int(r.stdout.split("forked")[-1].split()[0]) if "forked" in r.stdout else -1
        if os.geteuid() != 0 or ISO.own_user:  # RLIMIT_NPROC does not bind root itself
            assert "EAGAIN" in r.stdout and 0 <= forked < LIMITS.max_processes + (0 if ISO.own_user else 200), r
    finally:
        time.sleep(0.2)
        kill_all(survivors(f"sleep {marker}"))
    r = bounded(bash_box.run_python, "open('big', 'wb').write(b'x' * 8 * 2 ** 20)")  # 512-byte blocks in POSIX mode
    assert (r.status, r.reason) == ("limit_hit", "file size"), r
    r = bounded(bash_box.run_python, "open('ok', 'wb').write(b'x' * 3 * 2 ** 20)\nprint('ok')")
    assert r.status == "passed", r
    assert bounded(bash_box.run_python, "x = bytes(3 * 1024 ** 3)").reason == "memory"


# ---------------------------------------------------------------------- javascript
node_missing = pytest.mark.skipif(Sandbox().node is None, reason="node is not installed")


@node_missing
def test_javascript_pass_fail_timeout(box):
    r = bounded(box.run_javascript, "const a = [1, 2, 3].map(x => x * 2); console.log(a.join(','));")
    assert r.status == "passed" and r.stdout.strip() == "2,4,6", r
    r = bounded(box.run_javascript, "const assert = require('assert'); assert.strictEqual(1 + 1, 3);")
    assert r.status == "failed" and r.error_type == "AssertionError", r
    r = bounded(box.run_javascript, "function f( {")
    assert r.status == "failed" and r.error_type == "SyntaxError", r
    r = bounded(box.run_javascript, "while (true) {}", timeout=1.5)
    assert r.status == "timed_out", r


@node_missing
def test_javascript_memory_bomb(box):
    r = bounded(box.run_javascript, "const a = []; while (true) a.push(new Array(1e6).fill(1.5));", timeout=20)
    assert r.status == "limit_hit", r


# ---------------------------------------------------------------------- classification and speed
@pytest.mark.parametrize("rc,stderr,killed,expected", [
    (0, "", None, ("passed", None)),
    (1, "Traceback...\nAssertionError: x", None, ("failed", "AssertionError")),
    (1, "  File 'x'\nSyntaxError: invalid syntax", None, ("failed", "SyntaxError")),
    (1, "Traceback...\nMemoryError", None, ("limit_hit", "MemoryError")),
    (1, "OSError: [Errno 28] No space left on device", None, ("limit_hit", "OSError")),
    (-signal.SIGXCPU, "", None, ("limit_hit", None)),
    (-signal.SIGSEGV, "", None, ("crashed", None)),
    (None, "", "timeout", ("timed_out", None)),
    (125, "SDW-SANDBOX-SETUP-FAILED: mount", None, ("crashed", None)),
])
def test_classify(rc, stderr, killed, expected):
    status, _, etype = classify(rc, stderr, killed_for=killed)
    assert (status, etype) == expected


def test_many_runs_are_independent_and_in_order(box):
    # speed: benchmarks/bench_sandbox.py (runs/s, as ratios against a bare subprocess)
    code = ("import os\nopen('mine.txt', 'a').write('x')\n"
            "print({i} * 2, len(open('mine.txt').read()), sorted(os.listdir('.')))")
    res = box.run_many([code.replace("{i}", str(i)) for i in range(16)], workers=2)
    assert all(r.status == "passed" for r in res), res
    # in input order, and each run starts in a fresh folder (nothing left by the run before it)
    assert [r.stdout.split()[:2] for r in res] == [[str(i * 2), "1"] for i in range(16)]


def test_basic_mode_still_enforces_limits():
    """Without namespaces (forced here), time, memory, file-size and process limits still hold."""
    basic = Sandbox(LIMITS, isolation="basic")
    assert basic.isolation.mode == "basic" and not basic.isolation.network
    assert bounded(basic.run_python, "while True:\n    pass", timeout=1.0).status == "timed_out"
    r = bounded(basic.run_python, "x = bytes(3 * 1024 ** 3)")
    assert (r.status, r.reason) == ("limit_hit", "memory"), r
    r = bounded(basic.run_python, "open('big', 'wb').write(b'x' * 8 * 2 ** 20)")
    assert (r.status, r.reason) == ("limit_hit", "file size"), r
    code = ("import os, time\nn = 0\nfor i in range(200):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(2)\n        os._exit(0)\n"
            "    n += 1\nprint(n)\n")
    r = bounded(basic.run_python, code)
    if basic.isolation.own_user or os.geteuid() != 0:  # RLIMIT_NPROC does not bind root itself
        assert r.status == "passed" and int(r.stdout) < 200, r


_NONROOT_CHILD = r"""
import json, os, sys, threading
sys.path.insert(0, os.getcwd())
stop = threading.Event()
for _ in range(40):  # a busy learner: the notebook kernel's torch threads, the desktop, ...
    threading.Thread(target=stop.wait, daemon=True).start()
from helpers.verify.sandbox import Limits, Sandbox, user_task_count
box = Sandbox(Limits(timeout=10, cpu_seconds=5, memory_mb=256, max_processes=16))
out = {"uid": os.getuid(), "mode": box.isolation.mode, "own_user": box.isolation.own_user,
       "describe": box.isolation.describe(), "tasks": user_task_count()}
r = box.run_python("import threading\nts = [threading.Thread(target=print, args=(i,)) for i in range(6)]\n"
                   "[t.start() for t in ts]\n[t.join() for t in ts]\nprint('threads ok')")
out["python"] = [r.status, r.reason, r.stdout[-200:]]
if box.node:
    r = box.run_javascript("console.log('node ok')")
    out["node"] = [r.status, r.reason, r.stdout[-200:] + r.stderr[-300:]]
code = ("import os\nn = 0\nfor i in range(200):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        print('EAGAIN', flush=True)\n        break\n"
        "    if pid == 0:\n        os.execv('/bin/sleep', ['sleep', sys_marker])\n    n += 1\n"
        "print('forked', n, flush=True)\n").replace("sys_marker", repr(sys.argv[1]))
r = box.run_python(code)
out["fork"] = [r.status, r.reason, r.stdout[-200:]]
r = box.run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                   timeout=2, cpu_seconds=2)
out["bomb"] = [r.status, r.reason]
out["after"] = box.run_python("print('fine')").status
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not ISO.python,
                    reason="needs root to start a child as another (non-root) user")
def test_basic_mode_as_a_non_root_user_with_many_threads():
    """A learner without root: RLIMIT_NPROC counts every thread of their uid (here 40 besides the
    sandbox), so an absolute limit of 16 would stop node and Python threads; the limit is relative."""
    uid = 180_000 + os.getpid() % 9_000
    marker = f"{4000 + os.getpid() % 1000}.{int(time.time()) % 100000}"
    env = dict(S.SAFE_ENV, HOME="/tmp")
    try:
        p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                            ISO.python, "-B", "-c", _NONROOT_CHILD, marker], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    finally:
        time.sleep(0.2)
        left = survivors(f"sleep {marker}")
        kill_all(left)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["uid"] == uid and out["mode"] == "basic" and not out["own_user"], out
    assert out["tasks"] and out["tasks"] > 40, out  # the child's own threads are counted
    assert "process limit" in out["describe"], out["describe"]
    assert out["python"][0] == "passed" and "threads ok" in out["python"][2], out["python"]
    if "node" in out:
        assert out["node"][0] == "passed" and "node ok" in out["node"][2], out["node"]
    assert out["fork"][0] == "passed" and "EAGAIN" in out["fork"][2], out["fork"]
    forked = int(out["fork"][2].split("forked")[-1].split()[0])
    assert forked <= 16, out["fork"]  # the fork bomb got at most max_processes more
    assert out["bomb"][0] in ("timed_out", "limit_hit") and out["after"] == "passed", out
    assert left == [], "forked children survived the run"


@needs_ns
def test_every_protection_is_tested():
    """Remove each protection in turn (tests/check_sandbox_mutations.py): its hostile-code tests must fail.

    About 20 s on an idle 2-core machine (15 mutations, 2 at a time, each in a fresh interpreter).
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_sandbox_mutations", REPO / "tests" / "check_sandbox_mutations.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    results = mod.check(echo=False)
    assert set(results) == set(mod.MUTATIONS)
    missed = {name: info for name, (caught, info) in results.items() if not caught}
    assert not missed, missed
