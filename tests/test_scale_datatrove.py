"""helpers.scale.datatrove_runner: the same rows as the course's job, and datatrove's per-task resume, killed for real."""
from __future__ import annotations

import json
import sys
from collections import Counter

import pytest

from helpers.scale import datatrove_runner as D
from helpers.scale import pipeline as P

FACTORY = "helpers.scale.pipeline:cheap_factory"


def _items(n: int) -> list[dict]:
    return [{"id": f"i{i:03d}", "text": "word " * (i % 5 + 1) + str(i)} for i in range(n)]


def test_same_rows_as_the_job_and_a_rerun_skips_every_task(tmp_path):
    items = _items(13)  # 13 items in 3 tasks: 4, 4 and 5
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=3)
    rows, rep = D.run_datatrove(path, FACTORY, tmp_path / "dt", batch_size=3, tasks=3)
    assert P.compare_rows(ref, rows).ok, P.compare_rows(ref, rows)
    assert (rep.tasks_run, rep.tasks_skipped, rep.rows_written, rep.rows_discarded) == (3, 0, 13, 0)
    assert [len(D.read_rows(tmp_path / "dt")[0])] == [13] and D.completed_tasks(tmp_path / "dt.logs") == [0, 1, 2]
    assert [sum(1 for _ in open(D.task_file(tmp_path / "dt", t))) for t in range(3)] == [4, 4, 5]
    rows2, rep2 = D.run_datatrove(path, FACTORY, tmp_path / "dt", batch_size=3, tasks=3)
    assert (rep2.tasks_run, rep2.tasks_skipped, rep2.rows_written) == (0, 3, 0)
    assert P.compare_rows(ref, rows2).ok


def test_rows_travel_unchanged_through_documents(tmp_path):
    """Ids of any JSON type, empty or missing text, nested values: the written rows are the job's dicts."""
    items = [{"id": 7, "text": "", "n": [1, 2.5, None]}, {"id": "60", "question": "no text field", "x": {"a": True}},
             {"id": "u", "text": "héllo → wörld"}]
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=2)
    rows, _ = D.run_datatrove(path, FACTORY, tmp_path / "dt", batch_size=2, tasks=2)
    key = lambda r: json.dumps(r["id"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(ref, key=key)
    doc = D.row_to_document(items[0])
    assert doc.id == "7" and doc.metadata["row"] is items[0] and doc.text  # datatrove drops empty text
    with pytest.raises(KeyError, match="no 'id'"):
        D.row_to_document({"text": "x"})


def test_the_factory_is_built_once_per_task(tmp_path):
    steps = tmp_path / "steps.py"
    log = tmp_path / "builds.txt"
    steps.write_text("from helpers.scale.pipeline import cheap_factory\n"
                     f"def make():\n    open({str(log)!r}, 'a').write('x')\n    return cheap_factory()\n")
    path = P.write_items(_items(10), tmp_path / "items.jsonl")
    D.run_datatrove(path, f"{steps}:make", tmp_path / "dt", batch_size=2, tasks=3)
    assert log.read_text() == "xxx"
    D.run_datatrove(path, f"{steps}:make", tmp_path / "dt", batch_size=2, tasks=3)
    assert log.read_text() == "xxx"  # every task done: nothing built


def test_two_worker_processes_give_the_same_rows(tmp_path):
    items = _items(9)
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=2)
    rows, rep = D.run_datatrove(path, FACTORY, tmp_path / "dt", batch_size=2, tasks=3, workers=2)
    assert P.compare_rows(ref, rows).ok and rep.tasks_run == 3


def test_an_unfinished_task_is_redone_from_its_first_row(tmp_path):
    """What a kill leaves (a task with no completion marker and a cut file) and what the next run does."""
    items = _items(12)
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=2)
    out, logs = tmp_path / "dt", tmp_path / "dt.logs"
    D.run_datatrove(path, FACTORY, out, batch_size=2, tasks=3)
    (logs / "completions" / "00001").unlink()  # task 1 never finished ...
    f = D.task_file(out, 1)
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:2]) + lines[2][:10])  # ... after writing 2 whole rows and a cut third
    rows, cut = D.read_rows(out)
    assert (len(rows), cut) == (10, 1)
    rows, rep = D.run_datatrove(path, FACTORY, out, batch_size=2, tasks=3)
    # datatrove's unit is the task: tasks 0 and 2 are skipped, task 1 is run again from its first item; its 2
    # rows on disk are deleted and written again, so nothing is lost and nothing is written twice
    assert (rep.tasks_skipped, rep.tasks_run, rep.rows_discarded, rep.rows_written) == (2, 1, 2, 4)
    assert P.compare_rows(ref, rows).ok, P.compare_rows(ref, rows)


def test_a_rerun_with_other_settings_is_refused(tmp_path):
    path = P.write_items(_items(4), tmp_path / "items.jsonl")
    D.run_datatrove(path, FACTORY, tmp_path / "dt", batch_size=2, tasks=2)
    with pytest.raises(ValueError, match="factory_kwargs"):
        D.run_datatrove(path, FACTORY, tmp_path / "dt", factory_kwargs={"field_name": "id"}, batch_size=2, tasks=2)
    with pytest.raises(ValueError, match="tasks"):
        D.run_datatrove(path, FACTORY, tmp_path / "dt", batch_size=2, tasks=3)
    with pytest.raises(TypeError, match="string"):
        D.run_datatrove(path, P.cheap_factory, tmp_path / "o")
    with pytest.raises(AttributeError, match="no callable"):
        D.run_datatrove(path, "helpers.scale.pipeline:nothing_here", tmp_path / "o")


def test_split_items_gives_each_task_the_same_slice_every_time(tmp_path):
    path = P.write_items(_items(5), tmp_path / "items.jsonl")
    files = D.split_items(path, tmp_path / "in", 2)
    assert [len(f.read_text().splitlines()) for f in files] == [2, 3]
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert D.split_items(path, tmp_path / "in", 2) == files and [f.stat().st_mtime_ns for f in files] == mtimes


PACE = 0.3  # seconds of sleep per batch in the killed run (stands in for a model's time)


def test_datatrove_killed_in_a_subprocess_loses_and_duplicates_nothing(tmp_path):
    items = _items(12)
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=2)
    out = tmp_path / "dt"
    cmd = [sys.executable, "-m", "helpers.scale.pipeline", "--engine", "datatrove", "--items", str(path), "--factory",
           FACTORY, "--kwargs", json.dumps({"pace": PACE}), "--out", str(out), "--batch-size", "2", "--tasks", "3"]
    # 3 tasks of 2 batches: 0.6 s each, after a start of 0.7 s or more. A kill at 1-1.5 s leaves at least two tasks
    # to do, and a resumed run needs at least 0.7 + 1.2 s for them, so the second kill lands mid-run too
    seen = []

    def on_disk() -> int:
        rows, _ = D.read_rows(out)
        seen.append((D.completed_tasks(tmp_path / "dt.logs"), Counter(r["id"] for r in rows)))
        return len(rows)

    attempts = P.kill_and_resume(cmd, kills=2, delay=(1.0, 1.5), seed=0, count_rows=on_disk)
    assert all(a.killed for a in attempts[:-1]), attempts
    assert attempts[-1].returncode == 0 and not attempts[-1].killed
    for done, ids in seen:  # after every attempt: no id twice on disk, and every completed task whole
        assert max(ids.values(), default=1) == 1
        for t in done:
            assert [json.loads(line)["id"] for line in open(D.task_file(out, t))] == [f"i{i:03d}" for i in range(4 * t, 4 * t + 4)]
    assert seen[-1][0] == [0, 1, 2]
    check = P.compare_rows(ref, D.read_rows(out)[0])
    assert check.ok, check
