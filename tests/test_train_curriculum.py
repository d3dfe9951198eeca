"""The curriculum module: difficulty scores, label noise, pacing and orders, answering, resume, the grid, verdicts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.train import curriculum as cu
from helpers.train.flywheel import AdditionTask


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def task():
    return AdditionTask(max_len=22)  # operands of up to 3 digits


@pytest.fixture(scope="module")
def small():
    return AdditionTask(max_len=17, d_model=16, n_layers=1, n_heads=2, d_ff=32)  # up to 2 digits, trains in ms


def test_carries_counts_the_columns_that_carry():
    assert cu.carries((347, 825)) == 2  # 7+5 carries, 4+2+1 does not, 3+8 carries
    assert cu.carries((0, 0)) == 0 and cu.carries((5, 4)) == 0 and cu.carries((5, 5)) == 1
    assert cu.carries((999, 1)) == 3 and cu.carries((1, 999)) == 3


def test_sample_levels_spreads_items_over_levels_and_respects_exclude(task):
    tests = task.sample(50, 1, seed=1) + task.sample(30, 2, seed=2)
    pool = cu.sample_levels(task, 300, [1, 2, 3], seed=0, exclude=tests)
    assert len(pool) == len(set(pool)) == 300 and not set(pool) & set(tests)
    per = {d: sum(task.digits_of(it) == d for it in pool) for d in (1, 2, 3)}
    assert per[1] == 50  # only 50 one-digit pairs are left, the other levels make up the rest
    assert per[2] + per[3] == 250 and abs(per[2] - per[3]) <= 1
    assert cu.sample_levels(task, 300, [1, 2, 3], seed=0, exclude=tests) == pool  # seeded
    assert [task.digits_of(it) for it in pool[:20]] != sorted(task.digits_of(it) for it in pool[:20])  # shuffled
    with pytest.raises(ValueError, match="free items"):
        cu.sample_levels(task, 101, [1])


def test_corrupt_labels_makes_a_known_share_wrong_and_keeps_the_written_form(task):
    items = cu.sample_levels(task, 200, [1, 2, 3], seed=0)
    answers, noisy = cu.corrupt_labels(task, items, 0.25, seed=3)
    assert sum(noisy) == 50
    for it, y, bad in zip(items, answers, noisy):
        assert task.check(it, y) != bad
        task.format(*it, y)  # a wrong label still fits the item's columns
    assert cu.corrupt_labels(task, items, 0.25, seed=3) == (answers, noisy)
    clean, none = cu.corrupt_labels(task, items, 0.0)
    assert clean == [a + b for a, b in items] and not any(none)
    with pytest.raises(ValueError, match="share"):
        cu.corrupt_labels(task, items, 1.5)


def _greedy_one(model, task, item):
    """Reference: the greedy answer of one item, one character at a time."""
    tok = task.tokenizer
    ids = [tok.bos_id]
    out = []
    for j, (x, y) in enumerate(task.columns(item)):
        ids += ([tok.stoi[","]] if j else []) + [tok.stoi[x], tok.stoi[y], tok.stoi["="]]
        logits = model(torch.tensor([ids]))[0, -1, task.digit_ids]
        d = int(logits.argmax())
        out.append(str(d))
        ids.append(task.digit_ids[d])
    return int("".join(out)[::-1])


def test_predict_matches_a_one_item_greedy_reference_and_correct_checks_it(task):
    model = task.new_model(seed=0)
    items = [(3, 4), (12, 99), (507, 8), (999, 999), (0, 0)]
    with torch.no_grad():
        ref = [_greedy_one(model, task, it) for it in items]
    got = cu.predict(model, task, items, batch_size=2)
    assert got == ref
    assert cu.correct(model, task, items) == [task.check(it, y) for it, y in zip(items, got)]


def test_answer_losses_score_only_the_sum_digits(task):
    model = task.new_model(seed=1)
    items = [(12, 34), (5, 6)]
    losses = cu.answer_losses(model, task, items, [46, 12])
    tok = task.tokenizer
    ids = torch.tensor([[tok.bos_id] + tok.encode(task.format(12, 34, 46))])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[:, :-1]), -1)[0]
    text = task.format(12, 34, 46)
    pos = [i for i, ch in enumerate(text) if i % 5 == 3]
    assert [text[i] for i in pos] == ["6", "4", "0"]
    want = -np.mean([float(logp[i, ids[0, i + 1]]) for i in pos])
    assert losses[0] == pytest.approx(want, rel=1e-5)
    other = cu.answer_losses(model, task, items)  # default: the true sums; 5+6 = 11, labelled 12 above
    assert other[0] == pytest.approx(losses[0]) and other[1] != pytest.approx(losses[1])


def test_difficulty_scores_have_every_source_and_teacher_only_with_a_teacher(small):
    items = [(3, 4), (9, 9), (12, 5), (99, 99)]
    s = cu.difficulty_scores(small, items)
    assert set(s) == set(cu.SCORES) - {"teacher"}
    assert s["digits"] == [1, 1, 2, 2] and s["carries"] == [0, 1, 0, 2]
    assert s["known"] == [1.0, 1.1, 2.0, 2.2] and s["length"] == [3, 3, 4, 5]
    with_teacher = cu.difficulty_scores(small, items, teacher=small.new_model(seed=0))
    assert len(with_teacher["teacher"]) == 4 and all(v > 0 for v in with_teacher["teacher"])


def test_pacing_grows_linearly_from_start_to_everything():
    assert cu.pacing(0, 100, start=0.2, ramp=0.8) == pytest.approx(0.2)
    assert cu.pacing(40, 100, start=0.2, ramp=0.8) == pytest.approx(0.6)
    assert cu.pacing(80, 100, start=0.2, ramp=0.8) == 1.0 and cu.pacing(99, 100) == 1.0
    vals = [cu.pacing(t, 50) for t in range(50)]
    assert vals == sorted(vals)
    with pytest.raises(ValueError):
        cu.pacing(0, 10, start=0.0)


def test_rank_items_sorts_by_score_and_breaks_ties_at_random():
    scores = [3, 1, 2, 1, 3, 1]
    r = cu.rank_items(scores, seed=0)
    assert [scores[i] for i in r] == sorted(scores)
    assert [scores[i] for i in cu.rank_items(scores, hardest_first=True)] == sorted(scores, reverse=True)
    ties = {tuple(cu.rank_items([0] * 8, seed=s)) for s in range(5)}
    assert len(ties) > 1 and cu.rank_items(scores, seed=4) == cu.rank_items(scores, seed=4)


def _drawn(task, batch):
    """The (a, b) items in a batch tensor."""
    tok = task.tokenizer
    return [task.parse(tok.decode(row))[:2] for row in batch]


def test_orders_draw_from_the_right_part_of_the_pool(task):
    items = cu.sample_levels(task, 100, [1, 2, 3], seed=0)
    answers = [a + b for a, b in items]
    scores = [float(task.digits_of(it)) for it in items]
    ranked = cu.rank_items(scores, seed=0)
    first_easy = {items[i] for i in ranked[:20]}
    first_hard = {items[i] for i in cu.rank_items(scores, hardest_first=True, seed=0)[:20]}
    e2h = cu.make_batches(task, items, answers, order="easy-to-hard", scores=scores, steps=100, batch_size=64,
                          seed=0, start=0.2, ramp=0.8)
    assert set(_drawn(task, e2h(0))) <= first_easy
    assert torch.equal(e2h(5), e2h(5)) and not torch.equal(e2h(5), e2h(6))  # a function of the step
    assert len({task.digits_of(it) for it in _drawn(task, e2h(99))}) == 3  # the whole pool by the end
    h2e = cu.make_batches(task, items, answers, order="hard-to-easy", scores=scores, steps=100, batch_size=64)
    assert set(_drawn(task, h2e(0))) <= first_hard
    clean = [i % 2 == 0 for i in range(len(items))]
    ann = cu.make_batches(task, items, answers, order="anneal", clean=clean, steps=100, batch_size=64,
                          anneal_share=0.2)
    clean_set = {it for it, c in zip(items, clean) if c}
    assert set(_drawn(task, ann(80))) <= clean_set and set(_drawn(task, ann(99))) <= clean_set
    assert not set(_drawn(task, ann(79))) <= clean_set  # before the anneal: the whole pool
    rnd = cu.make_batches(task, items, answers, order="random", steps=100, batch_size=64)
    assert torch.equal(rnd(3), cu.make_batches(task, items, answers, order="anneal", steps=100, batch_size=64)(3))
    assert (rnd(0)[:, 1] != task.tokenizer.stoi["."]).all()  # texts start at the first position
    with pytest.raises(ValueError, match="score"):
        cu.make_batches(task, items, answers, order="easy-to-hard", steps=10)
    with pytest.raises(ValueError, match="unknown order"):
        cu.make_batches(task, items, answers, order="sideways", steps=10)
    with pytest.raises(ValueError, match="clean slice"):
        cu.make_batches(task, items, answers, order="anneal", clean=[False] * len(items), steps=10)


def test_a_killed_ordered_run_resumes_to_the_same_weights(small, tmp_path):
    items = cu.sample_levels(small, 60, [1, 2], seed=0)
    answers = [a + b for a, b in items]
    scores = cu.difficulty_scores(small, items)["known"]
    kw = dict(order="easy-to-hard", scores=scores, steps=12, seed=3, batch_size=8, checkpoint_every=4)
    whole = cu.train_ordered(small, items, answers, **kw)
    cu.train_ordered(small, items, answers, checkpoint_dir=tmp_path / "run", stop_after=6, **kw)  # "killed"
    resumed = cu.train_ordered(small, items, answers, checkpoint_dir=tmp_path / "run", **kw)
    assert resumed.resumed_from is not None and resumed.global_step == 12
    for (n, p), (_, q) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.allclose(p, q, atol=1e-6), n
    again = cu.train_ordered(small, items, answers, checkpoint_dir=tmp_path / "run", **kw)  # finished: loaded
    assert again.steps == 0
    assert all(torch.equal(p, q) for p, q in zip(again.model.state_dict().values(),
                                                   resumed.model.state_dict().values()))


def test_run_grid_fills_every_cell_shares_anneal_without_noise_and_resumes(small, tmp_path):
    orders = [("random", None), ("easy-to-hard", "known"), ("easy-to-hard", "teacher"), ("anneal", None)]
    kw = dict(orders=orders, budgets=[6], noise_levels=[0.0, 0.5], seeds=[0], n_train=40, n_test=6,
              teacher_items=20, teacher_steps=3, batch_size=8, curve_points=2, progress=None)
    res = cu.run_grid(small, checkpoint_root=tmp_path, **kw)
    names = [cu.cell_name(o, s) for o, s in orders]
    assert set(res.flags) == {(0, p, n, 6) for p in (0.0, 0.5) for n in names}
    assert res.shared == [(0, 0.0, "anneal", 6)]
    assert res.flags[(0, 0.0, "anneal", 6)] == res.flags[(0, 0.0, "random", 6)]
    assert res.matrix(0.5, "random", 6).shape == (1, 12)  # 6 one-digit and 6 two-digit test items
    answers, noisy = res.labels[(0, 0.5)]
    assert sum(noisy) == 20 and set(res.scores[(0, 0.5)]) == set(cu.SCORES)
    assert [s for s, _ in res.curves[(0, 0.5, "anneal", 6)]] == [3, 6]  # the largest budget: the whole curve
    assert not set(res.pools[0]) & {it for v in res.tests.values() for it in v}
    tab = res.table()
    assert set(tab.cell) == set(names) and tab.accuracy.between(0, 1).all()
    again = cu.run_grid(small, checkpoint_root=tmp_path, **kw)
    assert len(again.resumed) == 7 and again.flags == res.flags  # every trained run loaded, same answers
    with pytest.raises(ValueError, match="need a score"):
        cu.run_grid(small, **{**kw, "orders": [("easy-to-hard", None)]})


def test_cluster_bootstrap_and_verdict_say_what_the_numbers_say():
    rng = np.random.default_rng(0)
    a = (rng.random((4, 300)) < 0.8).astype(float)
    b = (rng.random((4, 300)) < 0.5).astype(float)
    d, lo, hi = cu.cluster_bootstrap_diff(a, b)
    assert lo < d < hi and lo > 0.15
    m, mlo, mhi = cu.cluster_bootstrap_ci(a)
    assert m == pytest.approx(a.mean()) and mlo < m < mhi and mhi - mlo < 0.1
    same = cu.cluster_bootstrap_diff(a, a)
    assert same == (0.0, 0.0, 0.0)
    v = cu.verdict("A", "B", a, b)
    assert v["word"] == "higher" and v["wins"] == 4 and "A - B = +0.245" in v["text"]
    assert cu.verdict("B", "A", b, a)["word"] == "lower"
    close = cu.verdict("A", "A'", a, np.roll(a, 1, axis=1))
    assert close["word"] == "not clearly different"
    with pytest.raises(ValueError):
        cu.cluster_bootstrap_diff(a, b[:, :10])


def test_which_labels_are_wrong_does_not_follow_the_batches(task):
    """The noise and the batch sampler draw from separate random streams (a shared stream once made every
    example of one early batch a wrong one)."""
    items = cu.sample_levels(task, 500, [2, 3], seed=0)
    for s in range(3):
        answers, noisy = cu.corrupt_labels(task, items, 0.2, seed=s)
        batches = cu.make_batches(task, items, answers, order="random", steps=20, batch_size=64, seed=0)
        for step in range(20):
            wrong = [a + b != y for a, b, y in (task.parse(task.tokenizer.decode(r)) for r in batches(step))]
            assert sum(wrong) / len(wrong) < 0.5, (s, step)
