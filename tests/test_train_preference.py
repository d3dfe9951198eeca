"""Preference pairs from verifier verdicts, selection, and the implicit-reward evaluation (no training here).

The log-probability tests run a tiny randomly initialised Llama (a few hundred thousand weights)
with the bundled SmolLM2 tokenizer, so they take a second or two.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.core.models import REGISTRY
from helpers.train import preference as pf

SHAPE = {"answer": int}


def verify(item, text):
    v = pf.json_reply_verdict(text, SHAPE)
    right = v.shape and v.value["answer"] == item["answer"]
    return ((4 if right else 3) if v.strict else (2 if right else 1) if v.shape else 0), v.reason


# ------------------------------------------------------------------------------ items and split
def test_arithmetic_items_are_distinct_reproducible_and_right():
    items = pf.arithmetic_items(30, seed=1)
    assert items == pf.arithmetic_items(30, seed=1)
    assert len({it["question"] for it in items}) == 30
    for it in items:
        a, op, b = it["question"].split()
        assert it["answer"] == eval(f"{a}{op}{b}") >= 0  # noqa: S307 - two small ints
        assert it["question"] in it["prompt"] and '{"answer": <integer>}' in it["prompt"]
    with pytest.raises(ValueError, match="distinct"):
        pf.arithmetic_items(500, max_operand=3)


def test_split_items_holds_out_whole_prompts():
    train, test = pf.split_items(list(range(10)), 0.3, seed=0)
    assert len(test) == 3 and sorted(train + test) == list(range(10))
    assert pf.split_items(list(range(10)), 0.3, seed=0) == (train, test)
    assert len(pf.split_items([1, 2], 0.01)[1]) == 1  # at least one held out
    with pytest.raises(ValueError):
        pf.split_items([1], 1.5)


# ------------------------------------------------------------------------------ the JSON verifier
@pytest.mark.parametrize("text,strict,shape,reason", [
    ('{"answer": 12}', True, True, "ok"),
    ('  {"answer": 12}\n', True, True, "ok"),
    ('```json\n{"answer": 12}\n```', False, True, "embedded"),
    ('Here it is: {"answer": 12} Hope it helps.', False, True, "embedded"),
    ('{"answer": "12"}', False, False, "wrong type"),
    ('{"answer": true}', False, False, "wrong type"),
    ('{"answer": 12, "type": "integer"}', False, False, "wrong keys"),
    ('[12]', False, False, "not an object"),
    ('The answer is 12.', False, False, "no json"),
    ('', False, False, "no json"),
])
def test_json_reply_verdict(text, strict, shape, reason):
    v = pf.json_reply_verdict(text, SHAPE)
    assert (v.strict, v.shape, v.reason) == (strict, shape, reason)


# ------------------------------------------------------------------------------ pairs
ITEMS = [{"id": "a", "prompt": "What is 2 + 3?", "answer": 5}, {"id": "b", "prompt": "What is 4 + 4?", "answer": 8},
         {"id": "c", "prompt": "What is 1 + 1?", "answer": 2}]
CANDS = [['{"answer": 5}', '{"answer": 6}', "five", '```json\n{"answer": 5}\n```'],
         ["eight", "no idea"],  # all score 0: tied
         ['{"answer": 2}', '{"answer": 2}']]  # identical texts: too few distinct


def test_pairs_from_scores_best_worst_and_all_count_every_prompt():
    scored = pf.score_candidates(ITEMS, CANDS, verify)
    assert scored[0].scores == [4, 3, 0, 2]
    pairs, stats = pf.pairs_from_scores(scored, source="maths")
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [('{"answer": 5}', "five")]
    assert pairs[0]["margin"] == 4 and pairs[0]["source"] == "maths" and pairs[0]["prompt_id"] == "a"
    assert stats.made == 1 and stats.skipped == {"tied": 1, "too few": 1} and "1 pairs from 1 of 3" in str(stats)
    every, _ = pf.pairs_from_scores(scored, source="maths", mode="all")
    assert len(every) == 6 and all(p["chosen_score"] > p["rejected_score"] for p in every)
    capped, st = pf.pairs_from_scores(scored, source="maths", mode="all", max_per_prompt=2, seed=0)
    assert len(capped) == 2 == st.made
    wide, _ = pf.pairs_from_scores(scored, source="maths", mode="all", min_margin=2)
    assert {(p["chosen_score"], p["rejected_score"]) for p in wide} == {(4, 0), (3, 0)}
    with pytest.raises(ValueError, match="mode"):
        pf.pairs_from_scores(scored, source="x", mode="some")


def test_pairs_from_rewards_pairs_the_best_with_the_worst():
    pairs, stats = pf.pairs_from_rewards(ITEMS[:2], [["a", "b", "c"], ["d", "e"]], [[0.1, 0.9, -1.0], [0.2, 0.2]])
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("b", "c")]
    assert pairs[0]["margin"] == pytest.approx(1.9) and pairs[0]["source"] == "reward model"
    assert stats.skipped == {"tied": 1}


def test_select_pairs_keeps_verified_best_margin_pairs():
    scored = pf.score_candidates(ITEMS, CANDS, verify)
    every, _ = pf.pairs_from_scores(scored, source="maths", mode="all")
    sel = pf.select_pairs(every, min_chosen_score=3, per_prompt=1)
    assert len(sel) == 1 and sel[0]["chosen"] == '{"answer": 5}' and sel[0]["rejected"] == "five"
    two = pf.select_pairs(every, min_chosen_score=3, per_prompt=2)
    assert [p["margin"] for p in two] == [4, 3]
    assert len(pf.select_pairs(every, per_prompt=None, top_fraction=0.5)) == 3
    assert pf.select_pairs(every, min_chosen_score=5) == []
    assert pf.count_by(every) == {"maths": 6}


def test_empty_or_all_rejected_rounds_stop_with_a_clear_message():
    with pytest.raises(ValueError, match="no preference pairs"):
        pf.check_pairs([])
    with pytest.raises(ValueError, match="no preference pairs"):
        pf.check_pairs(pf.pairs_from_scores(pf.score_candidates(ITEMS[1:2], CANDS[1:2], verify), source="m")[0])
    with pytest.raises(ValueError, match="same text"):
        pf.check_pairs([{"prompt": "p", "chosen": "x", "rejected": "x "}])
    assert pf.check_pairs([{"prompt": "p", "chosen": "x", "rejected": "y"}])[0]["chosen"] == "x"


def test_score_candidates_checks_lengths():
    with pytest.raises(ValueError, match="candidate lists"):
        pf.score_candidates(ITEMS, CANDS[:2], verify)
    with pytest.raises(ValueError, match="origins"):
        pf.score_candidates(ITEMS[:1], CANDS[:1], verify, origins=[["plain"]])


# ------------------------------------------------------------------------------ log-probs and implicit reward
@pytest.fixture(scope="module")
def tiny_lm():
    if not REGISTRY["smollm2-135m"].available():
        pytest.skip("the bundled smollm2-135m tokenizer is not installed")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers.core.models import load_lm_tokenizer

    tok = load_lm_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval(), tok


PAIRS = [{"prompt": "What is 2 + 3?", "chosen": '{"answer": 5}', "rejected": "It is six, I think.", "source": "maths"},
         {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Blue is a colour of the sky.", "source": "rm"}]


def test_sequence_logps_sum_the_reply_tokens_only(tiny_lm):
    import torch

    from helpers.train.finetune import render_prompt, render_reply

    model, tok = tiny_lm
    got = pf.sequence_logps(model, tok, [p["prompt"] for p in PAIRS], [p["chosen"] for p in PAIRS], batch_size=2)
    for p, value in zip(PAIRS, got):  # one sequence at a time, no padding
        p_ids = tok(render_prompt(tok, p["prompt"]), add_special_tokens=False)["input_ids"]
        r_ids = tok(render_reply(tok, p["prompt"], p["chosen"]), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + r_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        want = sum(float(logp[t - 1, ids[0, t]]) for t in range(len(p_ids), ids.shape[1]))
        assert value == pytest.approx(want, abs=1e-3)
    assert (got < 0).all()
    one = pf.sequence_logps(model, tok, [PAIRS[1]["prompt"]], [PAIRS[1]["chosen"]])
    assert one[0] == pytest.approx(got[1], abs=1e-3)  # padding in a batch changes nothing


def test_rendered_lengths_count_what_training_sees(tiny_lm):
    from helpers.train.finetune import render_prompt, render_reply

    _, tok = tiny_lm
    prompts, replies = [p["prompt"] for p in PAIRS], [p["chosen"] for p in PAIRS]
    got = pf.rendered_lengths(tok, prompts, replies)
    want = [len(tok(render_prompt(tok, p) + render_reply(tok, p, r), add_special_tokens=False)["input_ids"])
            for p, r in zip(prompts, replies)]
    assert np.abs(got - np.array(want)).max() <= 1  # separate tokenization may split at the join differently
    assert (pf.rendered_lengths(tok, prompts, [r + " and more words" for r in replies]) > got).all()
    with pytest.raises(ValueError, match="replies"):
        pf.rendered_lengths(tok, prompts, replies[:1])


def test_implicit_reward_eval_is_zero_against_itself_and_signed_otherwise(tiny_lm):
    import copy

    import torch

    model, tok = tiny_lm
    ev = pf.implicit_reward_eval(model, model, tok, PAIRS, beta=0.1)
    assert np.allclose(ev.chosen_rewards, 0) and np.allclose(ev.margins, 0)
    assert ev.accuracy == 0.5 and set(ev.by_source()) == {"maths", "rm"}
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ev2 = pf.implicit_reward_eval(other, model, tok, PAIRS, beta=0.5)
    assert np.allclose(ev2.chosen_rewards, 0.5 * (ev2.policy_chosen - ev2.ref_chosen))
    reused = pf.implicit_reward_eval(other, None, tok, PAIRS, beta=0.5, ref_logps=(ev2.ref_chosen, ev2.ref_rejected))
    assert np.allclose(reused.margins, ev2.margins)
    with pytest.raises(ValueError, match="no preference pairs"):
        pf.implicit_reward_eval(model, model, tok, [])
