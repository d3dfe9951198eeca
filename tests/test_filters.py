"""Unit tests for helpers.text.filters (no models needed)."""
from __future__ import annotations

import pytest

from helpers.core.textutil import latin_ratio
from helpers.text.filters import (Filter, PhraseMatcher, apply_filters, default_filters, frequent_openings,
                             overused_phrase_filter, repetition_filter, script_filter)

GOOD = ("Photosynthesis is how plants turn light, water and carbon dioxide into sugar and oxygen. "
        "It happens in the chloroplasts of leaf cells.")


def row(response, prompt="Explain photosynthesis in two sentences."):
    return {"prompt": prompt, "response": response}


def removed_by(response, prompt="Explain photosynthesis in two sentences.", filters=None):
    return apply_filters([row(response, prompt)], filters).removed_by[0]


def test_good_row_is_kept():
    assert removed_by(GOOD) is None


@pytest.mark.parametrize("text,expected", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("...", "empty"),
    (None, "empty"),
    ("Yes.", "too_short"),
    ("word " * 3000, "too_long"),
    ("Фотосинтез — это процесс, при котором растения превращают свет в энергию.", "non_latin"),
    ("Here is the code:\n```python\nprint('hi')\n", "unclosed_code"),
    ('{"answer": "the capital is', "broken_json"),
    ("\n".join(["Plants make sugar from light."] * 8), "repetition"),
    ("I'm sorry, but I cannot help with that request about plants.", "overused_phrase"),
    ("As an AI language model, I think photosynthesis is how plants make food.", "overused_phrase"),
    ("Great question!!! Plants are amazing!!! They use light!!!", "overused_phrase"),
])
def test_each_rule_catches_its_case(text, expected):
    assert removed_by(text) == expected


def test_prompt_echo():
    p = "Explain photosynthesis in two sentences please."
    assert removed_by(p, prompt=p) == "prompt_echo"


def test_symbols():
    assert removed_by("#### ---- **** ==== |||| >>>> <<<< @@@@ %%%% ^^^^ and some plain words here") == "symbols"


def test_repetition_trigram():
    text = "the cat sat " * 20 + "on a mat with many other words around it to pad the text out a bit"
    assert repetition_filter().check("", text) is not None
    assert repetition_filter().check("", GOOD * 2) is None


def test_script_filter_accepts_french_and_checks_prompt():
    f = script_filter()
    assert f.check("", "La photosynthèse transforme la lumière en énergie chimique.") is None
    assert f.check("用中文解释光合作用", GOOD) is not None
    assert latin_ratio("12345 !!") != latin_ratio("12345 !!")  # nan when there are no letters


def test_counts_sum_to_removed_and_flagged_is_independent():
    rows = [row(GOOD), row(""), row("I apologize."), row("I apologize, " + GOOD)]
    rep = apply_filters(rows)
    assert rep.keep == [True, False, False, False]
    assert sum(rep.counts().values()) == len(rows) - rep.n_kept
    # "I apologize." is removed as too short but the phrase rule flags it too
    assert 2 in rep.flagged["overused_phrase"] and rep.removed_by[2] == "too_short"
    table = rep.table()
    assert table.iloc[-1]["removed"] == 3
    assert rep.examples("overused_phrase")[0]["reason"].startswith("apology")
    assert len(rep.kept_rows()) == 1 and len(rep.removed_rows()) == 3
    assert "kept 1/4" in rep.summary()


def test_broken_filter_is_counted_not_raised():
    def boom(prompt, response):
        raise RuntimeError("bug")

    rep = apply_filters([row(GOOD)], [Filter("boom", boom)])
    assert rep.removed_by == ["filter_error"] and rep.errors["boom"] == 1
    assert "filter_error" in set(rep.table()["filter"])


def test_duplicate_names_rejected():
    with pytest.raises(ValueError):
        apply_filters([row(GOOD)], [overused_phrase_filter(), overused_phrase_filter()])


def test_missing_keys_and_non_strings():
    rep = apply_filters([{"prompt": 3}, {"response": 12345}, {}])
    assert rep.removed_by == ["empty", "too_short", "empty"]


def test_phrase_matcher_families_and_openings():
    m = PhraseMatcher()
    assert m.find("My knowledge cutoff is 2021.")[0] == "knowledge_cutoff"
    assert m.find(GOOD) is None
    counts = m.family_counts(["I'm sorry. As an AI, no.", "I am sorry", GOOD])
    assert counts["apology"] == 2 and counts["as_an_ai"] == 1
    assert frequent_openings(["Sure, here is a", "Sure, here is b", "No"], n_words=3)[0] == ("Sure, here is", 2)


def test_default_chain_names_unique():
    names = [f.name for f in default_filters()]
    assert len(names) == len(set(names))


def test_code_is_not_shouting_or_symbols():
    code = "Use this:\n```python\nif a != b and not (c or d): print('!!!!!!')\n```\nIt prints when they differ."
    assert removed_by(code) is None
    assert removed_by('{"answer": "Paris is the capital of France"}') is None
    assert removed_by("[The camera pans across the office. Everyone is at their desks.]") is None
    assert removed_by('[{"a": 1}, {"b": ') == "broken_json"


def test_cut_off_rule_reads_the_generators_finish_reason():
    rows = [{"prompt": "p", "response": "A complete and fine reply here.", "finish_reason": "stop"},
            {"prompt": "p", "response": "A reply that ran into the token limit and ends in the", "finish_reason": "length"},
            {"prompt": "p", "response": "Real data has no finish reason at all."}]
    rep = apply_filters(rows)
    assert rep.removed_by == [None, "cut_off", None]
    assert "hit the token limit" in rep.reasons[1]
    assert [f.name for f in default_filters()][:2] == ["empty", "cut_off"]
    # a cut-off reply inside an open code fence is charged to cut_off (the cause), not unclosed_code
    rep = apply_filters([{"prompt": "p", "response": "Here:\n```python\ndef f(x):\n    return", "finish_reason": "length"}])
    assert rep.removed_by == ["cut_off"] and rep.flagged["unclosed_code"] == [0]
