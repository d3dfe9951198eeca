"""TRL/PEFT wrappers: data checks, chat rendering, GGUF markers, DPO with LoRA (logs, resume), SFT.

The model tests train SmolLM2-135M for a few steps on two tiny pairs with a short system prompt
and ``max_length=48``, so each stays around a minute on 2 CPU cores.
"""
from __future__ import annotations

import math

import pytest
import torch

from helpers.core.models import REGISTRY
from helpers.train import finetune

PAIRS = [{"prompt": "What is 2+3?", "chosen": "5", "rejected": "6"},
         {"prompt": "What is 4+4?", "chosen": "8", "rejected": "9"}]
SYSTEM = "Answer with a number."
FAST = dict(batch_size=2, max_length=48, system=SYSTEM, progress=False)

needs_smollm = pytest.mark.skipif(not REGISTRY["smollm2-135m"].available(),
                                  reason="the bundled smollm2-135m model is not installed")


def test_empty_or_malformed_data_raise_before_any_model_is_loaded(tmp_path):
    with pytest.raises(ValueError, match="pairs is empty"):
        finetune.dpo("no-such-model", [], output_dir=tmp_path)
    with pytest.raises(ValueError, match="examples is empty"):
        finetune.sft("no-such-model", [], output_dir=tmp_path)
    with pytest.raises(ValueError, match="eval_pairs is empty"):
        finetune.dpo("no-such-model", PAIRS, eval_pairs=[], output_dir=tmp_path)
    with pytest.raises(ValueError, match=r"pairs\[1\] lacks \['rejected'\]"):
        finetune.dpo("no-such-model", [PAIRS[0], {"prompt": "x", "chosen": "y"}], output_dir=tmp_path)
    with pytest.raises(TypeError, match="must be a string"):
        finetune.sft("no-such-model", [{"prompt": "x", "completion": 3}], output_dir=tmp_path)
    with pytest.raises(ValueError, match="beta"):
        finetune.dpo("no-such-model", PAIRS, beta=0, output_dir=tmp_path)
    assert not (tmp_path / finetune.RUN_FILE).exists()


def test_last_checkpoint_skips_incomplete_folders(tmp_path):
    assert finetune.last_checkpoint(tmp_path / "absent") is None
    for step, complete in ((2, True), (10, True), (12, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert finetune.last_checkpoint(tmp_path).endswith("checkpoint-10")  # by number, not by name order


@pytest.fixture(scope="module")
def trainable():
    if not REGISTRY["smollm2-135m"].available():
        pytest.skip("the bundled smollm2-135m model is not installed")
    return finetune.load_trainable("smollm2-135m", device="cpu")


@pytest.mark.models
@needs_smollm
def test_load_trainable_clears_the_gguf_markers(trainable):
    model, tok = trainable
    assert getattr(model, "hf_quantizer", None) is None
    assert getattr(model.config, "quantization_config", None) is None
    assert trainable.peft_config.r == 16 and trainable.peft_config.target_modules == "all-linear"
    assert tok.pad_token is not None


@pytest.mark.models
@needs_smollm
def test_prompts_render_as_lm_render_does_and_replies_end_the_turn(trainable, tmp_path):
    from helpers.lm.generation import LM

    lm = LM(trainable.model, trainable.tokenizer, "smollm2-135m")
    rows = finetune.preference_rows(trainable.tokenizer, PAIRS, system=SYSTEM)
    assert [r["prompt"] for r in rows] == [lm.render(p["prompt"], system=SYSTEM) for p in PAIRS]
    assert rows[0]["chosen"] == "5<|im_end|>" and rows[0]["rejected"] == "6<|im_end|>"
    assert finetune.completion_rows(trainable.tokenizer, [{"prompt": "Hi", "completion": "Hello!"}])[0] == {
        "prompt": lm.render("Hi"), "completion": "Hello!<|im_end|>"}
    with pytest.raises(ValueError, match="max_length=8 is too short"):
        finetune.dpo(trainable, PAIRS, max_steps=1, batch_size=2, max_length=8, progress=False,
                     output_dir=tmp_path)


@pytest.mark.models
@needs_smollm
def test_dpo_with_lora_logs_rewards_and_resumes_from_its_checkpoint(tmp_path):
    run = dict(FAST, max_steps=3, save_every=1, output_dir=tmp_path)
    first = finetune.dpo("smollm2-135m", PAIRS, stop_after=2, **run)  # "killed" after step 2, before saving it
    assert first.steps == first.global_step == 2 and first.resumed_from is None
    assert finetune.last_checkpoint(tmp_path).endswith("checkpoint-1")
    assert first.losses[0] == pytest.approx(math.log(2), abs=1e-4)  # the policy starts as the reference
    steps = [e for e in first.log_history if "loss" in e]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                "logps/rejected"):
        assert all(key in e for e in steps), key
    assert first.tokens > 0 and first.tokens_per_second > 0 and first.peak_memory_mb > 0
    assert first.info["trainable_parameters"] < 0.1 * first.info["total_parameters"]
    assert "rewards/margins" in first.summary()

    second = finetune.dpo("smollm2-135m", PAIRS, **run)
    assert second.resumed_from.endswith("checkpoint-1")
    assert second.steps == 2 and second.global_step == 3
    assert [e["step"] for e in second.log_history if "loss" in e] == [1, 2, 3]
    # had the adapter not been restored, step 2 would start again from the reference: loss log 2
    assert second.losses[1] != pytest.approx(math.log(2), abs=1e-4)
    assert second.losses[1] == pytest.approx(first.losses[1], rel=1e-4)  # the same step 2 as before the "kill"
    reply = second.lm().chat(["What is 2+3?"], system=SYSTEM, max_new_tokens=4, temperature=0, progress=False)[0]
    assert reply.new_tokens > 0

    with pytest.raises(ValueError, match="other settings.*beta"):
        finetune.dpo("smollm2-135m", PAIRS, beta=0.5, **run)


@pytest.mark.models
@needs_smollm
def test_a_later_run_reuses_the_reference_log_probs_of_pairs_it_has_seen(tmp_path):
    pairs = [{"prompt": "What is 3+3?", "chosen": "6", "rejected": "7"},  # pairs no other test trains on
             {"prompt": "What is 5+2?", "chosen": "7", "rejected": "8"}]
    extra = {"prompt": "What is 6+1?", "chosen": "7", "rejected": "5"}
    run = dict(FAST, max_steps=1, save_every=0)
    before = finetune.ref_logps_cache_info()
    first = finetune.dpo("smollm2-135m", pairs, output_dir=tmp_path / "a", **run)
    mid = finetune.ref_logps_cache_info()
    assert mid["computed"] - before["computed"] == 2 and mid["reused"] == before["reused"]
    # a second run with one new pair, in another order: two reused, one computed, each in its own row
    second = finetune.dpo("smollm2-135m", [extra] + pairs[::-1], output_dir=tmp_path / "b", **dict(run, batch_size=3))
    after = finetune.ref_logps_cache_info()
    assert after["computed"] - mid["computed"] == 1 and after["reused"] - mid["reused"] == 2
    # the policy starts as the reference, so a first loss of log 2 means every pair got its own reference values
    assert first.losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert second.losses[0] == pytest.approx(math.log(2), abs=1e-4)
    assert second.log_history[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-4)


@pytest.mark.models
@needs_smollm
def test_rerunning_a_finished_run_loads_it_without_another_step(tmp_path):
    # 3 pairs in batches of 2: 2 steps per epoch, so step 3 ends mid-epoch, where transformers' train()
    # would take a 4th step before checking max_steps
    pairs = PAIRS + [{"prompt": "What is 1+1?", "chosen": "2", "rejected": "3"}]
    run = dict(FAST, max_steps=3, save_every=3, output_dir=tmp_path)
    first = finetune.dpo("smollm2-135m", pairs, **run)
    assert first.steps == first.global_step == 3
    again = finetune.dpo("smollm2-135m", pairs, **run)
    assert again.resumed_from.endswith("checkpoint-3")
    assert again.steps == 0 and again.global_step == 3
    assert [e["step"] for e in again.log_history if "loss" in e] == [1, 2, 3]
    a, b = first.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.models
@needs_smollm
def test_sft_runs_two_steps_on_the_completion(tmp_path):
    examples = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in PAIRS]
    report = finetune.sft("smollm2-135m", examples, max_steps=2, output_dir=tmp_path, **FAST)
    assert report.steps == 2 and len(report.losses) == 2 and all(math.isfinite(x) for x in report.losses)
    assert report.method == "sft" and report.info["merged"] is True
    assert finetune.last_checkpoint(tmp_path).endswith("checkpoint-2")
    assert report.lm().ask("What is 2+3?", system=SYSTEM, max_new_tokens=4)
