"""helpers.lm.embeddings.LMEmbedder: one layer of a causal LM, mean-pooled, checked against plain transformers."""
import numpy as np
import pytest
import torch

from helpers.lm.embeddings import LMEmbedder


@pytest.fixture(scope="module")
def emb():
    return LMEmbedder.load("smollm2-135m", max_length=32)


TEXTS = ["def add(a, b):\n    return a + b", "x = 1", "class Stack:\n    def push(self, item):\n        self.items.append(item)"]


def test_vectors_are_the_mean_of_that_layer_over_real_tokens(emb):
    X = emb.encode(TEXTS, batch_size=2)  # sorted by length, padded: padding must not change anything
    assert X.shape == (3, emb.dim) and emb.layer == emb.n_layers // 2
    tok, model = emb.tokenizer, emb.model
    for text, row in zip(TEXTS, X):
        ids = tok(text, return_tensors="pt", truncation=True, max_length=32)
        with torch.inference_mode():
            hs = model(**ids, output_hidden_states=True).hidden_states
        want = hs[emb.layer][0].mean(0).numpy()  # hidden_states[k] is the output of block k
        np.testing.assert_allclose(row, want, rtol=1e-4, atol=1e-4)


def test_the_blocks_above_the_layer_never_run(emb):
    calls = []
    handle = emb.model.model.layers[-1].register_forward_hook(lambda *a: calls.append(1))
    try:
        emb.encode(TEXTS[:1])
    finally:
        handle.remove()
    assert calls == []
    assert emb.tokenizer.padding_side == "left"  # generation's setting is given back


def test_bad_layers_and_texts_are_errors(emb):
    with pytest.raises(ValueError, match="layer"):
        LMEmbedder(emb.model, emb.tokenizer, layer=emb.n_layers + 1)
    with pytest.raises(ValueError, match="layer"):
        LMEmbedder(emb.model, emb.tokenizer, layer=0)
    with pytest.raises(TypeError):
        emb.encode(["ok", None])
    with pytest.raises(ValueError, match="empty"):
        emb.encode(["ok", ""])
    assert LMEmbedder(emb.model, emb.tokenizer, layer="last").layer == emb.n_layers
