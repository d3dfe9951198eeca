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


def _counting(seen):
    def fn(batch):
        seen.extend(x["id"] for x in batch)
        return [{"id": x["id"], "text": f"{x['prompt']} -> reply"} for x in batch]
    return fn


def test_keyed_job_resumes_unchanged_and_starts_fresh_when_the_prompt_changes(tmp_path):
    items = [{"id": i, "prompt": f"Write about topic {i}."} for i in range(7)]
    config = {"model": "m", "prompt_template": "Write about topic {i}.", "temperature": 0.7, "seed": 0}
    seen: list[int] = []
    first = ResumableJob(tmp_path, name="gen", shard_size=3, config=config, log=None)
    first.run(items, _counting(seen), progress=False)
    assert sorted(seen) == list(range(7))
    # an unchanged re-run (kernel restart) finds the same keyed folder and recomputes nothing
    seen.clear()
    again = ResumableJob(tmp_path, name="gen", shard_size=3, config=dict(config), log=None)
    rep = again.run(items, _counting(seen), progress=False)
    assert again.folder == first.folder and seen == [] and (rep.already_done, rep.processed) == (7, 0)
    # a changed prompt: a new folder, every item recomputed, a message naming what differs, no old rows
    new_items = [{"id": i, "prompt": f"Explain topic {i}."} for i in range(7)]
    messages: list[str] = []
    seen.clear()
    fresh = ResumableJob(tmp_path, name="gen", shard_size=3, log=messages.append,
                         config=config | {"prompt_template": "Explain topic {i}."})
    rep = fresh.run(new_items, _counting(seen), progress=False)
    assert fresh.folder != first.folder and fresh.folder.parent == first.folder.parent
    assert sorted(seen) == list(range(7)) and (rep.already_done, rep.processed) == (0, 7)
    assert len(messages) == 1 and "starting fresh" in messages[0] and "prompt_template" in messages[0], messages
    assert all(r["text"].startswith("Explain") for r in fresh.rows()) and len(fresh.rows()) == 7
    assert all(r["text"].startswith("Write") for r in first.rows()) and len(first.rows()) == 7  # left untouched
    manifest = json.loads((fresh.folder / "manifest.json").read_text())
    assert manifest["config"]["prompt_template"] == "Explain topic {i}." and manifest["fingerprint"] == fresh.fingerprint
    # each setting that changes the output gets its own key: model, sampling, seed
    for change in ({"model": "other"}, {"temperature": 0.8}, {"seed": 1}):
        assert ResumableJob(tmp_path, name="gen", config=config | change, log=None).folder != first.folder


def test_a_changed_item_under_a_finished_key_is_never_mixed(tmp_path):
    """The config forgot the prompt: the job still refuses to reuse rows made from the old prompt."""
    items = [{"id": i, "prompt": f"old {i}"} for i in range(4)]
    job = ResumableJob(tmp_path, shard_size=2, config={"model": "m"})
    job.run(items, _counting([]), progress=False)
    changed = items[:3] + [{"id": 3, "prompt": "new 3"}]
    with pytest.raises(ValueError, match="changed since"):
        job.run(changed, _counting([]), progress=False)
    assert len(job.pending(items)) == 0  # the unchanged items are still done


def test_fingerprint_is_stable_and_changes_with_settings():
    from helpers.core.jobs import fingerprint

    a = fingerprint({"model": "m", "t": 0.8})
    assert a == fingerprint({"t": 0.8, "model": "m"}) and len(a) == 12
    assert a != fingerprint({"model": "m", "t": 0.7})
