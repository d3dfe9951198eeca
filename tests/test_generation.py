import math

import pytest

from helpers.lm.generation import LM, as_messages, extract_json, parse_json_replies


def test_extract_json_variants():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure! ```json\n{"a": [1, 2]}\n``` hope it helps') == {"a": [1, 2]}
    assert extract_json('Here: {"a": "x}y", "b": {"c": 2}} and more {') == {"a": "x}y", "b": {"c": 2}}
    assert extract_json("[1, 2, 3]") == [1, 2, 3]
    for bad, reason in (("", "empty"), ("   ", "empty"), ("no braces here", "no json"),
                        ('{"a": 1', "unbalanced"), ("{a: 1}", "invalid json")):
        with pytest.raises(ValueError, match=reason):
            extract_json(bad)


def test_parse_json_replies_counts_reasons():
    texts = ['{"q": "x", "a": "y"}', '{"q": "x"}', "nothing", "", "[1]", '{"q": 1, "a": 2']
    batch = parse_json_replies(texts, required_keys=["q", "a"], truncated=[False] * 5 + [True])
    assert len(batch.values) == 1 and batch.values[0] == {"q": "x", "a": "y"}
    assert batch.failures == {"missing key": 1, "no json": 1, "empty": 1, "not an object": 1, "truncated": 1}
    assert math.isclose(batch.failure_rate, 5 / 6)
    assert "1/6 replies parsed" in batch.report()


def test_as_messages():
    assert as_messages("hi") == [{"role": "user", "content": "hi"}]
    assert as_messages("hi", system="s")[0] == {"role": "system", "content": "s"}
    with pytest.raises(ValueError):
        as_messages([{"content": "no role"}])


@pytest.fixture(scope="module")
def lm():
    return LM.load("smollm2-135m", device="cpu")


@pytest.mark.models
def test_chat_keeps_input_order_and_counts(lm):
    prompts = ["Say the word apple.", "Write a long story about a dragon who learns to cook, with many details.", "Hi"]
    gens = lm.chat(prompts, max_new_tokens=12, temperature=0, progress=False, batch_size=2)
    assert len(gens) == 3
    assert gens[1].finish_reason == "length" and gens[1].new_tokens == 12
    assert all(g.prompt_tokens > 0 for g in gens)
    assert lm.last_stats.new_tokens == sum(g.new_tokens for g in gens)
    single = [lm.chat([p], max_new_tokens=12, temperature=0, progress=False)[0].text for p in prompts]
    assert [g.text for g in gens] == single, "left-padded batches must give the same greedy text as one at a time"


@pytest.mark.models
def test_seed_makes_sampling_reproducible(lm):
    kw = dict(max_new_tokens=16, temperature=1.0, progress=False)
    a = [g.text for g in lm.chat(["Name an animal."] * 4, seed=5, **kw)]
    b = [g.text for g in lm.chat(["Name an animal."] * 4, seed=5, **kw)]
    assert a == b


@pytest.mark.models
def test_perplexity_ranks_fluent_text_lower(lm):
    ok, bad, short = lm.perplexity([
        "The children walked to school together on a sunny morning and talked about their weekend.",
        "morning weekend the sunny school on talked children their and walked a to together about",
        "Hi",
    ])
    assert ok < bad
    assert math.isnan(short) or short > 0


@pytest.mark.models
def test_prefix_prefills_the_reply(lm):
    g = lm.chat(["Describe a cat as a JSON object."], prefix="{", max_new_tokens=6, temperature=0, progress=False)[0]
    assert g.text.startswith("{") and len(g.text) > 1


@pytest.mark.models
def test_stop_when_ends_each_row_early_and_alone(lm):
    prompts = ["Write a long story about a dragon who learns to cook, with many details.",
               "Write a long poem about the sea, with many verses."]
    full = lm.chat(prompts, max_new_tokens=40, temperature=0, progress=False)
    assert all(g.finish_reason == "length" for g in full)
    # stop the first reply at its first comma; the second runs on untouched
    first_comma = lambda text: "," in text  # noqa: E731
    calls = []
    gens = lm.chat(prompts, max_new_tokens=40, temperature=0, progress=False,
                   stop_when=lambda t: calls.append(t) or (first_comma(t) and t.startswith(full[0].text[:10])))
    assert gens[0].finish_reason == "stop" and gens[0].new_tokens < 40
    assert gens[0].text.count(",") == 1 and full[0].text.startswith(gens[0].text)
    assert gens[1].text == full[1].text and gens[1].finish_reason == full[1].finish_reason
    assert calls, "the test was checked during generation"
