"""Resumable, sharded jobs for long generation runs.

A long job (thousands of generations) will be interrupted: a kernel restart, a Colab
timeout, a crash. :class:`ResumableJob` writes results in numbered shards and records each
finished shard, so a re-run continues where it stopped, with no duplicates and no lost rows::

    job = ResumableJob(output_dir("01") / "gen", key="id", shard_size=32, config={"model": name})
    report = job.run(items, lambda batch: [{"id": x["id"], "text": gen(x)} for x in batch])
    ds = job.to_dataset()

On disk: ``manifest.json`` (the job's config), ``shard-00000.jsonl`` (rows, one JSON object a
line) and ``shard-00000.done.json`` (the keys that shard covers). A shard counts only once
its ``.done.json`` exists; both files are written to a temporary name, flushed and renamed,
so a crash at any moment leaves either a whole shard or none.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Sequence

_SHARD = re.compile(r"^shard-(\d{5})\.done\.json$")


@dataclass
class JobReport:
    """What one :meth:`ResumableJob.run` call did."""

    total: int
    already_done: int
    processed: int
    rows_written: int
    shards_written: int
    seconds: float

    def __str__(self) -> str:
        return (f"{self.total} items: {self.already_done} already done, {self.processed} processed now "
                f"-> {self.rows_written} rows in {self.shards_written} new shards ({self.seconds:.1f}s)")


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ResumableJob:
    """A folder of shards that a job fills, resumably.

    Args:
        folder: where shards and the manifest live (created if needed).
        key: the field that identifies an input item (and its output rows), or a function
            ``item -> key``. Keys must be unique and JSON-serialisable.
        shard_size: items per shard (each shard is one call of ``fn``).
        config: anything that defines the job (model, prompts, settings). A folder made with
            a different config is refused, so two different jobs never mix their rows.
    """

    def __init__(self, folder: str | os.PathLike, *, key: str | Callable[[Any], Hashable] = "id",
                 shard_size: int = 64, config: dict[str, Any] | None = None) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.shard_size = shard_size
        self.config = json.loads(json.dumps(config or {}, default=str))
        manifest = self.folder / "manifest.json"
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old.get("config") != self.config:
                raise ValueError(
                    f"{self.folder} holds a job with a different config:\n  old {old.get('config')}\n  new "
                    f"{self.config}\nUse a new folder, or delete this one to start over."
                )
        else:
            _write_atomic(manifest, json.dumps({"config": self.config, "created": time.time()}, indent=2))

    # ------------------------------------------------------------------ state
    def _key_of(self, item: Any) -> Hashable:
        k = self.key(item) if callable(self.key) else item[self.key]
        return json.dumps(k, sort_keys=True, default=str)

    def _done_files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if _SHARD.match(p.name))

    def done_keys(self) -> set[str]:
        """Keys (JSON-encoded) of every item in a finished shard."""
        keys: set[str] = set()
        for p in self._done_files():
            keys.update(json.loads(p.read_text())["keys"])
        return keys

    def pending(self, items: Iterable[Any]) -> list[Any]:
        """The items not yet covered by a finished shard (duplicated keys raise)."""
        done = self.done_keys()
        seen: set[str] = set()
        out = []
        for it in items:
            k = self._key_of(it)
            if k in seen:
                raise ValueError(f"duplicate key {k} in the input items")
            seen.add(k)
            if k not in done:
                out.append(it)
        return out

    def _next_index(self) -> int:
        done = [int(_SHARD.match(p.name).group(1)) for p in self._done_files()]  # type: ignore[union-attr]
        return max(done) + 1 if done else 0

    def _clean_orphans(self) -> None:
        """Remove rows files and temp files left by a crash before their shard was recorded."""
        done = {p.name.replace(".done.json", ".jsonl") for p in self._done_files()}
        for p in self.folder.iterdir():
            if ".tmp-" in p.name or (p.name.startswith("shard-") and p.suffix == ".jsonl" and p.name not in done):
                p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ running
    def run(self, items: Sequence[Any], fn: Callable[[list[Any]], list[dict[str, Any]]], *,
            progress: bool = True, desc: str = "job") -> JobReport:
        """Process the pending items shard by shard with ``fn`` and record each shard.

        ``fn`` takes a list of items and returns the rows for them (any number of rows per
        item, including none, e.g. when a model's output is rejected: the item still counts
        as done, so a resume does not retry it forever; report such drops in the rows or
        count them in ``fn``).
        """
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        self._clean_orphans()
        todo = self.pending(items)
        already = len(items) - len(todo)
        idx = self._next_index()
        rows_written = shards = 0
        bar = tqdm(total=len(items), initial=already, desc=desc, disable=not progress, leave=False)
        for start in range(0, len(todo), self.shard_size):
            chunk = todo[start:start + self.shard_size]
            rows = fn(list(chunk))
            if not isinstance(rows, list):
                raise TypeError(f"fn must return a list of row dicts, got {type(rows).__name__}")
            name = f"shard-{idx:05d}"
            _write_atomic(self.folder / f"{name}.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))
            _write_atomic(self.folder / f"{name}.done.json",
                          json.dumps({"keys": [self._key_of(it) for it in chunk], "rows": len(rows),
                                      "time": time.time()}))
            idx += 1
            shards += 1
            rows_written += len(rows)
            bar.update(len(chunk))
        bar.close()
        return JobReport(len(items), already, len(todo), rows_written, shards, time.perf_counter() - t0)

    # ------------------------------------------------------------------ results
    def rows(self) -> list[dict[str, Any]]:
        """All rows of all finished shards, in shard order."""
        out: list[dict[str, Any]] = []
        for p in self._done_files():
            rows_file = p.with_name(p.name.replace(".done.json", ".jsonl"))
            with open(rows_file, encoding="utf-8") as fh:
                out.extend(json.loads(line) for line in fh if line.strip())
        return out

    def to_dataset(self):
        """The rows as a Hugging Face ``datasets.Dataset``."""
        from datasets import Dataset

        rows = self.rows()
        if not rows:
            raise ValueError(f"{self.folder} has no finished rows yet")
        return Dataset.from_list(rows)

    def __len__(self) -> int:
        return len(self.done_keys())
