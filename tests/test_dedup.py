"""Unit tests for helpers.text.dedup (no models needed except the one marked test)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.text.dedup import (EDIT_KINDS, band_collisions, clustered_embeddings, connected_labels,
                           copy_recall_by_kind, embedding_dedup, exact_dedup, greedy_keep, group_outcome,
                           jaccard_pairs, keep_one_per_group, lsh_params, minhash_dedup, minhash_signatures,
                           normalize_text, pair_precision_recall, pair_recall, pairs_precision_recall,
                           plant_near_duplicates, s_curve, shingles, similar_pairs_clustered,
                           share_merged, sibling_pairs, similar_pairs_exact, sweep_thresholds,
                           template_requests)

TEXTS = [
    "Write a short poem about the sea and the wind at night.",
    "Explain how a hash table handles collisions, with an example in Python.",
    "What are three good habits for learning a new language quickly?",
    "Summarize the causes of the French Revolution in five bullet points.",
    "Give me a recipe for a vegetarian lasagna that serves four people.",
    "How do I reverse a linked list in C without using recursion?",
    "Describe the water cycle for a ten year old child.",
    "List the planets of the solar system in order from the sun.",
]


def test_normalize_text_folds_case_space_punct_and_unicode():
    assert normalize_text("  Hello,\tWORLD!! ") == "hello world"
    assert normalize_text("ﬁne") == "fine"  # NFKC ligature
    assert normalize_text(None) == "" and normalize_text(42) == "42"
    assert normalize_text("Hi!", strip_punctuation=False) == "hi!"


def test_exact_dedup_keeps_one_per_group_and_counts_empty():
    texts = ["Hello world", "hello   WORLD!", "other text", "", "  ", None, "Other text."]
    r = exact_dedup(texts)
    assert r.keep.tolist() == [True, False, True, True, False, False, False]
    assert r.stats["empty"] == 3
    assert r.n_removed == 4
    assert sorted(map(sorted, (g.tolist() for g in r.groups()))) == [[0, 1], [2, 6], [3, 4, 5]]
    raw = exact_dedup(texts[:2], normalize=False)
    assert raw.keep.tolist() == [True, True]


def test_keep_one_per_group_respects_priority():
    labels = np.array([0, 0, 1, 1, 1, 2])
    assert keep_one_per_group(labels).tolist() == [True, False, True, False, False, True]
    pr = np.array([1, 5, 0, 9, 9, 0])
    assert keep_one_per_group(labels, pr).tolist() == [False, True, False, True, False, True]


def test_greedy_vs_components_on_a_chain():
    pairs = np.array([[0, 1], [1, 2]])  # 0~1~2 but 0 and 2 are not duplicates
    comp = keep_one_per_group(connected_labels(3, pairs))
    assert comp.tolist() == [True, False, False]
    greedy = greedy_keep(3, pairs)
    assert greedy.tolist() == [True, False, True]
    # components: exactly one survivor per connected group (the chain is one group)
    assert comp.sum() == 1
    # greedy: no two kept rows are duplicates, and every removed row has a kept duplicate
    for i, j in pairs:
        assert not (greedy[i] and greedy[j])
    assert greedy[0] and greedy[2] and not greedy[1]


def test_shingles_char_and_word():
    assert shingles("abc", k=5) == {"abc"}
    assert shingles("", k=5) == set()
    assert shingles("Hello World", k=5, unit="char") >= {"hello", "o wor"}
    assert shingles("a b c d", k=2, unit="word") == {"a b", "b c", "c d"}
    with pytest.raises(ValueError):
        shingles("x", unit="bytes")


def test_s_curve_shape():
    b, r = 20, 5
    assert s_curve(0.0, b, r) == 0.0 and s_curve(1.0, b, r) == pytest.approx(1.0)
    s = np.linspace(0, 1, 101)
    p = s_curve(s, b, r)
    assert np.all(np.diff(p) >= 0)
    mid = (1 / b) ** (1 / r)
    assert s_curve(mid - 0.2, b, r) < 0.3 < 0.8 < s_curve(mid + 0.2, b, r)


def test_lsh_params_are_tighter_for_higher_thresholds():
    b_lo, r_lo = lsh_params(0.3, 128)
    b_hi, r_hi = lsh_params(0.9, 128)
    assert b_lo * r_lo <= 128 and b_hi * r_hi <= 128
    assert r_hi > r_lo


def test_band_collisions_match_s_curve_on_average():
    rng = np.random.default_rng(0)
    # pairs of sets with Jaccard exactly 0.6: 60 shared elements and 20 of their own each -> 60 / (60 + 20 + 20)
    texts = []
    for i in range(150):
        shared = [f"s{i}_{k}" for k in range(60)]
        texts.append(" ".join(shared + [f"a{i}_{k}" for k in range(20)]))
        texts.append(" ".join(shared + [f"b{i}_{k}" for k in range(20)]))
    mhs, empty = minhash_signatures(texts, num_perm=128, k=1, unit="word")
    pairs = np.array([[2 * i, 2 * i + 1] for i in range(150)])
    jac = jaccard_pairs(texts, pairs, k=1, unit="word")
    assert np.allclose(jac, 0.6)
    hit = band_collisions(mhs, pairs, 16, 4).mean()
    assert abs(hit - s_curve(0.6, 16, 4)) < 0.12
    del rng


def test_minhash_dedup_finds_edits_and_skips_empty():
    texts = TEXTS + [TEXTS[0].upper(), TEXTS[1].replace("hash table", "hash  table ") + " Thanks!", "", ""]
    r = minhash_dedup(texts, threshold=0.5)
    assert r.stats["empty"] == 2
    assert not r.keep[8] and not r.keep[9]
    assert r.keep[:8].all()
    assert r.keep[10] and r.keep[11]  # empty texts are never matched by MinHash
    assert r.labels[8] == r.labels[0] and r.labels[9] == r.labels[1]
    assert r.stats["truncated"] == 0


def test_minhash_handles_huge_and_odd_texts():
    huge = "lorem ipsum dolor sit amet " * 20000  # 540k characters
    texts = [huge, huge + " extra", None, 12345, "Привет, как дела? Расскажи о погоде.", "привет как дела расскажи о погоде"]
    r = minhash_dedup(texts, threshold=0.8)
    assert r.stats["truncated"] == 2 and r.stats["empty"] == 1
    assert r.labels[0] == r.labels[1] and r.labels[4] == r.labels[5]
    assert r.keep.sum() == 4


def test_exact_search_matches_brute_force():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    x[150:160] = x[:10] + 0.05 * rng.standard_normal((10, 16)).astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn @ xn.T
    iu = np.triu_indices(300, 1)
    want = {(i, j) for i, j in zip(*iu) if sim[i, j] >= 0.8}
    pairs, sims = similar_pairs_exact(x, 0.8, block=64)
    assert {tuple(p) for p in pairs.tolist()} == want
    assert np.all(sims >= 0.8)
    qp, _ = similar_pairs_exact(x[:10], 0.99, other=x)
    assert {(i, i) for i in range(10)} <= {tuple(p) for p in qp.tolist()}


def test_clustered_search_has_high_recall_and_no_false_pairs():
    x, src = clustered_embeddings(6000, dim=64, seed=3)
    exact, _ = similar_pairs_exact(x, 0.9)
    found, sims, st = similar_pairs_clustered(x, 0.9, n_probe=3, return_stats=True)
    assert pair_recall(found, exact, len(x)) >= 0.95
    assert {tuple(p) for p in found.tolist()} <= {tuple(p) for p in exact.tolist()}
    assert st["comparison_fraction"] < 0.5
    dup = np.flatnonzero(src != np.arange(len(x)))
    assert len(dup) == 600


def test_embedding_dedup_keeps_one_per_group_and_handles_bad_rows():
    x, src = clustered_embeddings(2000, dim=32, seed=0, dup_noise=(0.05, 0.1))
    x[5] = 0.0
    x[6] = np.nan
    for search in ("exact", "clustered"):
        r = embedding_dedup(x, 0.95, search=search, n_probe=2) if search == "clustered" \
            else embedding_dedup(x, 0.95, search=search)
        assert r.stats["bad_rows"] == 2
        assert r.keep[5] and r.keep[6]
        out = group_outcome(r.keep, src, r.labels)
        assert out["none"] == 0  # never drops every member of a group
        assert out["exactly_one"] >= 0.9 * out["groups"]
        kept_per_label = np.bincount(r.labels, weights=r.keep.astype(float))
        assert np.all(kept_per_label[np.unique(r.labels)] == 1)  # one representative per group
    g = embedding_dedup(x, 0.95, keep="greedy")
    assert g.n_removed <= r.n_removed + 5
    with pytest.raises(ValueError):
        embedding_dedup(x, 0.9, search="magic")


def test_plant_near_duplicates_ground_truth():
    p = plant_near_duplicates(TEXTS + ["", "   "], n_sources=5, copies=2, seed=0)
    assert len(p) == 10 + 10 and p.n_planted == 10
    for i, k in enumerate(p.kind):
        if k == "original":
            assert p.source[i] == i
        else:
            s = p.source[i]
            assert p.kind[s] == "original" and p.group[s] == p.group[i]
            assert p.texts[s].strip()  # empty texts are never sources
            assert all(e in EDIT_KINDS for e in k.split("+"))
    assert plant_near_duplicates(TEXTS, 3, seed=1).texts == plant_near_duplicates(TEXTS, 3, seed=1).texts
    with pytest.raises(ValueError):
        plant_near_duplicates(TEXTS, 3, kinds=["rot13"])


def test_each_edit_changes_text_but_keeps_it_close():
    for kind in EDIT_KINDS:
        p = plant_near_duplicates(TEXTS, n_sources=8, copies=1, kinds=[kind], max_edits=1, seed=2)
        copies = [i for i, k in enumerate(p.kind) if k != "original"]
        changed = sum(p.texts[i] != p.texts[p.source[i]] for i in copies)
        assert changed >= 6, kind
        if kind in ("case", "whitespace", "punctuation"):
            r = exact_dedup(p.texts)
            rec = copy_recall_by_kind(r.labels, p)
            assert rec[kind] >= 0.85, (kind, rec)


def test_pair_precision_recall_counts_pairs():
    truth = np.array([0, 0, 0, 1, 2])
    assert pair_precision_recall(truth, truth)["f1"] == 1.0
    pred = np.array([0, 0, 1, 1, 2])  # finds (0,1), wrongly (2,3), misses (0,2), (1,2)
    m = pair_precision_recall(pred, truth)
    assert (m["tp_pairs"], m["pred_pairs"], m["true_pairs"]) == (1, 2, 3)
    assert m["precision"] == 0.5 and m["recall"] == pytest.approx(1 / 3)
    raw = pairs_precision_recall(np.array([[0, 1], [2, 3]]), truth)
    assert raw["precision"] == 0.5


def _old_pair_counts(pred_labels, true_groups):
    """(tp, predicted, true) pairs as the hand-written contingency count computed them."""
    def pair_count(counts):
        counts = counts.astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    pred = np.unique(np.asarray(pred_labels), return_inverse=True)[1]
    true = np.unique(np.asarray(true_groups), return_inverse=True)[1]
    joint = np.unique(pred.astype(np.int64) * (true.max() + 1 if len(true) else 1) + true, return_counts=True)[1]
    return pair_count(joint), pair_count(np.bincount(pred)), pair_count(np.bincount(true))


def _brute_pair_counts(pred, true):
    same_p = pred[:, None] == pred[None, :]
    same_t = true[:, None] == true[None, :]
    iu = np.triu_indices(len(pred), 1)
    return int((same_p & same_t)[iu].sum()), int(same_p[iu].sum()), int(same_t[iu].sum())


def test_pair_precision_recall_matches_the_contingency_count_on_random_labelings():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(0, 60))
        true = rng.integers(0, max(1, int(rng.integers(1, 25))), n)
        pred = rng.integers(0, max(1, int(rng.integers(1, 25))), n) if trial % 3 else true.copy()
        if trial % 5 == 0:  # arbitrary label values (negative, sparse), as connected_labels may give
            pred = pred * 7 - 100
        m = pair_precision_recall(pred, true)
        counts = (m["tp_pairs"], m["pred_pairs"], m["true_pairs"])
        assert counts == _old_pair_counts(pred, true) == _brute_pair_counts(pred, true), (pred, true)
        tp, pp, tt = counts
        assert m["precision"] == (tp / pp if pp else 1.0) and m["recall"] == (tp / tt if tt else 1.0)
        raw = pairs_precision_recall(np.zeros((0, 2), dtype=int), true)
        assert raw["true_pairs"] == tt and raw["recall"] == (0.0 if tt else 1.0)
    # string labels and a single row work too
    assert pair_precision_recall(np.array(["a", "a", "b"]), np.array([1, 1, 1]))["tp_pairs"] == 1
    assert pair_precision_recall(np.array([3]), np.array([3]))["pred_pairs"] == 0


def test_sweep_thresholds_monotone():
    truth = np.array([0, 0, 1, 1, 2, 3])
    pairs = np.array([[0, 1], [2, 3], [4, 5], [1, 2]])
    scores = np.array([0.95, 0.85, 0.75, 0.65])
    rows = sweep_thresholds(6, pairs, scores, truth, [0.6, 0.7, 0.8, 0.9])
    rec = [r["recall"] for r in rows]
    assert rec == sorted(rec, reverse=True)
    assert rows[-1]["precision"] == 1.0 and rows[-1]["removed"] == 1
    assert rows[0]["removed"] == 4  # components {0,1,2,3} and {4,5}


def test_group_outcome_flags_lost_groups():
    truth = np.array([0, 0, 1, 1, 2])
    assert group_outcome(np.array([True, False, False, False, True]), truth)["none"] == 1
    assert group_outcome(np.array([True, False, True, True, False]), truth) == {
        "groups": 2, "exactly_one": 1, "several": 1, "merged_away": 0, "none": 0, "wrongly_removed_singletons": 1}
    # group 1 lost both rows, but they were merged with row 0's group, which kept row 0
    merged = group_outcome(np.array([True, False, False, False, True]), truth, labels=np.array([0, 0, 0, 0, 1]))
    assert merged["merged_away"] == 1 and merged["none"] == 0
    # with no kept row in the predicted group, it is a real loss
    lost = group_outcome(np.array([True, False, False, False, True]), truth, labels=np.array([0, 0, 1, 1, 2]))
    assert lost["none"] == 1 and lost["merged_away"] == 0


@pytest.mark.models
def test_embedding_dedup_with_minilm():
    from helpers.lm.embeddings import Embedder

    emb = Embedder.load("minilm", device="cpu")
    texts = TEXTS + [TEXTS[2].lower(), "   ", "Write a short poem about the sea and the wind at night!!"]
    r = embedding_dedup(emb.encode(texts), 0.9)
    assert not r.keep[8] and not r.keep[10] and r.keep[:8].all()


def test_benchmark_quick_path_runs_and_reports(tmp_path, capsys):
    """``benchmarks/bench_dedup.py --quick`` (10k embeddings, exact search in full): the path CI can afford."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_dedup.py"
    spec = importlib.util.spec_from_file_location("bench_dedup", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "rows.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["n"] == 10_000 and row["exact_measured"] == "all pairs" and row["exact_pairs"] > 0
    assert row["recall"] >= 0.95 and row["clustered_items_per_s"] > 0 and row["exact_items_per_s"] > 0
    printed = capsys.readouterr().out
    assert "items/s" in printed and "recall vs exact" in printed


def test_plant_near_duplicates_adds_extra_copies_with_their_own_kind():
    extra = {0: ["Compose a brief poem about the sea and the night wind."], 1: [None, ""], 2: [TEXTS[2]],
             99: ["out of range"]}
    p = plant_near_duplicates(TEXTS, n_sources=2, copies=1, seed=0, extra=extra)
    para = [i for i, k in enumerate(p.kind) if k == "paraphrase"]
    assert len(para) == 1 and p.texts[para[0]].startswith("Compose")
    assert p.texts[p.source[para[0]]] == TEXTS[0] and p.group[para[0]] == p.group[p.source[para[0]]]
    assert p.skipped == {"empty": 2, "same as the original": 1, "index out of range": 1}
    assert p.n_planted == 2 + 1
    # recall per kind covers the extra kind, after the rule edits
    rec = copy_recall_by_kind(np.arange(len(p)), p)
    assert rec["paraphrase"] == 0.0 and list(rec)[-2:] == ["paraphrase", "all"]
    with pytest.raises(ValueError):
        plant_near_duplicates(TEXTS, 1, extra={0: ["x"]}, extra_kind="typo")
    assert "synonyms" in EDIT_KINDS and "paraphrase" not in EDIT_KINDS  # rule edits are not called paraphrases


@pytest.mark.parametrize("original,reply,reason,clean", [
    ("write a poem about cats", "Could you compose some verses about felines?", None,
     "Could you compose some verses about felines?"),
    ("write a poem about cats", 'Rewritten request: "Please write verses on the topic of cats."', None,
     "Please write verses on the topic of cats."),
    ("write a poem about cats", "Request: Write a poem about cats.", "unchanged", "Write a poem about cats."),
    ("write a poem about cats", "Sure! Here is a poem: Cats are soft and cats are sly", "answered", None),
    ("write a poem about cats", "```python\nprint('cats')\n```", "answered", None),
    ("explain in detail how the immune system fights a viral infection", "Explain.", "too short", None),
    ("hi there", "Could you greet me warmly and then tell me a long story about your whole day please?",
     "too long", None),
    ("write a poem about cats", "   ", "empty", ""),
    ("write a poem about cats", None, "empty", ""),
    # a detail pasted from a worked example (Canada, cities) is rejected; the same word is fine when the original has it
    ("How many squares are there?", "How many squares are there in Canada?", "copied from an example", None),
    ("What colour is the circle?", "Which colour do the circles in these cities have?", "copied from an example", None),
    ("list the largest cities in canada", "Which Canadian cities are the biggest?", None, None),
    ("How many squares are there?", "What is the number of squares in the picture?", None, None),
])
def test_check_and_clean_paraphrase(original, reply, reason, clean):
    from helpers.text.paraphrase import check_paraphrase, clean_paraphrase

    assert check_paraphrase(original, reply) == reason
    if clean is not None:
        assert clean_paraphrase(reply) == clean


def test_paraphrase_texts_sends_few_shot_turns_and_counts_rejections():
    from helpers.text.paraphrase import PARAPHRASE_EXAMPLES, PARAPHRASE_SYSTEM, paraphrase_texts

    from tests.fakes import ScriptedLM

    lm = ScriptedLM(["Request: Could you list the planets, starting nearest the sun?", TEXTS[1],
                     ("Could you explain how", "length")])
    out, rejected = paraphrase_texts(lm, [TEXTS[7], TEXTS[1], TEXTS[6]], progress=False, seed=3)
    assert out == ["Could you list the planets, starting nearest the sun?", None, None]
    assert rejected == {"unchanged": 1, "cut off": 1}
    conv = lm.calls[0]["messages"][0]
    assert conv[0] == {"role": "system", "content": PARAPHRASE_SYSTEM}
    assert len(conv) == 2 + 2 * len(PARAPHRASE_EXAMPLES) and conv[2]["content"] == PARAPHRASE_EXAMPLES[0][1]
    assert conv[-1]["role"] == "user" and TEXTS[7] in conv[-1]["content"] and lm.calls[0]["seed"] == 3


def test_paraphrase_texts_rejects_details_copied_from_custom_examples():
    from helpers.text.paraphrase import example_details, paraphrase_texts

    from tests.fakes import ScriptedLM

    examples = [("how do volcanoes erupt", "What makes a volcano erupt?")]
    assert {"volcano", "volcanoes", "erupt"} <= example_details(examples) and "what" not in example_details(examples)
    lm = ScriptedLM(["What is the volcano's number of squares?", "Could you count the squares for me?"])
    out, rejected = paraphrase_texts(lm, ["How many squares are there?"] * 2, examples=examples, progress=False)
    assert out == [None, "Could you count the squares for me?"] and rejected == {"copied from an example": 1}


def test_template_requests_are_distinct_requests_from_shared_templates(tmp_path):
    texts, tids = template_requests()
    assert len(texts) == len(tids) and len(set(texts)) == len(texts)
    assert len(np.unique(tids)) >= 10 and np.bincount(tids).min() >= 2
    # per_template draws that many fillers; exclude drops a text equal after normalisation
    few, few_t = template_requests(per_template=3, seed=1)
    assert np.bincount(few_t).max() == 3 and set(few) <= set(texts)
    kept, _ = template_requests(exclude=["  what is the CAPITAL of France "])
    assert "What is the capital of France?" in texts and "What is the capital of France?" not in kept
    assert len(kept) == len(texts) - 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"templates": [{"template": "Explain {} and {}.", "fillers": ["a", "b"]}]}')
    with pytest.raises(ValueError, match="Explain"):
        template_requests(bad)


def test_sibling_pairs_and_share_merged():
    # rows 0-2 from template 0 (rows 0 and 2 one group: 2 is a copy of 0), row 3 template 1 alone, row 4 none
    template_of = np.array([0, 0, 0, 1, -1])
    groups = np.array([0, 1, 0, 3, 4])
    pairs = sibling_pairs(template_of, groups)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 2)]
    assert share_merged(np.array([0, 0, 2, 3, 4]), pairs) == 0.5
    assert share_merged(np.arange(5), pairs) == 0.0
    assert np.isnan(share_merged(np.arange(5), np.zeros((0, 2))))
    # the sweep reports the same share at each threshold
    rows = sweep_thresholds(5, np.array([[0, 1], [0, 2]]), np.array([0.7, 0.95]), groups, [0.6, 0.9],
                            negatives=pairs)
    assert [r["negatives_merged"] for r in rows] == [1.0, 0.0]
