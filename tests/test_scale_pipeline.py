"""helpers.scale.pipeline: row accounting, the course runner with a real kill, and Ray Data."""
from __future__ import annotations

import json
import sys
import time

import pytest

from helpers.scale import pipeline as P

FACTORY = "helpers.scale.pipeline:cheap_factory"


def _items(n: int) -> list[dict]:
    return [{"id": f"i{i:03d}", "text": "word " * (i % 5 + 1) + str(i)} for i in range(n)]


# ----------------------------------------------------------------------------- accounting
def test_compare_rows_counts_lost_duplicated_extra_and_changed():
    ref = [{"id": 1, "x": "a"}, {"id": 2, "x": "b"}, {"id": 3, "x": "c"}]
    run = [{"id": 1, "x": "a"}, {"id": 1, "x": "a"}, {"id": 2, "x": "B"}, {"id": 9, "x": "z"}]
    check = P.compare_rows(ref, run)
    assert (check.lost, check.duplicated, check.extra, check.changed) == (1, 1, 1, 1)
    assert check.lost_ids == [3] and check.duplicated_ids == [1] and check.changed_ids == [2]
    assert not check.ok
    assert P.compare_rows(ref, list(reversed(ref))).ok  # order does not matter


def test_content_hash_ignores_key_order_and_named_fields():
    a = {"id": 1, "text": "x", "seconds": 0.1}
    b = {"seconds": 9.0, "text": "x", "id": 1}
    assert P.content_hash(a) != P.content_hash(b)
    assert P.content_hash(a, ignore=["seconds"]) == P.content_hash(b, ignore=["seconds"])


def test_reference_with_repeated_ids_and_rows_without_id_are_refused():
    with pytest.raises(ValueError, match="repeats id"):
        P.compare_rows([{"id": 1}, {"id": 1}], [])
    with pytest.raises(KeyError, match="no 'id'"):
        P.compare_rows([{"id": 1}], [{"x": 1}])
    with pytest.raises(ValueError, match="repeat an id"):
        P.write_items([{"id": 1}, {"id": 1}], "/tmp/never-written.jsonl")


def test_load_factory_by_module_and_by_file(tmp_path):
    assert P.load_factory(FACTORY) is P.cheap_factory
    f = tmp_path / "steps.py"
    f.write_text("def make(k=2):\n    return lambda rows: [{**r, 'y': r['x'] * k} for r in rows]\n")
    fn = P.build(f"{f}:make", {"k": 3})
    assert fn([{"id": 1, "x": 2}]) == [{"id": 1, "x": 2, "y": 6}]
    with pytest.raises(ValueError, match="module:function"):
        P.load_factory("no_colon")
    with pytest.raises(AttributeError, match="no callable"):
        P.load_factory(f"{f}:missing")
    with pytest.raises(FileNotFoundError):
        P.load_factory(f"{tmp_path / 'absent.py'}:make")


def test_compose_chains_steps_and_checks_their_output():
    add = lambda rows: [{**r, "a": 1} for r in rows]  # noqa: E731
    drop_odd = lambda rows: [r for r in rows if r["id"] % 2 == 0]  # noqa: E731
    assert P.compose(add, drop_odd)([{"id": 1}, {"id": 2}]) == [{"id": 2, "a": 1}]
    with pytest.raises(TypeError, match="list of rows"):
        P.compose(lambda rows: None)([{"id": 1}])


# ----------------------------------------------------------------------------- course runner
def test_run_job_resumes_without_rebuilding_when_done(tmp_path):
    items = _items(10)
    rows, rep = P.run_job(items, FACTORY, tmp_path / "job", batch_size=3)
    assert rep.processed == 10 and len(rows) == 10
    built = []

    def factory():
        built.append(1)
        return P.cheap_factory()

    rows2, rep2 = P.run_job(items, factory, tmp_path / "job2", batch_size=3)
    assert built == [1] and P.compare_rows(rows, rows2).ok
    rows3, rep3 = P.run_job(items, factory, tmp_path / "job2", batch_size=3)
    assert rep3.already_done == 10 and rep3.processed == 0 and built == [1]  # no model load when all is done


def test_job_killed_in_a_subprocess_loses_and_duplicates_nothing(tmp_path):
    items = _items(24)
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=4)
    out = tmp_path / "job"
    cmd = [sys.executable, "-m", "helpers.scale.pipeline", "--engine", "job", "--items", str(path), "--factory",
           FACTORY, "--kwargs", json.dumps({"pace": PACE}), "--out", str(out), "--batch-size", "4"]
    # the steps alone take 6 x 0.8 = 4.8 s, so a kill at 1-2.5 s lands before the run can end, however fast the
    # machine starts Python (with 0.4 s steps and kills at 1.5-3 s, a fast start finished first and no kill landed)
    attempts = P.kill_and_resume(cmd, kills=2, delay=(1.0, 2.5), seed=0,
                                 count_rows=lambda: len(P.ResumableJob(out, key="id", config=_job_config(4)).rows()))
    assert all(a.killed for a in attempts[:-1]), attempts
    assert attempts[-1].returncode == 0 and not attempts[-1].killed
    rows = P.ResumableJob(out, key="id", config=_job_config(4)).rows()
    check = P.compare_rows(ref, rows)
    assert check.ok, check


def _job_config(batch_size):
    return {"factory": FACTORY, "factory_kwargs": {"pace": PACE}}


PACE = 0.8  # seconds of sleep per batch in the killed job (stands in for a model's time)


def test_kill_and_resume_raises_when_the_final_run_fails(tmp_path):
    with pytest.raises(RuntimeError, match="failed"):
        P.kill_and_resume([sys.executable, "-c", "import sys; sys.exit(3)"], kills=0, delay=(0, 0))


# ----------------------------------------------------------------------------- Ray Data
@pytest.fixture
def ray_local():
    P.start_ray(object_store_mb=128)
    yield
    import ray

    ray.shutdown()


def test_ray_runs_give_the_same_rows_and_resume_modes_behave(tmp_path, ray_local):
    items = _items(12)
    path = P.write_items(items, tmp_path / "items.jsonl")
    ref, _ = P.run_job(items, FACTORY, tmp_path / "ref", batch_size=4)
    # Ray Data's own checkpointing: a second run skips every id and writes nothing new
    rows, rep = P.run_ray(path, FACTORY, tmp_path / "ckpt", batch_size=4, resume="ray")
    assert P.compare_rows(ref, rows).ok, P.compare_rows(ref, rows)
    rows, rep = P.run_ray(path, FACTORY, tmp_path / "ckpt", batch_size=4, resume="ray")
    assert rep.skipped == 12 and rep.rows_written == 0 and P.compare_rows(ref, rows).ok
    # the course's skip-done filter on top of Ray, after a half-written file
    rows, _ = P.run_ray(path, FACTORY, tmp_path / "skip", batch_size=4, resume="skip-done")
    victim = sorted((tmp_path / "skip").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:-15])  # cut the last line, as a killed writer would
    rows, rep = P.run_ray(path, FACTORY, tmp_path / "skip", batch_size=4, resume="skip-done")
    assert rep.dropped_files == [victim.name] and 0 < rep.rows_written < 12
    assert P.compare_rows(ref, rows).ok, P.compare_rows(ref, rows)
    # no resume: a re-run writes every row again
    P.run_ray(path, FACTORY, tmp_path / "plain", batch_size=4, resume="none")
    rows, _ = P.run_ray(path, FACTORY, tmp_path / "plain", batch_size=4, resume="none")
    check = P.compare_rows(ref, rows)
    assert check.duplicated == 12 and check.lost == 0


def test_run_ray_refuses_bad_arguments(tmp_path, ray_local):
    path = P.write_items(_items(2), tmp_path / "items.jsonl")
    with pytest.raises(ValueError, match="resume"):
        P.run_ray(path, FACTORY, tmp_path / "o", resume="sometimes")
    with pytest.raises(TypeError, match="string"):
        P.run_ray(path, P.cheap_factory, tmp_path / "o")
    with pytest.raises(AttributeError, match="no callable"):
        P.run_ray(path, "helpers.scale.pipeline:nothing_here", tmp_path / "o")


def test_run_ray_without_ray_running_says_so(tmp_path):
    import ray

    assert not ray.is_initialized()
    path = P.write_items(_items(2), tmp_path / "items.jsonl")
    with pytest.raises(RuntimeError, match="start_ray"):
        P.run_ray(path, FACTORY, tmp_path / "o")
