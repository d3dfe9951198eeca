import numpy as np
import pytest

from helpers.text.diversity import distinct_n, near_duplicate_rate
from helpers.lm.embeddings import Embedder, cosine_matrix, mean_pairwise_cosine, normalize_rows


def test_distinct_n():
    assert distinct_n(["a b c", "a b c"], 1) == 0.5
    assert distinct_n(["a b c d"], 2) == 1.0
    assert np.isnan(distinct_n(["a"], 2))
    assert distinct_n(["Ünïcode wörds", "ünïcode WÖRDS"], 1) == 0.5


def test_mean_pairwise_cosine_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    c = cosine_matrix(x)
    brute = (c.sum() - np.trace(c)) / (50 * 49)
    assert abs(mean_pairwise_cosine(x) - brute) < 1e-5
    assert np.isnan(mean_pairwise_cosine(x[:1]))


def test_near_duplicate_rate():
    x = normalize_rows(np.array([[1, 0], [0.99, 0.01], [0, 1]], dtype=np.float32))
    assert near_duplicate_rate(x, 0.95) == pytest.approx(2 / 3)


@pytest.mark.models
def test_embedder_similarity_and_bad_input():
    emb = Embedder.load("minilm", device="cpu")
    x = emb.encode(["A cat sat on the mat.", "A kitten was sitting on the rug.", "Quarterly tax filing deadlines", "",
                    "x" * 20000, "日本語の文です"])
    assert x.shape == (6, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)
    c = cosine_matrix(x)
    assert c[0, 1] > c[0, 2] + 0.2


@pytest.mark.models
def test_embedder_counts_missing_texts_instead_of_embedding_the_word_none():
    emb = Embedder.load("minilm", device="cpu")
    with pytest.warns(UserWarning, match="2 of 4 texts are missing"):
        x = emb.encode(["A cat sat on the mat.", None, float("nan"), "None"])
    assert emb.last_missing == [1, 2]
    assert np.allclose(x[[1, 2]], 0) and np.isclose(np.linalg.norm(x[3]), 1, atol=1e-4)
    with pytest.raises(TypeError, match="takes strings"):
        emb.encode(["fine", 42])
    emb.encode(["no missing text here"])
    assert emb.last_missing == []
