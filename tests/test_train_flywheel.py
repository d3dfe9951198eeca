"""The flywheel module: the addition task and its verifiers, the round loop, collapse metrics, empty rounds, resume."""
from __future__ import annotations

import copy

import pytest
import torch

from helpers.train import flywheel as fw
from helpers.train.tiny import latest_checkpoint


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def task():
    return fw.AdditionTask(max_len=32)


def test_format_parse_and_check_round_trip(task):
    assert task.format(347, 825) == "75=2,42=7,38=1,00=1"
    assert task.format(5, 3) == "53=8,00=0"
    assert task.format(5, 3, answer=9) == "53=9,00=0"  # a (wrong) label is written as given
    assert task.parse("..." + task.format(347, 825)) == (347, 825, 1172)
    assert task.parse(task.format(99, 1, answer=90)) == (99, 1, 90)
    assert task.show(12, 30) == "12+30=42" and task.show(12, 30, 41) == "12+30=41"
    assert task.check((2, 3), 5) and not task.check((2, 3), 6) and not task.check((2, 3), None)
    with pytest.raises(ValueError, match="more digits"):
        task.format(5, 3, answer=123)
    assert task.max_digits == 5  # 6 columns of 5 characters, bos and eos fit in 32


def test_sample_gives_distinct_items_of_the_asked_length_and_respects_exclude(task):
    items = task.sample(300, 3, seed=1)
    assert len(set(items)) == 300 and all(task.digits_of(it) == 3 for it in items)
    assert task.sample(300, 3, seed=1) == items  # seeded
    other = task.sample(200, 3, seed=2, exclude=items)
    assert not set(other) & set(items)
    mixed = task.sample(200, [1, 2], seed=0)
    assert {task.digits_of(it) for it in mixed} == {1, 2}
    with pytest.raises(ValueError, match="pairs"):
        task.sample(101, 1)  # there are only 100 one-digit pairs
    with pytest.raises(ValueError, match="digits must be"):
        task.sample(5, task.max_digits + 1)


def test_training_batches_put_items_at_random_offsets_and_are_a_function_of_the_step(task):
    items = [(12, 34), (5, 6)]
    batch = task.batches(items, batch_size=16, seed=3)
    a, b = batch(7), batch(7)
    assert torch.equal(a, b) and not torch.equal(batch(7), batch(8))
    tok = task.tokenizer
    texts = {tok.decode(row) for row in a}
    assert {t.lstrip(".") for t in texts} <= {task.format(12, 34), task.format(5, 6)}
    assert len({len(t) - len(t.lstrip(".")) for t in texts}) > 1  # several offsets
    assert a.shape[1] <= task.max_len and (a[:, 0] == tok.bos_id).all()
    wrong = task.batches(items, [47, 12], batch_size=8, seed=0)(0)
    assert any(tok.decode(r).endswith("56=2,00=1") for r in wrong)  # 5+6 labelled 12
    with pytest.raises(fw.EmptyRoundError):
        task.batches([], batch_size=4)


def test_verifiers_keep_what_they_should(task):
    items = [(1, 2), (3, 4), (5, 5), (9, 9)]
    greedy = [3, 8, 10, 17]  # right, wrong, right, wrong
    prog = fw.apply_verifier("program", task, items, greedy)
    assert prog.items == [(1, 2), (5, 5)] and prog.answers == [3, 10] and prog.kept_wrong == 0
    assert prog.n_kept == 2 and prog.n_rejected == 2 and prog.reason[1] == "wrong sum"
    everything = fw.apply_verifier("all", task, items, greedy)
    assert everything.n_kept == 4 and everything.kept_wrong == 2 and everything.answers == greedy
    oracle = fw.apply_verifier("oracle", task, items, greedy)
    assert oracle.answers == [3, 7, 10, 18] and oracle.kept_wrong == 0
    samples = [[3, 3, 3, 3, 4], [8, 8, 8, 8, 8], [10, 11, 12, 10, 13], [18, 18, 17, 18, 18]]
    vote = fw.apply_verifier("vote", task, items, greedy, samples, agree=0.8)
    assert vote.items == [(1, 2), (3, 4), (9, 9)] and vote.answers == [3, 8, 18]
    assert vote.kept_wrong == 1  # a confident, consistent mistake passes a vote
    assert vote.reason[2] == "only 2/5 samples agree"
    with pytest.raises(ValueError, match="samples"):
        fw.apply_verifier("vote", task, items, greedy)
    with pytest.raises(ValueError, match="unknown verifier"):
        fw.apply_verifier("judge", task, items, greedy)


def test_labelling_is_greedy_deterministic_and_sampling_is_seeded(task):
    model = task.new_model(seed=0)
    items = task.sample(20, [1, 3], seed=0)
    a = fw.label_items(model, task, items, seed=1)
    assert a == fw.label_items(model, task, items, seed=1)
    # the labels are numbers with one digit per column
    assert all(0 <= y < 10 ** (task.digits_of(it) + 1) for it, y in zip(items, a))
    s1 = fw.label_items(model, task, items, temperature=1.0, seed=5)
    assert s1 == fw.label_items(model, task, items, temperature=1.0, seed=5)


def test_a_round_learns_and_an_empty_round_stops_with_a_clear_message(task):
    items = task.sample(100, 1, seed=0)
    model = task.new_model(seed=0)
    start = copy.deepcopy(model)
    report = fw.train_round(model, task, items, steps=200, seed=0)
    assert report.steps == 200 and report.losses[-1] < 0.75 * report.losses[0], report.losses
    texts = task.training_texts(items, seed=0)
    from helpers.train.tiny import perplexity
    assert sum(perplexity(model, task.tokenizer, texts)) < sum(perplexity(start, task.tokenizer, texts))
    with pytest.raises(fw.EmptyRoundError, match="no examples to train on"):
        fw.train_round(model, task, [], [], steps=5, what="round 2")
    assert issubclass(fw.EmptyRoundError, ValueError)


def test_a_killed_round_resumes_from_its_checkpoint(task, tmp_path):
    items = task.sample(50, [1, 2], seed=0)
    kw = dict(steps=30, seed=4, batch_size=8, checkpoint_every=10)
    whole = task.new_model(seed=1)
    fw.train_round(whole, task, items, checkpoint_dir=str(tmp_path / "whole"), **kw)
    killed = task.new_model(seed=1)
    first = fw.train_round(killed, task, items, checkpoint_dir=str(tmp_path / "parts"), stop_after=25, **kw)
    assert first.steps == 25 and latest_checkpoint(tmp_path / "parts") is not None
    again = task.new_model(seed=1)
    second = fw.train_round(again, task, items, checkpoint_dir=str(tmp_path / "parts"), **kw)
    assert second.resumed_from.endswith("ckpt-0000020.pt") and second.steps == 10 and second.global_step == 30
    for x, y in zip(whole.state_dict().values(), again.state_dict().values()):
        assert torch.equal(x, y)


def test_run_flywheel_bookkeeping_and_empty_rounds(task):
    kw = dict(arms=("oracle", "program", "all"), seeds=(0,), rounds=1, n_seed=60, n_pool=20, n_test=10,
              steps0=20, steps=5, progress=None)
    res = fw.run_flywheel(task, on_empty="note", **kw)
    assert set(res.tests) == set(range(1, task.max_digits + 1)) and len(res.tests[3]) == 10
    assert {(c["arm"], c["round"]) for c in res.counts} == {("oracle", 1), ("program", 1), ("all", 1)}
    for c in res.counts:
        assert c["kept"] + c["rejected"] == c["pool"] == 20 and c["digits"] == 3
    by_arm = {c["arm"]: c for c in res.counts}
    assert by_arm["oracle"]["kept"] == by_arm["all"]["kept"] == 20 and by_arm["oracle"]["kept_wrong"] == 0
    assert by_arm["program"]["kept_wrong"] == 0
    # every arm labelled the same pool
    pools = {arm: res.labels[(0, arm, 1)] for arm in kw["arms"]}
    assert pools["oracle"].items == [it for it in pools["all"].items]
    table = res.table()
    assert set(table.arm) == set(kw["arms"]) and table["round"].max() == 1
    assert len(res.curve("program", 3)) == 2 and len(res.curve("program", 3)[0]) == 10
    # an untrained model gets (almost) nothing right, so the program check rejects every label
    if by_arm["program"]["kept"] == 0:
        assert res.notes and "rejected all 20 labels" in res.notes[0]
        with pytest.raises(fw.EmptyRoundError, match="rejected all 20 labels"):
            fw.run_flywheel(task, on_empty="raise", **kw)
    with pytest.raises(ValueError, match="unknown arms"):
        fw.run_flywheel(task, arms=("judge",), progress=None)
    with pytest.raises(ValueError, match="fits"):
        fw.run_flywheel(task, rounds=4, progress=None)


def test_distinct_n_tail_share_and_rare_chars():
    assert fw.distinct_n(["a b a b"], 1) == 0.5
    assert fw.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert fw.distinct_n(["abab"], 2, unit="char") == pytest.approx(2 / 3)
    assert fw.distinct_n([], 2) == 0.0 and fw.distinct_n(["a"], 2) == 0.0
    with pytest.raises(ValueError):
        fw.distinct_n(["a"], 0)
    corpus = ["a" * 90 + "b" * 6 + "c" * 3 + "d"]
    assert fw.rare_chars(corpus, tail=0.05) == {"c", "d"}  # 4% of the characters; adding b would pass 5%
    assert fw.rare_chars(corpus, tail=0.5) == {"b", "c", "d"}
    assert fw.tail_share(["aaac", "dd"], {"c", "d"}) == pytest.approx(0.5)
    assert fw.tail_share([""], {"c"}) == 0.0
    assert fw.char_counts(["ab", "b"]) == {"a": 1, "b": 2}


def test_run_collapse_rows_regimes_and_filter():
    real = [f"the {w} sat on the mat {i}." for i, w in enumerate(["cat", "dog", "Owl", "emu", "yak", "Ant"] * 5)]
    res = fw.run_collapse(real[:24], real[24:], generations=1, steps=15, n_samples=12, max_len=40, d_model=32,
                          progress=None, seed=0)
    table = res.table()
    assert set(table.regime) == {"real text", *fw.REGIMES}
    assert len(table) == 1 + 3 * 2
    for regime in fw.REGIMES:
        assert len(res.samples[(regime, 1)]) == 12
    acc = res.value("accumulate", 1, "train_texts")
    assert acc == 24 + 12 and res.value("replace", 1, "train_texts") == 12
    filt = res.value("accumulate+filter", 1, "train_texts")
    assert filt == 24 + 12 - res.value("accumulate+filter", 1, "filtered_out")
    assert res.value("real text", 0, "tail_share") <= 0.05 + 1e-9
    with pytest.raises(fw.EmptyRoundError):
        fw.run_collapse([], ["x"], progress=None)
    with pytest.raises(ValueError, match="unknown regimes"):
        fw.run_collapse(real, real, regimes=("mix",), progress=None)


def test_copies_of_a_model_train_independently(task):
    a = task.new_model(seed=0)
    b = copy.deepcopy(a)
    fw.train_round(b, task, task.sample(10, 1, seed=0), steps=3)
    assert not torch.equal(a.tok_emb.weight, b.tok_emb.weight)
