"""Unit tests for helpers.verify.mathgen: problems, answer extraction, grading, voting, saving."""
from __future__ import annotations

import math
import random
import re
from fractions import Fraction

import numpy as np
import pytest

from helpers.verify import mathgen as mg
from tests.fakes import ScriptedLM
from helpers.verify.mathgen import (Problem, cot_prompt, extract_answer, format_number, grade_chains,
                             is_correct, majority_vote, make_problem, make_problems, parse_number,
                             rejection_sample, vote_curve)


# ----------------------------------------------------------------------------- problems
def _eval_steps(p: Problem) -> None:
    """Re-check every computed line of the reference solution with plain arithmetic."""
    for line in p.steps:
        for lhs, rhs in re.findall(r"(\d[\d./]*(?: [-+*/] [\d./]+)+) = (\d[\d./]*)", line):
            terms = lhs.strip()
            # evaluate with exact fractions
            val = eval(re.sub(r"(\d+(?:\.\d+)?)", r"Fraction('\1')", terms), {"Fraction": Fraction})
            assert val == Fraction(rhs.rstrip(".")), (p.id, line)


@pytest.mark.parametrize("template", sorted(mg.TEMPLATES))
@pytest.mark.parametrize("difficulty", mg.DIFFICULTIES)
def test_every_template_gives_consistent_problems(template, difficulty):
    for seed in range(40):
        p = make_problem(template, difficulty, seed)
        assert p.question.endswith("?")
        assert p.answer >= 0
        assert p.answer.denominator in (1, 2, 4, 5, 10, 20, 25, 50, 100), p  # terminating, money-like
        assert extract_answer(p.reference_solution()).value == p.answer
        _eval_steps(p)
        # the last step's result is the answer
        assert parse_number(p.steps[-1].rsplit("=", 1)[-1]) == p.answer


@pytest.mark.parametrize("template", sorted(mg.TEMPLATES))
@pytest.mark.parametrize("difficulty", mg.DIFFICULTIES)
def test_answers_are_whole_numbers_or_money_over_many_seeds(template, difficulty):
    """What the notebook promises: dollar answers are whole cents, every other answer a whole number.

    (The percent template at difficulty 3 used to add a 5% tax to prices ending in 50 cents,
    giving answers such as 354.375 in 15 of 3,000 draws; 40 seeds never met one.)
    """
    for seed in range(3000):
        p = make_problem(template, difficulty, seed)
        if p.unit == "dollars":
            assert (p.answer * 100).denominator == 1, (p.question, p.answer_str)
            for line in p.steps:  # every intermediate amount is whole cents too
                for x in mg.numbers_in(line):
                    assert (x * 100).denominator == 1, (p.question, line)
        else:
            assert p.answer.denominator == 1, (p.question, p.answer_str)


def test_difficulty_means_more_steps():
    for t in mg.TEMPLATES:
        steps = [np.mean([make_problem(t, d, s).n_steps for s in range(20)]) for d in mg.DIFFICULTIES]
        assert steps[0] < steps[1] < steps[2], (t, steps)


def test_make_problems_balanced_distinct_reproducible():
    a = make_problems(36, seed=3)
    b = make_problems(36, seed=3)
    c = make_problems(36, seed=4)
    assert [p.question for p in a] == [p.question for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    assert len({p.question for p in a}) == 36
    assert len({p.id for p in a}) == 36
    assert {p.difficulty for p in a} == {1, 2, 3}
    assert {p.template for p in a} == set(mg.TEMPLATES)
    assert make_problems(0) == []
    with pytest.raises(KeyError):
        make_problem("nope", 1, 0)
    with pytest.raises(ValueError):
        make_problem("ages", 7, 0)


def test_problem_to_dict_and_prompt():
    p = make_problem("percent", 3, 1)
    d = p.to_dict()
    assert d["answer"] == format_number(p.answer) and math.isclose(d["answer_float"], float(p.answer))
    prompt = cot_prompt(p, example=make_problem("ages", 2, 5))
    assert p.question in prompt and "####" in prompt and "Example" in prompt
    assert cot_prompt("What is 2+2?").endswith("What is 2+2?")


def test_format_number():
    assert format_number(Fraction(12)) == "12"
    assert format_number(Fraction(63, 2)) == "31.5"
    assert format_number(Fraction(189, 2)) == "94.5"
    assert format_number(Fraction(1, 3)) == "1/3"
    assert format_number(0.75) == "0.75"


# ----------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("text,value,method", [
    ("3 * 4 = 12.\n#### 12", 12, "hash"),
    ("#### $1,234.50", Fraction("1234.5"), "hash"),
    ("#### 3 * 4 = 12", 12, "hash"),
    ("#### -7", -7, "hash"),
    ("blah 5\n#### 12 dollars\nthanks 99", 12, "hash"),
    (r"So the total is \boxed{42}.", 42, "boxed"),
    (r"$\boxed{\frac{3}{4}}$", Fraction(3, 4), "boxed"),
    (r"\boxed{\dfrac{15}{2}}", Fraction(15, 2), "boxed"),
    (r"\boxed{\$63.60}", Fraction("63.6"), "boxed"),
    (r"\boxed{12 \text{ km}}", 12, "boxed"),
    ("The answer is 29.", 29, "answer_is"),
    ("The answer is: 3 * 4 = 12. Nice 5", 12, "answer_is"),
    ("**Answer:** 42 dollars", 42, "answer_is"),
    ("Final answer: 1,000,000", 1_000_000, "answer_is"),
    ("The answer to the question is 7", 7, "answer_is"),
    ("Answer: twelve", 12, "answer_is"),
    ("First 5 + 3 = 8. Then 8 * 2 = 16.", 16, "last_number"),
    ("To answer the question, 5 + 3 = 8. Then 8 * 2 = 16.", 16, "last_number"),
    ("It costs 12.5 dollars.", Fraction(25, 2), "last_number"),
    ("The discount is 25%.", 25, "last_number"),
    ("We get 3/4 of the cake", Fraction(3, 4), "last_number"),
    ("10 - 4 = 6", 6, "last_number"),
    ("The total is −3", -3, "last_number"),
])
def test_extract_answer_formats(text, value, method):
    ex = extract_answer(text)
    assert ex.value == Fraction(value), (text, ex)
    assert ex.method == method, (text, ex)


# Replies in the style of Qwen2.5 models: Markdown step headings, then \\boxed{} or a sentence.
QWEN_STYLE = [
    ("### Step 1\nMaya buys 3 pens at $5: 3 * 5 = 15.\n### Step 2\n15+27=42\n\\boxed{42}", 42, "boxed"),
    ("To solve this, we go step by step.\n\n### Step 1: Cost of the notebooks\n4 notebooks cost 4 * 3 = 12 dollars.\n\n"
     "### Step 2: Cost of the pens\n6 pens cost 6 * 5 = 30 dollars.\n\n### Step 3: Total\n12 + 30 = 42 dollars.\n\n"
     "### Final Answer\nThe total is \\(\\boxed{42}\\) dollars.", 42, "boxed"),
    ("### Step 1: Trays\n5 * 12 = 60 muffins.\n### Step 2: Sold\n60 * 3/4 = 45.\n### Step 3: Left\n60 - 45 = 15\n\n"
     "The answer is 15.", 15, "answer_is"),
    ("#### Step 1: Distance\n60 * 3 = 180 km\n#### Step 2: Total\n180 + 40 = 220 km\n#### 220", 220, "hash"),
    ("## Solution\n#### 1. First part\n3 * 4 = 12\n#### 2. Second part\n12 * 2 = 24\nSo she has 24 dollars left.",
     24, "last_number"),
    ("### Step 1\n20% of 150 is 30.\n### Step 2\n150 - 30 = 120\n#### 120", 120, "hash"),
    ("#### Final Answer\nThe final answer is $\\boxed{7.5}$", Fraction(15, 2), "boxed"),
    ("**Step 1:** 8 + 5 = 13\n**Step 2:** 13 * 2 = 26\n\n**Answer:** #### 26", 26, "hash"),
    ("##### 3 levels deep\nThe answer is 9", 9, "answer_is"),
]


@pytest.mark.parametrize("text,value,method", QWEN_STYLE)
def test_markdown_step_headings_are_not_answers(text, value, method):
    ex = extract_answer(text)
    assert (ex.value, ex.method) == (Fraction(value), method), (text, ex)


@pytest.mark.parametrize("bad", [None, "", "   ", "no numbers here at all", "#### ", r"\boxed{}", "\x00\x01"])
def test_extract_answer_bad_input_never_crashes(bad):
    ex = extract_answer(bad)
    assert ex.value is None and ex.method == "none" and not ex.found


def test_extract_answer_huge_text_reads_only_the_end():
    # only the last mg._MAX_CHARS characters are searched (that is what keeps it fast on runaway
    # replies; speed belongs in benchmarks/, not in a unit test)
    text = ("blah 7 " * 200_000) + "\n#### 31"
    assert extract_answer(text).value == 31
    early = "#### 5\n" + "no numbers here " * (mg._MAX_CHARS // 16 + 10)
    assert len(early) > mg._MAX_CHARS
    assert extract_answer(early).value is None  # the early answer lies outside the searched end
    assert extract_answer("#### 5\n" + "no numbers here " * 10).value == 5
    assert extract_answer("1" * 5000).value is None  # a 5000-digit "number" is garbage: no answer, no crash
    assert extract_answer("x " + "9" * 50).value == int("9" * 50)


def test_parse_number_edge_cases():
    assert parse_number("1/0") is None
    assert parse_number("abc") is None
    assert parse_number("-$5") == -5
    assert parse_number("12km") == 12
    assert parse_number("x2") is None  # glued to a word: a variable name, not a number


def test_numbers_in():
    assert mg.numbers_in("3 apples cost $1,200.50, so 3/4 of 8 is 6") == [3, Fraction("1200.5"), Fraction(3, 4), 8, 6]
    assert mg.numbers_in("") == [] and mg.numbers_in(None) == []


def test_is_correct_tolerance():
    assert is_correct(Fraction(12), 12)
    assert is_correct(12.00001, 12)
    assert is_correct(Fraction("33.3333"), Fraction(100, 3))
    assert not is_correct(13, 12)
    assert not is_correct(1001, 1000)
    assert not is_correct(None, 12)
    assert not is_correct(float("nan"), 1)
    assert not is_correct(float("inf"), 1)
    assert is_correct(0, 0) and not is_correct(0.01, 0)


# ----------------------------------------------------------------------------- grading, rejection
def test_grade_and_rejection_sampling_counts_every_chain():
    probs = make_problems(3, seed=0)
    a0, a1, a2 = (p.answer_str for p in probs)
    chains = [
        [f"ok\n#### {a0}", f"ok\n#### {a0}", "#### 999999", "", f"the answer is {a0}"],
        ["no idea", f"#### {a1}"],
        [f"#### {a2}"],
    ]
    truncated = [[False, False, False, False, False], [False, True], [False]]
    grades = grade_chains(probs, chains, truncated)
    verdicts = [[g.verdict for g in row] for row in grades]
    assert verdicts[0] == ["correct", "correct", "wrong answer", "empty", "correct"]
    assert verdicts[1] == ["no answer", "correct"]
    res = rejection_sample(probs, grades)
    assert res.n_chains == 8
    assert len(res.kept) + sum(res.reasons.values()) == res.n_chains  # nothing silently lost
    assert res.reasons["duplicate"] == 1 and res.reasons["truncated"] == 1
    assert res.reasons["wrong answer"] == 1 and res.reasons["empty"] == 1 and res.reasons["no answer"] == 1
    assert res.problems_covered == 2  # problem 1's only right chain was truncated
    assert "kept 3/8" in res.report()
    strict = rejection_sample(probs, grades, require_format=True, max_per_problem=1)
    assert strict.reasons["format"] == 1
    assert len(strict.kept) + sum(strict.reasons.values()) == strict.n_chains
    assert all(r["answer_method"] == "hash" for r in strict.kept)
    with pytest.raises(ValueError):
        grade_chains(probs, chains[:2])


# ----------------------------------------------------------------------------- voting
def test_majority_vote_and_ties():
    F = Fraction
    v = majority_vote([F(3), F(4), F(3), None])
    assert v.answer == 3 and v.count == 2 and v.n_valid == 3 and not v.tied
    assert majority_vote([F(12), F("12.0"), F(24, 2), F(5)]).answer == 12  # same value, one bucket
    tie = [F(1), F(2), F(2), F(1)]
    assert majority_vote(tie).answer == 1 and majority_vote(tie).tied  # "first" = first seen
    assert majority_vote(tie, tie_break="abstain").answer is None
    rng = random.Random(0)
    picks = {majority_vote(tie, tie_break="random", rng=rng).answer for _ in range(50)}
    assert picks == {1, 2}
    picks_np = {majority_vote(tie, tie_break="random", rng=np.random.default_rng(1)).answer for _ in range(1)}
    assert picks_np <= {1, 2}
    empty = majority_vote([None, None])
    assert empty.answer is None and empty.n_valid == 0
    with pytest.raises(ValueError):
        majority_vote(tie, tie_break="coin")


def test_vote_curve_properties():
    F = Fraction
    gold = [F(1), F(1), F(1)]
    answers = [
        [F(1), F(1), F(1), F(2), F(3)],  # right answer is the plurality: voting helps
        [F(2), F(2), F(2), F(1), F(3)],  # a wrong answer dominates: voting hurts
        [None, None, None, None, None],  # never answers
    ]
    ks = [1, 3, 5, 7]
    cur = vote_curve(answers, gold, ks, n_draws=400, seed=0)
    maj, pas, single = cur["majority"], cur["pass"], cur["single"]
    assert maj.shape == (3, 4)
    assert np.isnan(maj[:, 3]).all()  # k > n
    assert maj[0, 0] == 0.6 and math.isclose(single[0, 0], 0.6)
    assert maj[0, 2] == 1.0 and maj[1, 2] == 0.0
    assert maj[0, 1] > maj[0, 0] and maj[1, 1] < maj[1, 0]
    assert (pas[:, :3] >= maj[:, :3] - 1e-9).all()  # a vote can only be right if some sample is
    assert (maj[2, :3] == 0).all() and (pas[2, :3] == 0).all()


# ----------------------------------------------------------------------------- saving
def test_kept_chains_save_with_chain_features(tmp_path):
    from helpers.core.io import load_dataset_dir, save_dataset

    probs = make_problems(2, seed=0)
    grades = grade_chains(probs, [[p.reference_solution()] for p in probs])
    res = rejection_sample(probs, grades)
    rows = [dict(r, generator="unit-test") for r in res.kept]
    assert set(rows[0]) == set(mg.CHAIN_FEATURES)  # the declared columns are exactly what a kept chain holds
    save_dataset(rows, tmp_path / "ds", title="t", summary="s", notebook="06", smoke=True, features=mg.CHAIN_FEATURES)
    ds = load_dataset_dir(tmp_path / "ds")
    assert len(ds) == 2 and set(ds["generator"]) == {"unit-test"}
    assert ds[0]["answer"] == probs[0].answer_str
    save_dataset([], tmp_path / "empty", title="t", summary="s", notebook="06", smoke=True, features=mg.CHAIN_FEATURES)
    assert len(load_dataset_dir(tmp_path / "empty")) == 0


# ----------------------------------------------------------------------------- sampling (stub LM)
def _stub_lm() -> ScriptedLM:
    """Answers with a number from the prompt's length plus the sample's parity; every third reply is cut off."""
    count = iter(range(10**6))

    def reply(msgs):
        k = next(count)
        return f"blah\n#### {len(msgs[-1]['content']) % 7 + k % 2}", ("length" if k % 3 == 2 else "stop")
    return ScriptedLM(reply, name="stub")


def test_sample_chains_in_memory_and_resumable(tmp_path):
    probs = make_problems(5, seed=0)
    lm = _stub_lm()
    s = mg.sample_chains(lm, probs, 3, shard_size=2, progress=False)
    assert len(s.texts) == 5 and all(len(r) == 3 for r in s.texts)
    assert s.truncated[0] == [False, False, True]
    assert s.new_tokens == 3 * 3 * 5  # three words per reply ("blah", "####", the number), 3 samples, 5 problems
    assert len(lm.calls) == 3  # ceil(5 / 2) shards
    folder = tmp_path / "job"
    s1 = mg.sample_chains(lm, probs, 3, shard_size=2, folder=folder, progress=False)
    calls = len(lm.calls)
    s2 = mg.sample_chains(lm, probs, 3, shard_size=2, folder=folder, progress=False)
    assert len(lm.calls) == calls  # second run read everything back from disk
    assert s1.texts == s2.texts and s1.truncated == s2.truncated and s2.new_tokens == s1.new_tokens
    assert len(list(folder.iterdir())) == 1
    mg.sample_chains(lm, probs, 2, shard_size=2, folder=folder, progress=False)  # new settings: a new job
    assert len(list(folder.iterdir())) == 2 and len(lm.calls) == calls + 3
    with pytest.raises(ValueError):
        mg.sample_chains(lm, probs, 3, temperature=0.0)
    with pytest.raises(ValueError):
        mg.sample_chains(lm, probs, 0)


def _echo_lm(chat_template: str = "<user>{}</user>") -> ScriptedLM:
    """Says whether the prompt it saw asked for cents (``last_user_texts`` records every prompt)."""
    return ScriptedLM(lambda msgs: f"saw cents: {'In cents: ' in msgs[-1]['content']}\n#### 1", name="echo",
                      chat_template=chat_template)


def test_sample_chains_job_is_keyed_by_the_rendered_prompts(tmp_path):
    """A resumed run must never grade chains of an old prompt against the answers of a new one."""
    from dataclasses import replace

    probs = make_problems(4, seed=0)
    folder = tmp_path / "jobs"
    lm = _echo_lm()
    seen = lm.last_user_texts
    mg.sample_chains(lm, probs, 2, shard_size=2, folder=folder, progress=False)
    assert len(seen()) == 8
    lm.calls.clear()
    again = mg.sample_chains(lm, probs, 2, shard_size=2, folder=folder, progress=False)
    assert seen() == []  # unchanged: everything read back, nothing recomputed
    # same ids (template, difficulty, index), new question text: all recomputed, in a new job folder
    changed = [replace(p, question="In cents: " + p.question) for p in probs]
    s = mg.sample_chains(lm, changed, 2, shard_size=2, folder=folder, progress=False)
    assert len(seen()) == 8 and all("In cents: " in c for c in seen())
    assert all(t.startswith("saw cents: True") for row in s.texts for t in row)
    assert all(t.startswith("saw cents: False") for row in again.texts for t in row)
    # a changed worked example (part of every prompt) starts fresh too
    lm.calls.clear()
    mg.sample_chains(lm, probs, 2, example=mg.make_problem("shopping", 2, seed=99), shard_size=2, folder=folder,
                     progress=False)
    assert len(seen()) == 8
    # so does a changed chat template (what the model sees, though the conversation is the same)
    other = _echo_lm("<|im_start|>user\n{}<|im_end|>")
    mg.sample_chains(other, probs, 2, shard_size=2, folder=folder, progress=False)
    assert len(other.last_user_texts()) == 8
    # and each sampling setting or seed
    for change in ({"temperature": 0.5}, {"top_p": 0.9}, {"seed": 1}, {"max_new_tokens": 9}, {"batch_size": 3}):
        lm.calls.clear()
        mg.sample_chains(lm, probs, 2, shard_size=2, folder=folder, progress=False, **change)
        assert len(seen()) == 8, change
    lm.calls.clear()
    mg.sample_chains(lm, probs, 2, shard_size=2, folder=folder, progress=False)  # the first config still resumes
    assert seen() == []
