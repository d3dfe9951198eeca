"""Resumable, sharded jobs for long generation runs.

A long job (thousands of generations) will be interrupted: a kernel restart, a Colab
timeout, a crash. :class:`ResumableJob` writes results in numbered shards and records each
finished shard, so a re-run continues where it stopped, with no duplicates and no lost rows::

    config = {"model": name, "prompt": PROMPT, "temperature": 0.7, "seed": 0}  # all that shapes the rows
    job = ResumableJob(output_dir("01") / "jobs", name="gen", key="id", shard_size=32, config=config)
    report = job.run(items, lambda batch: [{"id": x["id"], "text": gen(x)} for x in batch])
    ds = job.to_dataset()

**Keyed by the full configuration.** ``config`` must hold everything that changes the output:
the rendered prompts (or a :func:`fingerprint` of them), the model name or path, the sampling
settings, the seed. With ``name``, the job lives in ``<folder>/<name>-<fingerprint of config>``:
an unchanged re-run finds its folder and resumes, a changed setting starts fresh in a new
folder (a message names the old folder and the settings that differ) and rows of two configs
never mix. Without ``name`` the folder is used as given and a different config is refused.
Each finished item's own fingerprint (of the item dict) is recorded too: an item that comes
back with the same key but different content raises instead of reusing its stale rows.

On disk: ``manifest.json`` (the config and its fingerprint), ``shard-00000.jsonl`` (rows, one
JSON object a line) and ``shard-00000.done.json`` (the keys that shard covers, with each item's
fingerprint). A shard counts only once its ``.done.json`` exists; both files are written to a
temporary name, flushed and renamed, so a crash at any moment leaves either a whole shard or none.
"""
from __future__ import annotations

import hashlib
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


def fingerprint(obj: Any, n: int = 12) -> str:
    """A short, stable hash of any JSON-like value (dict key order does not matter)."""
    data = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:n]


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
        folder: where shards and the manifest live (created if needed); with ``name``, the
            parent of the job's keyed folder ``<folder>/<name>-<fingerprint>``.
        key: the field that identifies an input item (and its output rows), or a function
            ``item -> key``. Keys must be unique and JSON-serialisable.
        shard_size: items per shard (each shard is one call of ``fn``).
        config: everything that changes the output (rendered prompts or their fingerprint,
            model name/path, sampling settings, seed). Its :func:`fingerprint` keys the job.
        name: put the job in a folder keyed by the config's fingerprint (see the module doc):
            a changed config starts fresh in a new folder, an unchanged one resumes.
        log: where the "config changed, starting fresh" message goes (``None``: nowhere).
    """

    def __init__(self, folder: str | os.PathLike, *, key: str | Callable[[Any], Hashable] = "id",
                 shard_size: int = 64, config: dict[str, Any] | None = None, name: str | None = None,
                 log: Callable[[str], Any] | None = print) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        self.key = key
        self.shard_size = shard_size
        self.config = json.loads(json.dumps(config or {}, default=str))
        self.fingerprint = fingerprint(self.config)
        if name is not None:
            if not re.fullmatch(r"[\w.-]{1,80}", name):
                raise ValueError(f"job name {name!r}: use letters, digits, '_', '.', '-' (at most 80)")
            root = Path(folder)
            self.folder = root / f"{name}-{self.fingerprint}"
            if not (self.folder / "manifest.json").exists() and log:
                others = sorted((p for p in root.glob(f"{name}-*") if re.fullmatch(
                    re.escape(name) + r"-[0-9a-f]{12}", p.name) and (p / "manifest.json").exists()),
                    key=lambda p: (p / "manifest.json").stat().st_mtime)
                if others:
                    old = json.loads((others[-1] / "manifest.json").read_text()).get("config", {})
                    log(f"job {name!r}: the config differs from the existing job in {others[-1]} "
                        f"({_differences(old, self.config)}): starting fresh in {self.folder} "
                        f"(the old folder is left untouched; rows of the two configs are never mixed)")
        else:
            self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "manifest.json"
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old.get("config") != self.config:
                raise ValueError(
                    f"{self.folder} holds a job with a different config ({_differences(old.get('config') or {}, self.config)}):"
                    f"\n  old {old.get('config')}\n  new {self.config}\nUse a new folder (or pass name=... to get "
                    f"one folder per config), or delete this one to start over."
                )
        else:
            _write_atomic(manifest, json.dumps({"config": self.config, "fingerprint": self.fingerprint,
                                                "created": time.time()}, indent=2))

    # ------------------------------------------------------------------ state
    def _key_of(self, item: Any) -> Hashable:
        k = self.key(item) if callable(self.key) else item[self.key]
        return json.dumps(k, sort_keys=True, default=str)

    def _done_files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if _SHARD.match(p.name))

    def _done(self) -> dict[str, str | None]:
        """Key (JSON-encoded) -> item fingerprint (None in shards written before they were recorded)."""
        done: dict[str, str | None] = {}
        for p in self._done_files():
            info = json.loads(p.read_text())
            fps = info.get("items") or {}
            for k in info["keys"]:
                done[k] = fps.get(k)
        return done

    def done_keys(self) -> set[str]:
        """Keys (JSON-encoded) of every item in a finished shard."""
        return set(self._done())

    def pending(self, items: Iterable[Any]) -> list[Any]:
        """The items not yet covered by a finished shard.

        Raises on duplicated keys, and on an item whose key is done but whose content changed
        since (its rows were made from other inputs: put what changed into ``config``).
        """
        done = self._done()
        seen: set[str] = set()
        out = []
        for it in items:
            k = self._key_of(it)
            if k in seen:
                raise ValueError(f"duplicate key {k} in the input items")
            seen.add(k)
            if k not in done:
                out.append(it)
            elif done[k] is not None and done[k] != _item_fingerprint(it):
                raise ValueError(
                    f"item {k} changed since {self.folder} processed it, so its rows there were made from other "
                    f"inputs; never mixing them: put what changed (e.g. the rendered prompt) into the job's "
                    f"config, which gives a new keyed folder, or delete {self.folder}")
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
                                      "items": {self._key_of(it): _item_fingerprint(it) for it in chunk},
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


def _item_fingerprint(item: Any) -> str | None:
    """The fingerprint of an item's content; None (not checked) when it is not plain JSON data,
    whose text form could change from run to run (an object's repr holds its address)."""
    try:
        data = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Which top-level settings differ between two configs, for the messages above."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "config"
    keys = sorted(k for k in set(old) | set(new) if old.get(k, _MISSING) != new.get(k, _MISSING))
    return "differs in: " + (", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "") if keys else "nothing")


_MISSING = object()
