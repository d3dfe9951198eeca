"""Unit tests for helpers.reward (a hashed bag-of-words embedder stands in for MiniLM; no models needed)."""
from __future__ import annotations

import random
import re
import zlib

import numpy as np
import pytest

from helpers.reward import (CORRUPTIONS, PreferencePair, RewardModel, auc, insert_factual_error,
                            make_preference_pairs, pairwise_report, rank_agreement, shuffle, split_rows,
                            split_sentences, surface_features, top_fraction, top_fraction_per_group, truncate)


class HashEmbedder:
    """Deterministic bag-of-words embedder: enough signal for the head to learn from."""

    dim = 64

    def __init__(self):
        self.calls = 0

    def encode(self, texts, batch_size=64):
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, zlib.crc32(w.encode()) % self.dim] += 1
            # sentence-final punctuation and length leave a trace, so truncation is learnable
            out[i, 0] += 3 * t.rstrip().endswith(".")
            out[i] /= max(1e-6, np.linalg.norm(out[i]))
        return out


TOPICS = ["cats", "rivers", "stars", "bread", "trains", "music", "forests", "oceans"]


def make_rows(n=40):
    rows = []
    for i in range(n):
        t = TOPICS[i % len(TOPICS)]
        rows.append({"prompt": f"Tell me about {t} number {i}.",
                     "response": f"Here is a fact about {t}. {t.capitalize()} are interesting for 3 reasons. "
                                 f"First, {t} appear in many stories. Second, people study {t} more each year. "
                                 f"Finally, {t} change over time."})
    return rows


def test_truncate_and_shuffle():
    rng = random.Random(0)
    text = "one two three four five six seven eight nine ten eleven twelve."
    cut = truncate(text, rng)
    assert cut and len(cut.split()) < len(text.split()) and text.startswith(cut)
    assert truncate("too short", rng) is None
    s = "A is first. B is second. C is third. D is fourth."
    sh = shuffle(s, rng)
    assert sh != s and sorted(split_sentences(sh)) == sorted(split_sentences(s))
    assert shuffle("tiny", rng) is None


def test_factual_error_changes_text():
    rng = random.Random(1)
    for text in ["It has 12 parts.", "Prices increase before winter.", "Nothing to flip here at all"]:
        new, how = insert_factual_error(text, rng)
        assert new != text and how
    assert insert_factual_error("", rng) is None


def test_make_pairs_counts_and_skips():
    rows = make_rows(10) + [{"prompt": "empty", "response": ""}, {"prompt": "short", "response": "Yes."}]
    pairs, skipped = make_preference_pairs(rows, seed=0)
    kinds = {p.kind for p in pairs}
    assert kinds == set(CORRUPTIONS)
    assert all(p.rejected != p.chosen for p in pairs)
    # the empty row is skipped for every kind; the short one at least for truncation and shuffling
    assert skipped["truncated"] == 2 and skipped["shuffled"] == 2 and skipped["off_topic"] == 1
    assert len(pairs) + sum(skipped.values()) == len(rows) * len(CORRUPTIONS)
    pairs1, _ = make_preference_pairs(rows, per_row=1, seed=0)
    assert len(pairs1) <= len(rows)
    assert make_preference_pairs(rows, seed=3)[0] == make_preference_pairs(rows, seed=3)[0]
    with pytest.raises(ValueError):
        make_preference_pairs(rows, kinds=["bogus"])


def test_split_rows_disjoint():
    rows = list(range(20))
    tr, te = split_rows(rows, 0.25, seed=0)
    assert len(te) == 5 and not set(tr) & set(te) and sorted(tr + te) == rows


def test_reward_model_learns_heldout_pairs():
    rows = make_rows(64)
    tr, te = split_rows(rows, 0.25, seed=0)
    ptr, _ = make_preference_pairs(tr, seed=0)
    pte, _ = make_preference_pairs(te, seed=1)
    emb = HashEmbedder()
    rm = RewardModel(emb, hidden=16)
    hist = rm.fit(ptr, epochs=80, seed=0)
    assert hist.train_loss[-1] < hist.train_loss[0]
    rep = rm.pairwise_accuracy(pte)
    for kind in ("truncated", "off_topic", "factual_error"):
        assert rep.by_kind[kind] > 0.7, rep.table()
    # a bag of words cannot see word order: shuffled pairs are ties, and ties count as wrong
    assert rep.by_kind["shuffled"] < 0.5
    assert set(rep.by_kind) == set(CORRUPTIONS)
    assert "ALL" in set(rep.table()["kind"])
    # every distinct text is embedded once (cache)
    calls = emb.calls
    rm.score([p.prompt for p in pte], [p.chosen for p in pte])
    assert emb.calls == calls
    assert rm.score([], []).shape == (0,)
    with pytest.raises(ValueError):
        rm.score(["a"], [])


def test_reward_model_requires_fit_and_pairs():
    rm = RewardModel(HashEmbedder())
    with pytest.raises(RuntimeError):
        rm.score(["a"], ["b"])
    with pytest.raises(ValueError):
        rm.fit([])


def test_surface_features_shape():
    f = surface_features(["A full sentence.", "cut off mid", ""])
    assert f.shape == (3, 3) and f[0, 1] == 1 and f[1, 1] == 0
    rm = RewardModel(HashEmbedder(), surface=True)
    assert rm.features(["p"], ["r."]).shape == (1, 2 * HashEmbedder.dim + 3)


def test_top_fraction():
    s = [0.1, 0.9, np.nan, 0.5, 0.7]
    m = top_fraction(s, 0.5)
    assert m.tolist() == [False, True, False, False, True]
    assert top_fraction([1, 1, 1, 1], 0.25).sum() == 1
    assert top_fraction([np.nan], 0.25).sum() == 0
    with pytest.raises(ValueError):
        top_fraction([1], 0)
    g = top_fraction_per_group([1, 2, 3, 4, 5, 6, 7, 8], ["a"] * 4 + ["b"] * 4, 0.25)
    assert g.tolist() == [False, False, False, True, False, False, False, True]


def test_agreement_and_auc():
    r = rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])
    assert r["spearman"] == pytest.approx(1.0) and r["pairwise_agreement"] == 1.0
    r = rank_agreement([1, 2, 3, 4], [4, 3, 2, 1])
    assert r["pairwise_agreement"] == 0.0
    r = rank_agreement([1, 2, np.nan], [1, 2, 3])
    assert r["n"] == 2 and np.isnan(r["spearman"])
    # ties on one side are left out of the pairwise figure
    r = rank_agreement([1, 1, 2, 3], [1, 2, 3, 4])
    assert r["pairs_compared"] == 5 and r["pairwise_agreement"] == 1.0
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1], [1]) == 0.5 and np.isnan(auc([], [1]))


def test_pairwise_report_nan_is_wrong():
    rep = pairwise_report([1.0, -1.0, np.nan, 2.0], ["a", "a", "b", "b"])
    assert rep.by_kind == {"a": 0.5, "b": 0.5} and rep.accuracy == 0.5
    assert PreferencePair("p", "c", "r", "k").group == -1

