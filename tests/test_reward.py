"""Unit tests for helpers.text.reward (a hashed bag-of-words embedder stands in for MiniLM; no models needed)."""
from __future__ import annotations

import random
import re
import zlib

import numpy as np
import pytest

from collections import Counter

from helpers.text.reward import (CORRUPTIONS, FALSE_FACTS, PreferencePair, RewardModel, insert_factual_error,
                            make_preference_pairs, pairwise_report, rank_agreement, shuffle, shuffle_units,
                            split_rows, split_sentences, stratified_sample, surface_features, top_fraction,
                            top_fraction_per_group, truncate)


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


def test_flipped_words_never_break_a_contraction():
    # "can't" holds the word "can": flipping it gave the non-word "cannot't", a clue that needs no facts
    text = "You can't skip this step. You can run it first-class, and it isn't always slow."
    seen = set()
    for seed in range(200):
        new, how = insert_factual_error(text, random.Random(seed))
        seen.add(how.split()[0])
        assert "cannot't" not in new and "last-class" not in new and "never-" not in new, (how, new)
        if how.startswith("flipped"):
            assert how in {"flipped 'can' -> 'cannot'", "flipped 'always' -> 'never'"}, how
    assert "flipped" in seen
    # a text whose only candidates sit inside contractions gets a false sentence instead
    for seed in range(20):
        new, how = insert_factual_error("I can't say. We won't go. They don't know.", random.Random(seed))
        assert how.startswith("inserted"), how


def test_corruptions_keep_the_original_layout():
    text = "Step one: open the file.\n\nStep two: read it line by line.\n  - keep\n  - skip\nThat is all. Done now."
    rng = random.Random(0)
    for _ in range(20):
        cut = truncate(text, rng)
        assert text.startswith(cut) and len(cut) < len(text)
        sh, unit = shuffle_units(text, rng)
        # only the order changes: same characters, same length, line breaks kept
        assert unit == "sentence" and sh != text and Counter(sh) == Counter(text)
        new, how = insert_factual_error(text, rng)
        if how.startswith("inserted"):
            fact = next(f for f in FALSE_FACTS if f in new)
            assert new.count("\n") == text.count("\n")
            assert new.replace(" " + fact, "", 1) == text or new.replace(fact + " ", "", 1) == text
    # too few sentences: words are shuffled, and the pair says so
    short = "just one sentence with quite a few words in it"
    sh, unit = shuffle_units(short, rng)
    assert unit == "word" and sorted(sh.split()) == sorted(short.split())
    pairs, _ = make_preference_pairs([{"prompt": "p", "response": short}, {"prompt": "q", "response": text}],
                                     kinds=["shuffled"], seed=0)
    assert [p.note for p in pairs] == ["word order shuffled", "sentence order shuffled"]
    assert [p.detail for p in pairs] == ["word", "sentence"]
    assert shuffle_units("a a a a a a a", rng) is None  # nothing to reorder


def test_factual_error_pairs_name_their_variant():
    pairs, _ = make_preference_pairs(make_rows(30), kinds=["factual_error"], seed=0)
    assert {p.detail for p in pairs} <= {"number", "flipped word", "inserted sentence"}
    assert len({p.detail for p in pairs}) >= 2
    for p in pairs:
        assert p.note.startswith({"number": "number", "flipped word": "flipped",
                                  "inserted sentence": "inserted"}[p.detail])


def test_stratified_sample_balances_kinds():
    # four kinds per source row, row after row, as make_preference_pairs emits them
    pairs = [PreferencePair(f"p{i}", "c", f"r{i}{k}", k, i) for i in range(40) for k in CORRUPTIONS]
    stride = pairs[::len(pairs) // 8][:8]
    assert len({p.kind for p in stride}) == 1  # the trap: every stride-th pair is the same kind
    sample = stratified_sample(pairs, 8, seed=0)
    assert Counter(p.kind for p in sample) == {k: 2 for k in CORRUPTIONS}
    assert stratified_sample(pairs, 8, seed=0) == sample and len(set(map(id, sample))) == 8
    # a short stratum gives what it has; the others fill the rest
    few = [p for p in pairs if p.kind != "off_topic"] + [p for p in pairs if p.kind == "off_topic"][:1]
    s2 = stratified_sample(few, 9, seed=1)
    assert len(s2) == 9 and Counter(p.kind for p in s2)["off_topic"] == 1
    assert len(stratified_sample(pairs[:3], 10)) == 3 and stratified_sample([], 5) == []


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


def test_reward_models_can_share_embeddings():
    rows = make_rows(24)
    pairs, _ = make_preference_pairs(rows, seed=0)
    emb = HashEmbedder()
    rm = RewardModel(emb, hidden=8)
    rm.fit(pairs, epochs=5)
    calls = emb.calls
    rm2 = RewardModel(emb, hidden=8, surface=True, cache=rm.embedding_cache)
    rm2.fit(pairs, epochs=5)
    assert emb.calls == calls and rm2.embedding_cache is rm.embedding_cache


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


def test_rank_agreement():
    r = rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])
    assert r["spearman"] == pytest.approx(1.0) and r["pairwise_agreement"] == 1.0
    r = rank_agreement([1, 2, 3, 4], [4, 3, 2, 1])
    assert r["pairwise_agreement"] == 0.0
    r = rank_agreement([1, 2, np.nan], [1, 2, 3])
    assert r["n"] == 2 and np.isnan(r["spearman"])
    # ties on one side are left out of the pairwise figure
    r = rank_agreement([1, 1, 2, 3], [1, 2, 3, 4])
    assert r["pairs_compared"] == 5 and r["pairwise_agreement"] == 1.0


def test_pairwise_report_nan_is_wrong():
    rep = pairwise_report([1.0, -1.0, np.nan, 2.0], ["a", "a", "b", "b"])
    assert rep.by_kind == {"a": 0.5, "b": 0.5} and rep.accuracy == 0.5
    assert rep.correct.tolist() == [1.0, 0.0, 0.0, 1.0] and rep.correct.mean() == rep.accuracy
    assert PreferencePair("p", "c", "r", "k").group == -1

