"""Runner three: the same pipeline on Hugging Face datatrove's local executor, resumed by its own task records.

`datatrove <https://github.com/huggingface/datatrove>`_ runs a pipeline as a list of steps (a reader, any
number of processing steps, a writer) split into **tasks**: each task reads its share of the input *files*,
pushes datatrove ``Document`` objects (``text``, ``id``, ``metadata``) through the steps and writes its own
output file. The :class:`~datatrove.executor.LocalPipelineExecutor` runs the tasks on a pool of worker
processes on one machine; its Slurm and Ray executors run the same pipeline on a cluster. When a task
finishes, the executor writes an empty marker ``completions/<task>`` into its ``logging_dir``; a re-run skips
the tasks that have one. That is datatrove's resume, and its unit is **a task, not a row**: a task killed
half-way is started over from its first row, and the rows it had written are written again (into the same
output file, which the new attempt overwrites, so nothing is written twice).

:func:`run_datatrove` wires the course's factory (see :mod:`helpers.scale.pipeline`) into that machinery:
datatrove's own :class:`~datatrove.pipeline.readers.JsonlReader` and
:class:`~datatrove.pipeline.writers.JsonlWriter` read the items and write the rows, and :class:`BatchStep`,
a datatrove ``PipelineStep``, builds the batch function once per task (so a task loads the model once) and
applies it to batches of rows. Rows travel faithfully: each ``Document`` carries the whole row dict in
``metadata["row"]`` (its ``text`` field is the row's text, for datatrove's own filters and statistics), and
the writer writes that dict back, so the output rows are the same dicts the other runners write.

Written by hand, and why (everything else is datatrove's):

- the split of the items file into one input file per task (:func:`split_items`): datatrove shares
  *files* among tasks, so a single file would all go to task 0;
- a record of what the run was (items, factory, arguments, tasks) next to datatrove's completion markers,
  checked on a re-run: datatrove skips a completed task whatever changed since, and a task's rows are only
  reusable if its input and step are the same (the course's :class:`~helpers.core.jobs.ResumableJob` keys
  its folder the same way);
- before a run, the output files of tasks with no completion marker are deleted and their rows counted
  (``rows_discarded``): datatrove's writer would overwrite them when the task writes its first row, but a
  task that writes no row at all would leave the killed attempt's rows behind;
- console quiet: datatrove logs each task to the console with loguru; with ``quiet=True`` the logs go only
  to ``<logging_dir>/logs/task_<n>.log``, where datatrove also keeps them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from datatrove.data import Document, DocumentsPipeline
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.batching import batched
from datatrove.utils.logging import setup_default_logger

from helpers.scale.pipeline import build, load_factory, read_items

RUN_RECORD = "run.json"  # in the logging folder: what the run was, checked on a re-run


# ============================================================================ rows <-> Documents
def row_to_document(row: dict[str, Any], text_key: str = "text") -> Document:
    """A datatrove ``Document`` that carries ``row`` unchanged in ``metadata["row"]``.

    ``text`` is the row's ``text_key`` field when it is a non-empty string, else the row as JSON
    (datatrove's reader drops a document with empty text, and a row must never be dropped here).
    ``id`` is the row's id as a string (datatrove's type); the row keeps its own id, of any JSON type.
    """
    if "id" not in row:
        raise KeyError(f"a row has no 'id' field: {sorted(row)[:8]}; every item needs an id to be resumable")
    text = row.get(text_key)
    if not isinstance(text, str) or not text:
        text = json.dumps(row, ensure_ascii=False, sort_keys=True, default=str)
    return Document(text=text, id=str(row["id"]), metadata={"row": row})


def document_to_row(document: Document) -> dict[str, Any]:
    """The row a ``Document`` made by :func:`row_to_document` carries."""
    return document.metadata["row"]


def _reader_adapter(self, data: dict, path: str, id_in_file: int | str) -> dict:
    """JsonlReader's ``adapter``: one input line (a row dict) -> the fields of a Document."""
    doc = row_to_document(data, self.text_key)
    return {"text": doc.text, "id": doc.id, "metadata": doc.metadata}


def _writer_adapter(self, document: Document) -> dict:
    """JsonlWriter's ``adapter``: write the row itself, not datatrove's Document layout."""
    return document_to_row(document)


# ============================================================================ the step
class BatchStep(PipelineStep):
    """A datatrove step that applies the course's batch function to batches of rows.

    The factory is built on the first batch of each task (a task with no input loads no model), so
    a task loads the model once; each output row becomes a Document again. Rows in and out and the
    time per batch go into datatrove's statistics (``stats/<task>.json`` in the logging folder).
    """

    name = "🧮 batch function"
    type = "🔁 - MAP"

    def __init__(self, factory: str, factory_kwargs: dict[str, Any] | None = None, batch_size: int = 8,
                 text_key: str = "text") -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.factory = factory
        self.factory_kwargs = dict(factory_kwargs or {})
        self.batch_size = batch_size
        self.text_key = text_key

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        fn: Callable | None = None
        for batch in batched(data or [], self.batch_size):
            if fn is None:
                fn = build(self.factory, self.factory_kwargs)
            rows = [document_to_row(doc) for doc in batch]
            with self.track_time(unit="batch"):
                out = fn(rows)
            if not isinstance(out, list):
                raise TypeError(f"the batch function must return a list of rows, got {type(out).__name__}")
            self.stat_update("rows_in", value=len(rows), unit="batch")
            self.stat_update("rows_out", value=len(out), unit="batch")
            for row in out:
                yield row_to_document(row, self.text_key)


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's :class:`LocalPipelineExecutor`; with ``quiet`` a task logs only to its log file.

    datatrove adds a console handler for each task (in each worker process); here it is pointed at
    a buffer instead. The task's log file in ``<logging_dir>/logs/`` is written as always.
    """

    def __init__(self, *args: Any, quiet: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quiet = quiet

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        if not self.quiet:
            return super()._run_for_rank(rank, local_rank, node_rank)
        with contextlib.redirect_stderr(io.StringIO()):
            return super()._run_for_rank(rank, local_rank, node_rank)


# ============================================================================ files
def default_logging_dir(out_dir: str | os.PathLike) -> Path:
    """``<out_dir>.logs``: datatrove's records (completions, logs, stats) and this runner's input split."""
    out_dir = Path(out_dir).resolve()
    return out_dir.with_name(out_dir.name + ".logs")


def task_file(out_dir: str | os.PathLike, task: int) -> Path:
    """The output file of one task (JsonlWriter's ``${rank}.jsonl``)."""
    return Path(out_dir) / f"{task:05d}.jsonl"


def completed_tasks(logging_dir: str | os.PathLike) -> list[int]:
    """The tasks datatrove marked complete (an empty file ``completions/<task>`` each)."""
    folder = Path(logging_dir) / "completions"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def read_rows(out_dir: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """Every row in a datatrove output folder (``*.jsonl``, task by task), and the number of cut lines.

    A worker killed while writing can leave its last line cut short; such a line is skipped and
    counted (the next run redoes that task). Between runs a folder has no cut line.
    """
    rows: list[dict[str, Any]] = []
    cut = 0
    out_dir = Path(out_dir)
    for p in sorted(out_dir.glob("*.jsonl")) if out_dir.is_dir() else []:
        file_rows, file_cut = _read_file(p)
        rows += file_rows
        cut += file_cut
    return rows, cut


def _read_file(path: Path) -> tuple[list[dict[str, Any]], int]:
    rows, cut = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    cut += 1
    return rows, cut


def split_items(items_path: str | os.PathLike, folder: str | os.PathLike, tasks: int) -> list[Path]:
    """Split the items file into ``tasks`` JSON-lines files, in order (task ``i`` gets the ``i``-th slice).

    datatrove gives each task whole files (``files[task::tasks]``), so one file per task spreads the
    items evenly. The split depends only on the file and ``tasks``, so a re-run gives every task the
    same items; files are written atomically and only when their content changes.
    """
    if tasks < 1:
        raise ValueError(f"tasks must be at least 1, not {tasks}")
    lines = [ln if ln.endswith("\n") else ln + "\n"
             for ln in Path(items_path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in range(tasks):
        part = "".join(lines[t * len(lines) // tasks:(t + 1) * len(lines) // tasks])
        path = folder / f"{t:05d}.jsonl"
        if not path.exists() or path.read_text(encoding="utf-8") != part:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(part, encoding="utf-8")
            os.replace(tmp, path)
        paths.append(path)
    for stale in folder.glob("*.jsonl"):  # from a split into more tasks (refused by the run record anyway)
        if stale not in paths:
            stale.unlink()
    return paths


def _check_record(logging_dir: Path, record: dict[str, Any]) -> None:
    path = logging_dir / RUN_RECORD
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != record:
            diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise ValueError(f"{logging_dir} holds a datatrove run with other settings ({', '.join(diff)} differ): "
                             f"its completed tasks would not match this run. Use another output folder, or delete "
                             f"it and {logging_dir} to start over.")
    else:
        logging_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str), encoding="utf-8")
        os.replace(tmp, path)


# ============================================================================ the runner
@dataclasses.dataclass
class DatatroveReport:
    """What one :func:`run_datatrove` call did."""

    total: int  # items
    tasks: int
    workers: int
    tasks_skipped: int  # marked complete by an earlier run: not run again
    tasks_run: int
    rows_discarded: int  # rows that unfinished tasks had left on disk: deleted, and redone by this run
    rows_written: int  # rows in the output files of the tasks run now
    seconds: float

    def __str__(self) -> str:
        return (f"datatrove ({self.workers} worker(s)): {self.total} items in {self.tasks} tasks, "
                f"{self.tasks_skipped} skipped as done, {self.tasks_run} run -> {self.rows_written} rows written "
                f"now, {self.rows_discarded} rows of unfinished tasks redone ({self.seconds:.1f}s)")


def run_datatrove(items_path: str | os.PathLike, factory: str, out_dir: str | os.PathLike, *,
                  factory_kwargs: dict[str, Any] | None = None, batch_size: int = 8, tasks: int = 1,
                  workers: int = 1, logging_dir: str | os.PathLike | None = None, text_key: str = "text",
                  quiet: bool = True) -> tuple[list[dict[str, Any]], DatatroveReport]:
    """Run the pipeline with datatrove's ``LocalPipelineExecutor``: JsonlReader -> BatchStep -> JsonlWriter.

    Args:
        items_path: the input JSON-lines file (one item per line, unique ``id``); it is split into one
            file per task under ``<logging_dir>/input``.
        factory: ``"module:function"`` or ``"/path/file.py:function"`` (a string: each worker process
            imports it and each task builds the step once).
        out_dir: the output folder: one ``<task>.jsonl`` per task.
        tasks: how many parts the work is split into; also the unit of resume (a killed task is
            redone from its start) and of model loads (one per task).
        workers: how many tasks run at once (worker processes; 1 runs the tasks in this process).
        logging_dir: datatrove's folder of completion markers, logs and statistics
            (default ``<out_dir>.logs``). A re-run with the same folder skips completed tasks.
        quiet: keep datatrove's logs off the console (they are still in ``<logging_dir>/logs``).

    Returns every row in ``out_dir`` and a report. Rows must be JSON objects with string keys and
    64-bit integers (datatrove writes with orjson), and a top-level field named ``media`` is datatrove's
    (a list of media records whose bytes it encodes): name a row's own field otherwise.
    """
    if not isinstance(factory, str):
        raise TypeError("run_datatrove takes the factory as a 'module:function' string, so every worker can import it")
    if tasks < 1 or workers < 1:
        raise ValueError(f"tasks and workers must be at least 1, not {tasks} and {workers}")
    load_factory(factory)  # fail here, with the reason, rather than inside a task
    t0 = time.perf_counter()
    items_path, out_dir = Path(items_path).resolve(), Path(out_dir).resolve()
    logging_dir = Path(logging_dir).resolve() if logging_dir else default_logging_dir(out_dir)
    n_items = len(read_items(items_path))  # also checks that every line parses
    record = {"items_sha256": hashlib.sha256(items_path.read_bytes()).hexdigest(), "factory": factory,
              "factory_kwargs": factory_kwargs or {}, "tasks": tasks, "text_key": text_key}
    _check_record(logging_dir, record)
    input_dir = logging_dir / "input"
    split_items(items_path, input_dir, tasks)
    done = set(completed_tasks(logging_dir))
    todo = [t for t in range(tasks) if t not in done]
    discarded = 0
    for t in todo:  # what a killed attempt of an unfinished task left: redone from the task's first row
        f = task_file(out_dir, t)
        if f.exists():
            discarded += len(_read_file(f)[0])
            f.unlink()
    if todo:
        pipeline = [
            JsonlReader(str(input_dir), glob_pattern="*.jsonl", recursive=False, adapter=_reader_adapter,
                        text_key=text_key, add_file_path=False),
            BatchStep(factory, factory_kwargs, batch_size, text_key),
            JsonlWriter(str(out_dir), output_filename="${rank}.jsonl", compression=None, adapter=_writer_adapter),
        ]
        executor = QuietLocalExecutor(pipeline, tasks=tasks, workers=min(workers, len(todo)),
                                      logging_dir=str(logging_dir), quiet=quiet)
        try:
            with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
                if quiet:
                    setup_default_logger()  # datatrove's console handler, pointed at the buffer
                executor.run()
        except Exception as err:
            if hasattr(err, "add_note"):  # Python 3.11+
                err.add_note(f"datatrove's task logs: {logging_dir / 'logs'}")
            raise
        finally:
            if quiet:
                setup_default_logger()  # back on the console, as datatrove sets it up on import
    rows, _ = read_rows(out_dir)
    written = sum(len(_read_file(task_file(out_dir, t))[0]) for t in todo if task_file(out_dir, t).exists())
    return rows, DatatroveReport(n_items, tasks, workers, len(done), len(todo), discarded, written,
                                 time.perf_counter() - t0)

