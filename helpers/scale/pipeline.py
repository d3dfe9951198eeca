"""One pipeline, several runners: the course's resumable job and Ray Data (datatrove: next module), with kills measured.

A pipeline here is a **factory**: a function that builds the batch function once (loading the model
once) and returns it. The batch function takes a list of row dicts and returns the output rows
(any number per input; every output row keeps the input's ``id``). The same factory runs on

- :func:`run_job`: the course's :class:`helpers.core.jobs.ResumableJob` (shards written
  atomically, finished ids recorded, a re-run skips them);
- :func:`run_ray`: `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_, reading the items
  from a JSON-lines file, ``map_batches`` on a pool of actors (each actor calls the factory once,
  so each loads the model once) and ``write_json`` to a folder. Three ways to survive a crash:
  ``resume="none"`` (Ray's plain pipeline: a re-run starts over next to what the killed run left),
  ``resume="ray"`` (Ray Data's own checkpointing, ``DataContext.checkpoint_config``: the ids of
  written rows are recorded and filtered out of the input on the next run) and
  ``resume="skip-done"`` (the course's pattern on top of Ray: read the ids already in the output
  folder, drop unreadable half-written files, filter the input before ``map_batches``).

A third runner, Hugging Face datatrove's local executor, is :func:`helpers.scale.datatrove_runner.run_datatrove`
(its own module, as it imports datatrove); :func:`main` runs it too (``--engine datatrove``).

Factories are passed as ``"module:function"`` or ``"/path/to/file.py:function"`` strings, plus
keyword arguments as JSON-like data, so a Ray actor on another machine or a fresh subprocess can
build the same step. :func:`compare_rows` checks two runs row by row (by id and content hash) and
counts lost, duplicated, extra and changed rows; :func:`kill_and_resume` starts a run in a
subprocess (``python -m helpers.scale.pipeline ...``), kills it with SIGKILL after a random delay,
starts it again, and finally lets it finish.

Written by hand where it teaches (the row accounting and the kill harness are small and are the
point of the chapter); the distributed execution, the actor pool and the checkpointing are Ray's.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from helpers.core.io import load_jsonl
from helpers.core.jobs import JobReport, ResumableJob

BatchFn = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


# ============================================================================ factories and rows
def cheap_factory(pace: float = 0.0, field_name: str = "text") -> BatchFn:
    """A cheap, deterministic step with no model, for tests and for kill drills.

    Each row gets the word count and a digest of ``field_name``. ``pace`` seconds of sleep per batch
    stand in for a model's time, so a kill can land in the middle of a run (say so when you use it).
    """
    def step(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if pace:
            time.sleep(pace)
        out = []
        for r in rows:
            text = str(r.get(field_name, ""))
            out.append({**r, "words": len(text.split()),
                        "digest": hashlib.sha256(text.encode()).hexdigest()[:8]})
        return out
    return step


def load_factory(spec: str | Callable[..., BatchFn]) -> Callable[..., BatchFn]:
    """The factory named by ``"package.module:function"`` or ``"/path/file.py:function"``.

    A callable is returned as it is. Raises with the reason when the module or name is missing.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"factory must be 'module:function' or '/path/file.py:function', not {spec!r}")
    mod_name, _, attr = spec.rpartition(":")
    if mod_name.endswith(".py"):
        path = Path(mod_name)
        if not path.is_file():
            raise FileNotFoundError(f"factory file {path} does not exist")
        name = "_scale_factory_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        module = sys.modules.get(name)
        if module is None:
            sp = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(sp)  # type: ignore[arg-type]
            sys.modules[name] = module
            sp.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        module = importlib.import_module(mod_name)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise AttributeError(f"{mod_name} has no callable {attr!r}")
    return fn


def build(factory: str | Callable[..., BatchFn], kwargs: dict[str, Any] | None = None) -> BatchFn:
    """Call the factory once and check that it returned a batch function."""
    fn = load_factory(factory)(**(kwargs or {}))
    if not callable(fn):
        raise TypeError(f"the factory {factory!r} must return a batch function, got {type(fn).__name__}")
    return fn


def compose(*steps: BatchFn) -> BatchFn:
    """Chain batch functions: each step's output rows are the next step's input."""
    def run(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for step in steps:
            rows = step(rows)
            if not isinstance(rows, list):
                raise TypeError(f"step {getattr(step, '__name__', step)} must return a list of rows")
        return rows
    return run


def content_hash(row: dict[str, Any], ignore: Sequence[str] = ()) -> str:
    """A stable 16-hex-digit hash of a row's content (key order does not matter).

    ``ignore`` names fields left out (timings, worker names: what legitimately differs by runner).
    """
    data = {k: v for k, v in row.items() if k not in ignore}
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass
class RowCheck:
    """How a run's rows compare with a reference run, id by id."""

    reference: int  # rows in the reference
    rows: int  # rows in the run
    lost: int  # reference ids with no row in the run
    duplicated: int  # rows beyond the first for an id (copies the run wrote twice)
    extra: int  # ids the reference does not have
    changed: int  # ids present in both whose content hash differs
    lost_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.changed)

    def __str__(self) -> str:
        return (f"{self.rows} rows vs {self.reference} in the reference: lost {self.lost}, duplicated "
                f"{self.duplicated}, extra {self.extra}, changed {self.changed}")


def compare_rows(reference: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], *, key: str = "id",
                 ignore: Sequence[str] = ()) -> RowCheck:
    """Compare rows by ``key`` and content hash (one row per id in the reference).

    A row written twice with the same content counts as duplicated; an id whose (first) row has
    another content counts as changed. Raises when the reference itself repeats an id.
    """
    ref: dict[str, str] = {}
    for r in reference:
        k = json.dumps(r[key], default=str)
        if k in ref:
            raise ValueError(f"the reference repeats id {r[key]!r}: compare runs that write one row per id")
        ref[k] = content_hash(r, ignore)
    counts: Counter = Counter()
    first: dict[str, str] = {}
    for r in rows:
        if key not in r:
            raise KeyError(f"a row has no {key!r} field: {sorted(r)[:8]}")
        k = json.dumps(r[key], default=str)
        counts[k] += 1
        first.setdefault(k, content_hash(r, ignore))
    lost = [k for k in ref if k not in counts]
    dup = [k for k, c in counts.items() if c > 1]
    extra = [k for k in counts if k not in ref]
    changed = [k for k in ref if k in first and first[k] != ref[k]]
    return RowCheck(len(ref), len(rows), len(lost), sum(counts[k] - 1 for k in dup), len(extra), len(changed),
                    [json.loads(k) for k in lost], [json.loads(k) for k in dup], [json.loads(k) for k in changed])


def write_items(items: Sequence[dict[str, Any]], path: str | os.PathLike, *, key: str = "id") -> Path:
    """Write input items as JSON lines (the input file both runners read); ids must be unique."""
    path = Path(path)
    ids = [json.dumps(it[key], default=str) for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError("input items repeat an id; every item needs its own")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_items(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The items :func:`write_items` wrote (:func:`helpers.core.io.load_jsonl`: a bad line is named)."""
    return load_jsonl(path)


# ============================================================================ runner 1: the course's job
def run_job(items: Sequence[dict[str, Any]], factory: str | Callable[..., BatchFn], folder: str | os.PathLike, *,
            factory_kwargs: dict[str, Any] | None = None, batch_size: int = 8, config: dict[str, Any] | None = None,
            progress: bool = False) -> tuple[list[dict[str, Any]], JobReport]:
    """Run the pipeline with :class:`~helpers.core.jobs.ResumableJob` in ``folder`` (resumes there).

    ``config`` keys the job (add whatever changes the rows); the factory and its arguments are
    added to it. Returns every finished row (this run's and earlier runs') and the job's report.
    """
    cfg = {"factory": factory if isinstance(factory, str) else getattr(factory, "__qualname__", str(factory)),
           "factory_kwargs": factory_kwargs or {}, **(config or {})}
    job = ResumableJob(folder, key="id", shard_size=batch_size, config=cfg, log=None)
    todo = job.pending(items)
    fn = build(factory, factory_kwargs) if todo else None  # nothing to do: no model load
    report = job.run(list(items), fn if fn is not None else (lambda b: []), progress=progress, desc="job")
    return job.rows(), report


# ============================================================================ runner 2: Ray Data
def start_ray(*, num_cpus: int | None = None, object_store_mb: int = 256, address: str | None = None,
              quiet: bool = True, attempts: int = 3) -> float:
    """Start (or join, with ``address``) a Ray cluster for this process; returns the seconds it took.

    On a laptop: a local Ray with ``num_cpus`` scheduling slots and a small object store, no dashboard.
    Slots are not cores: Ray Data with checkpointing runs a filter actor, the model actors and
    read and write tasks at the same time, each holding a slot, so the default is twice the cores
    (with as many slots as cores, the filter and one model actor take them all and the read task
    waits for ever).
    On a cluster: ``ray start --head`` on one machine, ``ray start --address=<head>:6379`` on the
    others, then ``start_ray(address="<head>:6379")`` (or ``"auto"`` on a cluster node).
    """
    import ray

    # On a busy machine Ray's raylet can give up waiting (15 s, fixed in Ray 2.60) for its dashboard
    # agent to start and abort ("timed out during startup"); the agent's imports are then in the page
    # cache, so a second attempt usually succeeds. Try up to `attempts` times, then say why it failed.
    t0 = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet, "ignore_reinit_error": True,
                              "logging_level": "ERROR" if quiet else "INFO"}
    if quiet:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's C++ warnings (e.g. no external network)
    if not address:
        kwargs["_node_ip_address"] = "127.0.0.1"  # a local Ray listens on loopback only
    errors = []
    for _ in range(attempts):
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=num_cpus or 2 * (os.cpu_count() or 1), object_store_memory=object_store_mb * 1024 ** 2, **kwargs)
            break
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception on a start-up time-out
            errors.append(f"{type(err).__name__}: {err}")
            ray.shutdown()
    else:
        raise RuntimeError(f"Ray did not start in {attempts} attempts ({time.perf_counter() - t0:.0f} s); on a busy "
                           f"machine its raylet times out waiting for its agents. Last error: {errors[-1]} "
                           f"(logs: /tmp/ray/session_latest/logs/raylet.out)")
    if quiet:
        import logging

        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        ray.data.DataContext.get_current().enable_progress_bars = False
    return time.perf_counter() - t0


def ray_address() -> str:
    """The address a second driver (a subprocess) passes to join this process's Ray."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Ray is not running in this process: call start_ray() first")
    return ray.get_runtime_context().gcs_address


class _RayStep:
    """A Ray Data actor: builds the batch function once, then maps batches (as lists of row dicts)."""

    def __init__(self, factory: str, factory_kwargs: dict[str, Any]) -> None:
        self.fn = build(factory, factory_kwargs)

    def __call__(self, batch):  # a pyarrow Table in, one out: rows keep their JSON types
        import pyarrow as pa

        rows = self.fn(batch.to_pylist())
        return pa.Table.from_pylist(rows)


def _output_files(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.glob("*.json") if p.is_file()) if out_dir.exists() else []


def read_rows(out_dir: str | os.PathLike, *, drop_unreadable: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """Every row in a Ray output folder (JSON-lines files), and the files that could not be read.

    A driver killed while writing can leave a half-written file; ``drop_unreadable=True`` deletes
    such files (their rows are redone by the next run) instead of only naming them.
    """
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    for p in _output_files(Path(out_dir)):
        try:
            with open(p, encoding="utf-8") as fh:
                file_rows = [json.loads(line) for line in fh if line.strip()]
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad.append(p.name)
            if drop_unreadable:
                p.unlink()
            continue
        rows.extend(file_rows)
    return rows, bad


@dataclass
class RayReport:
    """What one :func:`run_ray` call did."""

    total: int
    skipped: int  # items not sent to map_batches (already done: Ray's checkpoint or the skip-done filter)
    rows_written: int
    seconds: float
    resume: str
    dropped_files: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"Ray Data ({self.resume}): {self.total} items, {self.skipped} skipped as done, "
                f"{self.rows_written} rows written now ({self.seconds:.1f}s)")


def run_ray(items_path: str | os.PathLike, factory: str, out_dir: str | os.PathLike, *,
            factory_kwargs: dict[str, Any] | None = None, batch_size: int = 8, actors: int = 1,
            cpus_per_actor: float = 1, gpus_per_actor: float = 0, resume: str = "ray",
            checkpoint_dir: str | os.PathLike | None = None) -> tuple[list[dict[str, Any]], RayReport]:
    """Run the pipeline on Ray Data: read JSON lines, ``map_batches`` on an actor pool, ``write_json``.

    Args:
        items_path: the input JSON-lines file (one item per line, unique ``id``).
        factory: ``"module:function"`` or ``"/path/file.py:function"`` (a string, so every actor,
            on any machine, builds the step itself; with a file path the file must be on each node).
        out_dir: the output folder (one ``.json`` file of JSON lines per written block).
        actors: the actor pool's size; each actor builds the step (loads the model) once.
        cpus_per_actor, gpus_per_actor: resources each actor reserves (``gpus_per_actor=1`` on a
            GPU cluster gives one model replica per GPU).
        resume: ``"none"``, ``"ray"`` (Ray Data's checkpointing, in ``checkpoint_dir``, default
            ``<out_dir>.ckpt``) or ``"skip-done"`` (filter out ids already in ``out_dir``).

    Ray must be running (:func:`start_ray`). Returns every row in ``out_dir`` and a report.
    """
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    if resume not in ("none", "ray", "skip-done"):
        raise ValueError(f"resume must be 'none', 'ray' or 'skip-done', not {resume!r}")
    if not ray.is_initialized():
        raise RuntimeError("Ray is not running in this process: call start_ray() first")
    if not isinstance(factory, str):
        raise TypeError("run_ray takes the factory as a 'module:function' string, so every actor can import it")
    load_factory(factory)  # fail here, with the reason, rather than inside an actor
    items_path, out_dir = Path(items_path).resolve(), Path(out_dir).resolve()
    t0 = time.perf_counter()
    items = read_items(items_path)
    before = len(read_rows(out_dir)[0])
    ctx = DataContext.get_current()
    ctx.checkpoint_config = None
    dropped: list[str] = []
    source = str(items_path)
    skipped = 0
    if resume == "ray":
        from ray.data.checkpoint import CheckpointConfig

        ckpt = Path(checkpoint_dir) if checkpoint_dir else out_dir.with_name(out_dir.name + ".ckpt")
        ckpt.mkdir(parents=True, exist_ok=True)
        ctx.checkpoint_config = CheckpointConfig(id_column="id", checkpoint_path=str(ckpt.resolve()),
                                                 delete_checkpoint_on_success=False)
        skipped = _ray_checkpointed(ckpt)
    elif resume == "skip-done":
        rows_done, dropped = read_rows(out_dir, drop_unreadable=True)
        done = {json.dumps(r["id"], default=str) for r in rows_done}
        todo = [it for it in items if json.dumps(it["id"], default=str) not in done]
        skipped = len(items) - len(todo)
        if not todo:
            return read_rows(out_dir)[0], RayReport(len(items), skipped, 0, time.perf_counter() - t0, resume, dropped)
        source = str(write_items(todo, out_dir.with_name(out_dir.name + ".todo.jsonl")))
    try:
        # pyarrow's JSON reader (not pandas, which would turn a numeric string such as "60" into a number)
        ds = ray.data.read_json(source)
        ds = ds.map_batches(_RayStep, fn_constructor_kwargs={"factory": factory,
                                                             "factory_kwargs": factory_kwargs or {}},
                            batch_size=batch_size, batch_format="pyarrow", compute=ActorPoolStrategy(size=actors),
                            num_cpus=cpus_per_actor, num_gpus=gpus_per_actor or None)
        ds.write_json(str(out_dir))
    finally:
        ctx.checkpoint_config = None
    rows, _ = read_rows(out_dir)
    return rows, RayReport(len(items), skipped, len(rows) - before, time.perf_counter() - t0, resume, dropped)


def _ray_checkpointed(ckpt: Path) -> int:
    """Ids recorded in a Ray Data checkpoint folder (counted for the report)."""
    import pyarrow.parquet as pq

    n = 0
    for p in ckpt.rglob("*.parquet"):
        try:
            n += pq.ParquetFile(p).metadata.num_rows
        except Exception:  # noqa: BLE001 - a half-written checkpoint file; Ray ignores it too
            continue
    return n


# ============================================================================ kills
@dataclass
class Attempt:
    """One start of a run in a subprocess."""

    delay_s: float | None  # when the kill was sent (None: the run was let finish)
    killed: bool  # the kill landed while the run was going
    returncode: int | None
    seconds: float
    rows_after: int | None = None  # rows on disk after this attempt (filled by the caller's counter)


def kill_and_resume(cmd: Sequence[str], *, kills: int, delay: tuple[float, float], seed: int = 0,
                    env: dict[str, str] | None = None, count_rows: Callable[[], int] | None = None,
                    timeout: float = 600, cwd: str | os.PathLike | None = None) -> list[Attempt]:
    """Start ``cmd`` ``kills`` times and SIGKILL it after a random delay, then run it to the end.

    Every start is the same command (the run resumes from what is on disk). The kill goes to the
    whole process group (the run and anything it started). A kill whose delay is past the run's end
    finds the run finished: it is recorded with ``killed=False``. The last attempt must exit with
    status 0, else this raises with the run's error output.
    """
    rng = random.Random(seed)
    out: list[Attempt] = []
    run_env = {**os.environ, **(env or {})}
    for i in range(kills + 1):
        last = i == kills
        d = None if last else rng.uniform(*delay)
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=run_env, cwd=cwd, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        killed = False
        try:
            if d is None:
                _, err = proc.communicate(timeout=timeout)
            else:
                try:
                    _, err = proc.communicate(timeout=d)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"{' '.join(cmd)} ran past {timeout}s") from None
        att = Attempt(d, killed, proc.returncode, time.perf_counter() - t0,
                      count_rows() if count_rows is not None else None)
        out.append(att)
        if not killed and proc.returncode != 0:
            raise RuntimeError(f"attempt {i} of {' '.join(cmd)} failed (exit {proc.returncode}):\n{(err or '')[-3000:]}")
    return out


def attempts_table(attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    """Attempts as plain rows (for a DataFrame)."""
    return [asdict(a) for a in attempts]


# ============================================================================ command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.scale.pipeline --engine job|ray|datatrove ...``: one run, resumable, for kill tests."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["job", "ray", "datatrove"], required=True)
    ap.add_argument("--items", required=True, help="input JSON-lines file")
    ap.add_argument("--factory", required=True, help="'module:function' or '/path/file.py:function'")
    ap.add_argument("--kwargs", default="{}", help="factory keyword arguments as JSON")
    ap.add_argument("--out", required=True, help="job folder, or Ray or datatrove output folder")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--resume", default="ray", choices=["none", "ray", "skip-done"], help="Ray runner only")
    ap.add_argument("--address", default=None, help="join this Ray cluster instead of starting one")
    ap.add_argument("--actors", type=int, default=1)
    ap.add_argument("--tasks", type=int, default=1, help="datatrove only: parts of the work (the unit of resume)")
    ap.add_argument("--workers", type=int, default=1, help="datatrove only: tasks run at once")
    a = ap.parse_args(argv)
    kwargs = json.loads(a.kwargs)
    if a.engine == "job":
        rows, report = run_job(read_items(a.items), a.factory, a.out, factory_kwargs=kwargs, batch_size=a.batch_size)
        print(report)
    elif a.engine == "datatrove":
        from helpers.scale.datatrove_runner import run_datatrove

        rows, dr = run_datatrove(a.items, a.factory, a.out, factory_kwargs=kwargs, batch_size=a.batch_size,
                                 tasks=a.tasks, workers=a.workers)
        print(dr)
    else:
        import ray

        start_ray(address=a.address)
        try:
            rows, rr = run_ray(a.items, a.factory, a.out, factory_kwargs=kwargs, batch_size=a.batch_size,
                               actors=a.actors, resume=a.resume)
            print(rr)
        finally:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
