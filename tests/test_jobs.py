import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers.core.jobs import ResumableJob


def rows_for(batch):
    return [{"id": x["id"], "double": x["id"] * 2} for x in batch]


def test_run_and_resume(tmp_path):
    items = [{"id": i} for i in range(10)]
    job = ResumableJob(tmp_path, shard_size=3, config={"a": 1})
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("boom")
        return rows_for(batch)

    with pytest.raises(RuntimeError):
        job.run(items, flaky, progress=False)
    assert len(job) == 3
    rep = ResumableJob(tmp_path, shard_size=3, config={"a": 1}).run(items, rows_for, progress=False)
    assert rep.already_done == 3 and rep.processed == 7
    ds = job.to_dataset()
    assert sorted(ds["id"]) == list(range(10))
    again = job.run(items, rows_for, progress=False)
    assert again.processed == 0 and again.shards_written == 0


def test_config_mismatch_and_duplicate_keys(tmp_path):
    ResumableJob(tmp_path, config={"model": "a"})
    with pytest.raises(ValueError, match="different config"):
        ResumableJob(tmp_path, config={"model": "b"})
    job = ResumableJob(tmp_path, config={"model": "a"})
    with pytest.raises(ValueError, match="duplicate key"):
        job.pending([{"id": 1}, {"id": 1}])


def test_dropped_rows_are_not_retried(tmp_path):
    job = ResumableJob(tmp_path, shard_size=2)
    job.run([{"id": i} for i in range(4)], lambda b: [r for r in rows_for(b) if r["id"] % 2], progress=False)
    assert len(job.rows()) == 2 and len(job) == 4


def test_orphan_rows_file_is_ignored_and_cleaned(tmp_path):
    job = ResumableJob(tmp_path, shard_size=2)
    job.run([{"id": 0}, {"id": 1}], rows_for, progress=False)
    (tmp_path / "shard-00001.jsonl").write_text('{"id": 99}\n')  # crash before .done.json
    assert [r["id"] for r in job.rows()] == [0, 1]
    job.run([{"id": 0}, {"id": 1}, {"id": 2}], rows_for, progress=False)
    assert sorted(r["id"] for r in job.rows()) == [0, 1, 2]


def test_survives_kill_9_of_a_real_process(tmp_path):
    """A worker process is SIGKILLed mid-job; the re-run finishes with every row exactly once."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(os.getcwd())!r})
        from helpers.core.jobs import ResumableJob
        def slow(batch):
            time.sleep(0.05)
            return [{{"id": x["id"], "v": x["id"] ** 2}} for x in batch]
        ResumableJob(sys.argv[1], shard_size=5, config={{"k": 1}}).run([{{"id": i}} for i in range(400)], slow,
                                                                      progress=False)
    """))
    folder = tmp_path / "job"
    proc = subprocess.Popen([sys.executable, str(script), str(folder)])
    deadline = time.time() + 60
    while time.time() < deadline and len(list(folder.glob("*.done.json"))) < 4:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(folder.glob("*.done.json")))
    assert 4 <= done_before < 80, "the worker must have been killed mid-job"
    job = ResumableJob(folder, shard_size=5, config={"k": 1})
    rep = job.run([{"id": i} for i in range(400)], lambda b: [{"id": x["id"], "v": x["id"] ** 2} for x in b],
                  progress=False)
    assert rep.already_done == len(job.done_keys()) - rep.processed
    ids = [r["id"] for r in job.rows()]
    assert sorted(ids) == list(range(400)), "no duplicates and no lost rows"
    assert all(r["v"] == r["id"] ** 2 for r in job.rows())
    assert not list(folder.glob("*.tmp-*"))
    json.loads((folder / "manifest.json").read_text())
