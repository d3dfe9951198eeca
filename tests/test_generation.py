import math

import numpy as np
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


def test_extract_json_ignores_text_around_the_value():
    assert extract_json('The answer is {"a": 1} as requested. Anything else?') == {"a": 1}
    assert extract_json('Sure, here it is:\n[{"q": "x"}]\nDone.') == [{"q": "x"}]
    assert extract_json('Use {curly} and [square] brackets: {"ok": true} bye') == {"ok": True}


def test_extract_json_takes_the_first_of_two_values():
    assert extract_json('{"a": 1} {"b": 2}') == {"a": 1}
    assert extract_json('First {"a": 1}, then {"b": 2}.') == {"a": 1}
    assert extract_json('[1, 2] and {"b": 2}') == [1, 2]


def test_extract_json_braces_inside_strings():
    text = 'Here: {"code": "if (x) { y(); }", "close": "}}]", "q": "say \\"}\\" now", "n": {"m": "{"}} ok'
    assert extract_json(text) == {"code": "if (x) { y(); }", "close": "}}]", "q": 'say "}" now', "n": {"m": "{"}}


def test_parse_json_replies_counts_broken_json_as_failures():
    texts = ['{"a": 1,}', 'x {"a": } y', '{"a": 1', "{'a': 1}", '{"a": 2}']
    batch = parse_json_replies(texts)
    assert batch.values == [{"a": 2}]
    assert batch.failures == {"invalid json": 3, "unbalanced": 1}
    assert [r.error for r in batch.results] == ["invalid json", "invalid json", "unbalanced", "invalid json", None]


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
    ok, bad = lm.perplexity([
        "The children walked to school together on a sunny morning and talked about their weekend.",
        "morning weekend the sunny school on talked children their and walked a to together about",
    ])
    assert ok < bad


@pytest.mark.models
def test_perplexity_of_greedy_text_is_lower_than_of_its_words_shuffled(lm):
    import random

    text = lm.ask("Write two sentences about a lighthouse keeper.", max_new_tokens=40)
    words = text.split()
    random.Random(0).shuffle(words)
    assert len(words) > 10 and words != text.split()
    greedy, shuffled = lm.perplexity([text, " ".join(words)])
    assert greedy < shuffled


def _nll_by_hand(lm, text):
    """Mean next-token negative log-likelihood of ``text`` alone (no padding), straight from the logits."""
    import torch

    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        logp = torch.log_softmax(lm.model(input_ids=ids).logits[0, :-1].float(), -1)
    return -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].mean().item()


@pytest.mark.models
def test_perplexity_is_exp_of_mean_token_nll(lm):
    texts = ["The cat sat on the mat.",
             "A much longer text, so that the short one above is left-padded in the same batch of two."]
    got = lm.perplexity(texts + ["Hi"], batch_size=2)
    assert got[:2] == pytest.approx([math.exp(_nll_by_hand(lm, t)) for t in texts], rel=1e-4)
    assert len(lm.tokenizer("Hi", add_special_tokens=False)["input_ids"]) == 1 and math.isnan(got[2])


@pytest.mark.models
def test_next_token_logprobs_left_pads_and_keeps_input_order(lm):
    import torch

    prompts = ["The capital of France is", "One, two, three, four, five, six, seven,", "Hello"]
    cols = [lm.token_ids(" Paris")[0], lm.token_ids(" eight")[0], lm.token_ids(",")[0]]
    got = lm.next_token_logprobs(prompts, cols, batch_size=2)
    full = lm.next_token_logprobs(prompts, batch_size=2)
    assert got.shape == (3, 3) and full.shape[0] == 3 and full.shape[1] >= len(lm.tokenizer)
    for r, p in enumerate(prompts):
        with torch.inference_mode():
            alone = torch.log_softmax(lm.model(input_ids=torch.tensor([lm.token_ids(p)])).logits[0, -1].float(), -1)
        np.testing.assert_allclose(full[r], alone.numpy(), atol=1e-4)
        np.testing.assert_allclose(got[r], alone[cols].numpy(), atol=1e-4)
    assert got[0, 0] > math.log(0.3) and got[1, 1] > math.log(0.3)  # " Paris" and " eight" are likely


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
