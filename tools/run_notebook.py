"""Execute one notebook with papermill from a fresh kernel, offline, and measure it.

    python -m tools.run_notebook notebooks/00_getting_started.ipynb --smoke

Runs papermill in a child process (inside a new network namespace when root, with only
the loopback interface up, since the kernel talks to papermill over 127.0.0.1), with the
Hugging Face offline variables set, and reports wall time, the peak memory (RSS) of the
kernel, and the failing cell when there is one.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "SDW_NO_WIDGETS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class RunResult:
    notebook: str
    smoke: bool
    ok: bool
    seconds: float
    peak_rss_mb: float
    isolated_network: bool
    error: str = ""


_NETNS_OK: bool | None = None


def can_isolate_network() -> bool:
    """True when ``unshare -n`` works here (root, util-linux and iproute2 present)."""
    global _NETNS_OK
    if _NETNS_OK is None:
        ok = bool(shutil.which("unshare") and shutil.which("ip")) and os.geteuid() == 0
        if ok:
            r = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
            ok = r.returncode == 0
        _NETNS_OK = ok
    return _NETNS_OK


def _child(nb: str, out: str, params_json: str, cell_timeout: int, result_file: str) -> int:
    """Runs inside the (possibly network-isolated) child: papermill, then peak RSS."""
    import resource

    import papermill as pm

    err = ""
    try:
        pm.execute_notebook(nb, out, parameters=json.loads(params_json), cwd=str(Path(nb).parent),
                            kernel_name="python3", execution_timeout=cell_timeout, progress_bar=False,
                            log_output=False, request_save_on_cell_execute=True)
    except Exception as e:  # papermill raises with the failing cell's traceback
        err = _ANSI.sub("", str(e))
    # The kernel is this process's child. Our own figure would not do: Linux carries a process's peak RSS
    # across fork and exec, so it would include the memory of whatever started the run (pytest, say).
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    Path(result_file).write_text(json.dumps({"error": err, "peak_rss_mb": peak_kb / 1024}))
    return 0


def failing_cell(executed: Path) -> str:
    """Source and error output of the first failing cell of an executed notebook."""
    import nbformat

    if not executed.exists():
        return ""
    nb = nbformat.read(executed, as_version=4)
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                tb = _ANSI.sub("", "\n".join(o.get("traceback", [])))
                return f"--- cell {i} ---\n{cell.source}\n--- error ---\n{tb[-4000:]}"
    return ""


def run_notebook(nb: Path, out: Path, *, smoke: bool = True, parameters: dict | None = None,
                 timeout: int = 900, cell_timeout: int = 900, offline: bool = True) -> RunResult:
    """Execute ``nb`` into ``out`` in a fresh kernel and measure it (never raises on notebook errors)."""
    nb, out = Path(nb).resolve(), Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    params = dict(parameters or {})
    if smoke:
        params["SMOKE"] = True
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if offline:
        env.update(OFFLINE_ENV)
    if smoke:
        env["SDW_SMOKE"] = "1"
    else:
        env.pop("SDW_SMOKE", None)
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "tools.run_notebook", "--child", str(nb), str(out), json.dumps(params),
               str(cell_timeout), str(result_file)]
        isolated = offline and can_isolate_network()
        if isolated:
            cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + cmd
        t0 = time.perf_counter()
        # A session of its own, so a timeout kills papermill *and* the kernel it started.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=timeout)
            seconds = time.perf_counter() - t0
            if result_file.exists():
                res = json.loads(result_file.read_text())
                error, rss = res["error"], res["peak_rss_mb"]
            else:
                error, rss = f"runner died (exit {proc.returncode}):\n{stderr[-3000:]}", float("nan")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            seconds, error, rss = time.perf_counter() - t0, f"timed out after {timeout}s", float("nan")
    if error:
        cell = failing_cell(out)
        error = (cell + "\n" if cell else "") + error[-3000:]
    return RunResult(nb.name, smoke, not error, round(seconds, 1), round(rss, 1), isolated, error)


def append_csv(path: Path, res: RunResult) -> None:
    """Add one run to a CSV log (header written once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    row = asdict(res)
    row["error"] = row["error"].splitlines()[-1][:200] if row["error"] else ""
    row["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        return _child(argv[1], argv[2], argv[3], int(argv[4]), argv[5])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--out", default=None)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE (VALUE parsed as JSON if it can be)")
    args = ap.parse_args(argv)
    params = {}
    for p in args.param:
        k, v = p.split("=", 1)
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    nb = Path(args.notebook)
    out = Path(args.out or ROOT / "build" / ("smoke" if args.smoke else "full") / nb.name)
    res = run_notebook(nb, out, smoke=args.smoke, parameters=params, timeout=args.timeout, cell_timeout=args.timeout)
    append_csv(ROOT / "build" / "notebook_runs.csv", res)
    print(f"{res.notebook}: {'ok' if res.ok else 'FAILED'} in {res.seconds}s, peak {res.peak_rss_mb} MB, "
          f"network {'isolated' if res.isolated_network else 'NOT isolated'} -> {out}")
    if res.error:
        print(res.error)
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
