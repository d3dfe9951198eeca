"""Unit tests for helpers.lm.judge (fake LMs; no models needed)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.lm.generation import LM
from helpers.lm.judge import RUBRIC, Judge, clip_text, parse_score
from tests.fakes import ScriptedLM


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


def test_judge_counts_failures_and_fills_rubric():
    lm = ScriptedLM(['{"score": 5}', "no idea", ('{"score', "length"), "Score: 1"])
    judge = Judge(lm, max_chars=50)
    res = judge.score(["q1", "q2", "q3", "q4"], ["a", "", "c", "x" * 500], progress=False)
    assert res.scores[0] == 5 and res.scores[3] == 1
    assert np.isnan(res.scores[1]) and np.isnan(res.scores[2])
    assert res.failures == {"no score": 1, "truncated": 1}
    assert res.n_valid == 2 and "2/4 valid" in res.report()
    seen = lm.last_user_texts()
    assert "(empty reply)" in seen[1] and "[...cut for the judge]" in seen[3]
    assert "{prompt}" not in seen[0] and '{"score": N}' in RUBRIC
    with pytest.raises(ValueError):
        judge.score(["a"], ["b"], method="vibes")
    assert clip_text("abc", 10) == "abc"


# --------------------------------------------------------------------------- logprobs mode
class ByteTokenizer:
    """One token per byte; 0 is padding."""

    pad_token_id = 0

    def encode(self, text, add_special_tokens=False):
        return list(text.encode())

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": self.encode(text)}


class SplitDigitTokenizer(ByteTokenizer):
    def encode(self, text, add_special_tokens=False):
        return super().encode(text) * 2  # every "digit" becomes two tokens


# next-token distributions the fake judge gives, keyed by a word in the reply
DISTRIBUTIONS = {"GOOD": {4: 0.2, 5: 0.6}, "BAD": {1: 0.7, 2: 0.2}, "MEH": {3: 1.0}}


class FakeJudgeModel:
    """Reads the unpadded sequence and returns fixed next-token probabilities at the last position."""

    def __init__(self, accepts_logits_to_keep=True):
        self.accepts = accepts_logits_to_keep
        self.batches = []

    def __call__(self, input_ids, attention_mask, position_ids, **kw):
        import torch

        if "logits_to_keep" in kw and not self.accepts:
            raise TypeError("unexpected keyword argument 'logits_to_keep'")
        self.batches.append(input_ids.shape)
        # left padding: real tokens sit at the end, positions count from 0 at the first real token
        assert (position_ids.masked_fill(attention_mask == 0, 10**6).min(-1).values == 0).all()
        assert (input_ids[attention_mask == 0] == 0).all()
        assert attention_mask[:, -1].all(), "every row must end in a real token (left padding)"
        logits = torch.full((input_ids.shape[0], input_ids.shape[1], 256), -1e4)
        for r in range(input_ids.shape[0]):
            text = bytes(input_ids[r][attention_mask[r] == 1].tolist()).decode()
            assert text.endswith('{"score": '), text  # the JSON prefix is forced
            probs = next(d for k, d in DISTRIBUTIONS.items() if k in text)
            rest = 1 - sum(probs.values())
            for digit, p in probs.items():
                logits[r, -1, ord(str(digit))] = np.log(p)
            if rest > 0:
                logits[r, -1, ord("x")] = np.log(rest)
        return type("Out", (), {"logits": logits})()


class FakeJudgeLM:
    """The real LM's tokenising and left-padded scoring code, on a fake model and tokenizer."""

    default_batch_size = 4
    token_ids = LM.token_ids
    next_token_logprobs = LM.next_token_logprobs

    def __init__(self, model, tokenizer=None):
        import torch

        self.model, self.tokenizer = model, tokenizer or ByteTokenizer()
        self.device = torch.device("cpu")

    def render(self, msg):
        return f"<user>{msg}<assistant>"


@pytest.mark.parametrize("accepts", [True, False])
def test_logprobs_judge_expected_score_and_digit_mass(accepts):
    model = FakeJudgeModel(accepts_logits_to_keep=accepts)
    judge = Judge(FakeJudgeLM(model))
    # different lengths, so batches are padded and sorted; results must come back in input order
    replies = ["GOOD", "BAD reply that is a good deal longer than the others", "MEH", "GOOD, longer", "BAD"]
    res = judge.score(["q"] * 5, replies, method="logprobs", batch_size=2, progress=False)
    expected = {"GOOD": (4 * 0.2 + 5 * 0.6) / 0.8, "BAD": (1 * 0.7 + 2 * 0.2) / 0.9, "MEH": 3.0}
    mass = {"GOOD": 0.8, "BAD": 0.9, "MEH": 1.0}
    keys = ["GOOD", "BAD", "MEH", "GOOD", "BAD"]
    assert res.scores == pytest.approx([expected[k] for k in keys], abs=1e-4)
    assert res.digit_mass == pytest.approx([mass[k] for k in keys], abs=1e-4)
    assert res.method == "logprobs" and res.n_valid == 5 and res.failures == {} and res.raw == [""] * 5
    assert len(model.batches) == 3 and all(shape[0] <= 2 for shape in model.batches)


def test_logprobs_judge_refuses_a_tokenizer_that_splits_digits():
    judge = Judge(FakeJudgeLM(FakeJudgeModel(), SplitDigitTokenizer()))
    with pytest.raises(RuntimeError, match="use method='generate'"):
        judge.score(["q"], ["GOOD"], method="logprobs", progress=False)
