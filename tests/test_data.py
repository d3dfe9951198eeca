import pytest

from helpers.core import data


@pytest.mark.models
def test_sharegpt_recovers_truncated_file():
    items, rep = data.load_sharegpt()
    assert rep.recovered == len(items) > 17000
    pairs = data.sharegpt_pairs(50, seed=1, max_chars=500, english_only=True)
    assert len(pairs) == 50 and all(p["prompt"] and p["response"] for p in pairs)
    assert all(len(p["prompt"]) <= 500 and data.looks_english(p["prompt"]) for p in pairs)
    assert data.sharegpt_prompts(5, seed=1) == data.sharegpt_prompts(5, seed=1)


def test_looks_english():
    assert data.looks_english("Hello there")
    assert not data.looks_english("Привет, как дела")
    assert not data.looks_english("1234 !!")


@pytest.mark.models
def test_humaneval():
    probs = data.load_humaneval()
    assert len(probs) == 164 and "entry_point" in probs["HumanEval/0"]


def test_librivox_clips():
    clips = data.librivox_clips()
    assert len(clips) >= 10
    assert all("<s>" not in c["text"] and c["text"] for c in clips)
