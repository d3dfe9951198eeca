import numpy as np
import pytest

from helpers.text.diversity import _leave_one_out, distinct_n, diversity_diff, diversity_report, near_duplicate_rate
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


def _random_sets(seed=0, n=30):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(40)]
    varied = [" ".join(rng.choice(vocab, size=6)) for _ in range(n)]
    same = [" ".join(["write", "a", "poem", "about", str(rng.choice(vocab[:3]))]) for _ in range(n)]
    base = rng.normal(size=8)
    emb_same = normalize_rows(base + 0.1 * rng.normal(size=(n, 8)))
    emb_varied = normalize_rows(rng.normal(size=(n, 8)))
    return varied, emb_varied, same, emb_same


def test_leave_one_out_matches_recomputing_without_the_item():
    texts, emb, _, _ = _random_sets()
    emb = emb.copy()
    emb[1] = normalize_rows(emb[0:1] + 0.01)[0]  # one near-duplicate pair, so the rate is not 0
    loo = _leave_one_out(texts, emb, 0.9)
    for i in (0, 1, 7):
        keep = [j for j in range(len(texts)) if j != i]
        ref = diversity_report([texts[j] for j in keep], emb[keep], 0.9)
        for metric, values in loo.items():
            assert values[i] == pytest.approx(ref[metric], abs=1e-6), (metric, i)


def test_diversity_diff_finds_the_varied_set_and_not_a_copy():
    varied, emb_varied, same, emb_same = _random_sets()
    res = diversity_diff(varied, emb_varied, same, emb_same, seed=0)
    for metric in ("distinct_2", "mean_pairwise_cosine"):
        r = res[metric]
        assert r["lo"] <= r["diff"] <= r["hi"] and r["n"] == 30
        assert r["word"] == "A more diverse", (metric, r)
    assert diversity_diff(same, emb_same, varied, emb_varied)["distinct_2"]["word"] == "B more diverse"
    # two halves drawn the same way: the intervals hold 0
    v2, e2, _, _ = _random_sets(seed=1)
    for metric, r in diversity_diff(varied, emb_varied, v2, e2).items():
        assert r["word"] == "not clearly different", (metric, r)
    # unequal sizes are cut to the smaller one; too few items is an error
    assert diversity_diff(varied, emb_varied, same[:10], emb_same[:10])["distinct_2"]["n"] == 10
    with pytest.raises(ValueError, match="at least 4"):
        diversity_diff(varied[:3], emb_varied[:3], same, emb_same)


@pytest.fixture(scope="module")
def emb():
    return Embedder.load("minilm", device="cpu")


@pytest.mark.models
def test_embedder_similarity_and_bad_input(emb):
    x = emb.encode(["A cat sat on the mat.", "A kitten was sitting on the rug.", "Quarterly tax filing deadlines", "",
                    "x" * 20000, "日本語の文です"])
    assert x.shape == (6, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-4)
    c = cosine_matrix(x)
    assert c[0, 1] > c[0, 2] + 0.2


@pytest.mark.models
def test_embedder_counts_missing_texts_instead_of_embedding_the_word_none(emb):
    with pytest.warns(UserWarning, match="2 of 4 texts are missing"):
        x = emb.encode(["A cat sat on the mat.", None, float("nan"), "None"])
    assert emb.last_missing == [1, 2]
    assert np.allclose(x[[1, 2]], 0) and np.isclose(np.linalg.norm(x[3]), 1, atol=1e-4)
    with pytest.raises(TypeError, match="takes strings"):
        emb.encode(["fine", 42])
    emb.encode(["no missing text here"])
    assert emb.last_missing == []


SENTENCES = ["A cat sat on the mat.", "Quarterly tax filing deadlines are in April.", "", "short",
             "A much longer sentence, so that the batch is padded: " + "words " * 40]


def _plain_transformers_vectors(folder, texts, pool):
    """The embedding computed by hand with plain transformers (no sentence-transformers)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    with torch.inference_mode():
        enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        if pool == "cls":
            return hidden[:, 0].numpy()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy()


@pytest.mark.models
def test_embedder_gives_the_same_vectors_as_plain_transformers_mean_pooling(emb):
    from helpers.core.models import locate

    raw = _plain_transformers_vectors(locate("minilm"), SENTENCES, "mean")
    np.testing.assert_allclose(emb.encode(SENTENCES, batch_size=2, normalize=False), raw, atol=1e-5)
    np.testing.assert_allclose(emb.encode(SENTENCES, batch_size=2), normalize_rows(raw), atol=1e-5)


@pytest.mark.models
def test_embedder_follows_the_pooling_config_of_the_model_folder(tmp_path, emb):
    """A folder whose 1_Pooling/config.json asks for the CLS token (as BGE's does) gets CLS vectors."""
    import json

    from helpers.core.models import locate

    src = locate("minilm")
    for f in src.iterdir():
        if f.name != "1_Pooling":
            (tmp_path / f.name).symlink_to(f)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 384, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    cls_emb = Embedder.load(str(tmp_path), device="cpu")
    cls_vectors = normalize_rows(_plain_transformers_vectors(src, SENTENCES, "cls"))
    np.testing.assert_allclose(cls_emb.encode(SENTENCES), cls_vectors, atol=1e-5)
    assert not np.allclose(emb.encode(SENTENCES), cls_vectors, atol=1e-2)
