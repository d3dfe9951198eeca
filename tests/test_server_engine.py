"""The server engine against a real llama.cpp server (xllamacpp) on loopback, with the bundled SmolLM2 GGUF.

No mock stands in for the server in the tests that claim the backend works; only the failure
test points the client at a port where nothing listens.
"""
import socket

import pytest

from helpers.core.models import REGISTRY
from helpers.lm.generation import LM
from helpers.lm.server import LlamaCppServer, ServerEngine

pytestmark = pytest.mark.models

needs_smollm = pytest.mark.skipif(not REGISTRY["smollm2-135m"].available(),
                                  reason="the bundled SmolLM2 package is not installed")


@pytest.fixture(scope="module")
def llama():
    pytest.importorskip("xllamacpp")
    if not REGISTRY["smollm2-135m"].available():
        pytest.skip("the bundled SmolLM2 package is not installed")
    lm = LM.load("smollm2-135m", engine="llama.cpp", slots=4)
    yield lm
    lm.close()


@pytest.fixture(scope="module")
def local():
    return LM.load("smollm2-135m", device="cpu")


PROMPTS = ["Say the word apple.", "Write a long story about a dragon who learns to cook, with many details.", "Hi",
           "List three colours of the rainbow, separated by commas, and nothing else."]


@needs_smollm
def test_replies_come_back_in_input_order_with_counts(llama):
    gens = llama.chat(PROMPTS, max_new_tokens=12, temperature=0, progress=False)
    assert len(gens) == len(PROMPTS)
    # the server's own prompt count equals the local tokenizer's count of the same rendered prompt:
    # same chat template, same tokens, and each reply sits at its prompt's index
    assert [g.prompt_tokens for g in gens] == [llama.count_tokens(llama.render(p)) for p in PROMPTS]
    assert gens[1].finish_reason == "length" and gens[1].new_tokens == 12
    assert all(0 < g.new_tokens <= 12 for g in gens)
    stats = llama.last_stats
    assert stats.n == 4 and stats.failed == 0
    assert stats.new_tokens == sum(g.new_tokens for g in gens)
    assert stats.truncated == sum(g.finish_reason == "length" for g in gens)
    assert "llama.cpp server" in llama.backend and llama.default_batch_size == 4


@needs_smollm
def test_the_server_runs_the_same_model_on_the_same_prompt(llama, local):
    """Same GGUF weights, same rendered prompt: the next-token distributions agree.

    llama.cpp multiplies the 4-bit weights with 8-bit-quantised activations while transformers
    uses a float32 de-quantisation, so near-ties can flip (greedy "The" vs "L" for one of these
    prompts, 0.1 nats apart); the candidates and their log-probabilities must still match closely.
    """
    import json
    import urllib.request

    import torch

    base = llama.engine.base_url.removesuffix("/v1")
    for question in ["What is the capital of France?", "Say hello.", "Name a fruit that is yellow."]:
        prompt = llama.render(question)
        body = json.dumps({"prompt": prompt, "n_predict": 1, "temperature": 0, "n_probs": 5}).encode()
        req = urllib.request.Request(base + "/completion", data=body, headers={"Content-Type": "application/json"})
        top = json.loads(urllib.request.urlopen(req, timeout=60).read())["completion_probabilities"][0]["top_logprobs"]
        server = {t["id"]: t["logprob"] for t in top}
        with torch.inference_mode():
            logp = local.model(torch.tensor([local.token_ids(prompt)])).logits[0, -1].log_softmax(-1)
        ref_ids = logp.topk(5).indices.tolist()
        shared = set(server) & set(ref_ids)
        assert len(shared) >= 3, (question, server, ref_ids)
        assert max(abs(server[i] - logp[i].item()) for i in shared) < 0.5, question


@needs_smollm
def test_seeded_sampling_is_reproducible_and_per_reply(llama):
    kw = dict(max_new_tokens=16, temperature=1.0, progress=False)
    a = [g.text for g in llama.chat(PROMPTS, seed=7, **kw)]
    b = [g.text for g in llama.chat(PROMPTS, seed=7, **kw)]
    c = [g.text for g in llama.chat(PROMPTS, seed=8, **kw)]
    assert a == b
    assert a != c
    # reply i is sampled with seed + i, whatever else is in the call
    alone = llama.chat([PROMPTS[2]], seed=9, **kw)[0].text
    assert alone == a[2]


@needs_smollm
def test_prefix_and_stop_when(llama):
    prefix = '{"name": "'
    g = llama.chat(["Give a JSON object with a key name."], max_new_tokens=48, temperature=0, prefix=prefix,
                   stop_when=lambda text: len(text) >= len(prefix) + 12, progress=False)[0]
    assert g.text.startswith(prefix.strip())
    assert g.finish_reason == "stop" and g.new_tokens < 48  # hung up once the test was true
    assert len(g.text) >= len(prefix) + 12 - 1
    never = llama.chat(["Count from one to fifty in words."], max_new_tokens=10, temperature=0,
                       stop_when=lambda text: False, progress=False)[0]
    assert never.finish_reason == "length" and never.new_tokens == 10


@needs_smollm
def test_json_and_perplexity_work_with_the_engine(llama):
    batch = llama.chat_json(['Reply with JSON: {"fruit": "<a fruit>"}'] * 2, required_keys=["fruit"],
                            max_new_tokens=24, temperature=0, prefix="{", progress=False)
    assert len(batch.results) == 2
    # perplexity stays on transformers: the model loads on first use
    ppl = llama.perplexity(["The cat sat on the mat.", "mat the on sat cat The."])
    assert ppl[0] < ppl[1]


@needs_smollm
def test_a_running_server_is_reached_by_url(llama):
    """The generic OpenAI-compatible path (vLLM, SGLang, Ollama) against the same real server."""
    url = llama.engine.base_url
    lm = LM.load("smollm2-135m", engine=url, slots=2)
    try:
        gens = lm.chat(PROMPTS[:2], max_new_tokens=8, temperature=0, progress=False)
        assert [g.prompt_tokens for g in gens] == [lm.count_tokens(lm.render(p)) for p in PROMPTS[:2]]
        assert all(g.finish_reason in ("stop", "length") and g.text for g in gens)
        assert url in lm.backend
    finally:
        lm.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_smollm
def test_unreachable_server_is_counted_not_hidden(llama, capsys):
    eng = ServerEngine(f"http://127.0.0.1:{_free_port()}/v1", "smollm2-135m", concurrency=2, timeout=5)
    eng.client = eng.client.with_options(max_retries=0)
    lm = LM(None, llama.tokenizer, "smollm2-135m", engine=eng, model_loader=lambda: (None, None))
    gens = lm.chat(["a", "b", "c"], max_new_tokens=4, progress=False)
    assert [g.finish_reason for g in gens] == ["error"] * 3 and all(g.text == "" for g in gens)
    assert lm.last_stats.failed == 3
    assert "3 of 3 requests" in capsys.readouterr().out


def test_bad_engine_and_model_names_say_what_to_do():
    with pytest.raises(ValueError, match="engine must be"):
        LM.load("smollm2-135m", engine="vllm")
    from helpers.core.models import lm_gguf_file

    with pytest.raises(ValueError, match="GGUF"):
        lm_gguf_file("Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(FileNotFoundError):
        LlamaCppServer("/nonexistent/model.gguf")


def test_auto_engine_picks_llama_cpp_only_for_gguf_on_a_cpu():
    from helpers.lm.generation import auto_engine

    pytest.importorskip("xllamacpp")
    assert auto_engine("qwen-coder-0.5b", "cpu") == "llama.cpp"
    assert auto_engine("/models/x.gguf", "cpu") == "llama.cpp"
    assert auto_engine("Qwen/Qwen2.5-Coder-0.5B-Instruct", "cpu") == "transformers"
    assert auto_engine("qwen-coder-0.5b", "cuda") == "transformers"


@needs_smollm
def test_next_token_logprobs_of_chosen_tokens_come_from_the_server(llama, local):
    """The judge's digit probabilities: the server's top log-probs agree with the transformers model's on
    the same GGUF weights, and a token outside the server's top 20 gets -inf, not a made-up value."""
    import numpy as np

    prompts = [llama.render(q) for q in ("Rate the colour blue from 1 to 5. Answer with one digit.",
                                         "How many legs has a cat? Answer with one digit.")]
    cols = [llama.token_ids(str(k))[0] for k in range(1, 6)] + [llama.token_ids(" zebra")[0]]
    got, failed = llama.engine.next_token_logprobs(prompts, cols, [llama.tokenizer.decode([t]) for t in cols])
    assert failed == 0
    ref = local.next_token_logprobs(prompts, cols)
    assert got.shape == (2, 6)
    assert np.isneginf(got[:, -1]).all()  # " zebra" is nowhere near the top 20 (transformers gives it a number)
    assert np.isfinite(ref[:, -1]).all()
    close = np.isfinite(got[:, :5]) & (ref[:, :5] > -6)
    assert close.sum() >= 4
    assert np.abs(got[:, :5][close] - ref[:, :5][close]).max() < 0.5
