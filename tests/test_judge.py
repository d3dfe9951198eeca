"""Unit tests for helpers.judge (fake LMs; no models needed)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.judge import RUBRIC, Judge, clip_text, parse_score


@pytest.mark.parametrize("text,score,reason", [
    ('{"score": 4}', 4.0, None),
    ('```json\n{"score": "5"}\n```', 5.0, None),
    ('Sure! {"rating": 2} because it is cut off', 2.0, None),
    ("Score: 3", 3.0, None),
    ("I would give it 4/5.", 4.0, None),
    ("4 out of 5", 4.0, None),
    ("2", 2.0, None),
    ("", None, "empty"),
    ('{"score": 9}', None, "out of range"),
    ("The reply lists 3 items and 2 errors.", None, "ambiguous"),
    ("It is fine.", None, "no score"),
    ('{"score": "great"}', None, "no score"),
])
def test_parse_score(text, score, reason):
    assert parse_score(text) == (score, reason)


class FakeGen:
    def __init__(self, text, finish_reason="stop"):
        self.text, self.finish_reason = text, finish_reason


class FakeLM:
    """Replies with canned judge outputs, in order."""

    def __init__(self, replies):
        self.replies = replies
        self.seen = []

    def chat(self, msgs, **kw):
        self.seen = list(msgs)
        return [FakeGen(*r) if isinstance(r, tuple) else FakeGen(r) for r in self.replies[:len(msgs)]]


def test_judge_counts_failures_and_fills_rubric():
    lm = FakeLM(['{"score": 5}', "no idea", ('{"score', "length"), "Score: 1"])
    judge = Judge(lm, max_chars=50)
    res = judge.score(["q1", "q2", "q3", "q4"], ["a", "", "c", "x" * 500], progress=False)
    assert res.scores[0] == 5 and res.scores[3] == 1
    assert np.isnan(res.scores[1]) and np.isnan(res.scores[2])
    assert res.failures == {"no score": 1, "truncated": 1}
    assert res.n_valid == 2 and "2/4 valid" in res.report()
    assert "(empty reply)" in lm.seen[1] and "[...cut for the judge]" in lm.seen[3]
    assert "{prompt}" not in lm.seen[0] and '{"score": N}' in RUBRIC
    with pytest.raises(ValueError):
        judge.score(["a"], ["b"], method="vibes")
    assert clip_text("abc", 10) == "abc"
