"""Unit tests for helpers.text.selfinstruct (fast: no model needed)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from helpers.text import selfinstruct as si
from tests.fakes import ScriptedLM


# ---------------------------------------------------------------------------- data files
def test_seed_file_is_big_varied_and_valid():
    tasks, skipped = si.load_seed_tasks()
    assert len(tasks) >= 60
    assert not skipped, skipped
    cats = {t["category"] for t in tasks}
    assert len(cats) >= 10
    assert sum(bool(t["input"]) for t in tasks) >= 10  # some tasks carry an input
    assert all(t["output"] for t in tasks)
    # the seeds themselves pass the heuristic filters and are mutually novel
    assert [t["instruction"] for t in tasks if si.heuristic_reject(t["instruction"])] == []
    nf = si.NoveltyFilter()
    assert all(nf.add_if_novel(t["instruction"])[0] for t in tasks)


def test_load_seed_tasks_counts_bad_lines(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text("\n".join([
        json.dumps({"instruction": "Name a fruit.", "output": "apple"}),
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"instruction": "   ", "output": "x"}),
        json.dumps({"instruction": "name  a FRUIT.", "output": "pear"}),
        "",
    ]))
    tasks, skipped = si.load_seed_tasks(p)
    assert [t["instruction"] for t in tasks] == ["Name a fruit."]
    assert tasks[0]["category"] == "unknown" and tasks[0]["input"] == ""
    assert skipped == {"invalid json": 1, "not an object": 1, "missing instruction": 1, "duplicate": 1}


def test_attributes_load_and_sample():
    attrs = si.load_attributes()
    assert set(attrs) == {"topic", "persona", "difficulty", "format"}
    assert len(attrs["topic"]) >= 50 and len(attrs["persona"]) >= 30
    assert all(not v.startswith("#") for vals in attrs.values() for v in vals)
    assert si.attribute_space(attrs) > 100_000
    a = si.sample_attributes(random.Random(1), attrs)
    b = si.sample_attributes(random.Random(1), attrs)
    assert a == b and set(a) == set(attrs)


def test_load_attributes_refuses_empty_list(tmp_path):
    for name in si.ATTRIBUTE_FILES.values():
        (tmp_path / name).write_text("x\n")
    (tmp_path / "topics.txt").write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="topic"):
        si.load_attributes(tmp_path)


# ---------------------------------------------------------------------------- prompts
def test_fewshot_conversation_shape():
    ex = [{"instruction": "Name a fruit.", "input": ""}, {"instruction": "Sum these.", "input": "1, 2"}]
    conv = si.fewshot_conversation(ex)
    assert [m["role"] for m in conv] == ["user", "assistant", "user", "assistant", "user"]
    assert conv[-1]["content"] == si.REQUEST and conv[3]["content"] == "Sum these."
    conv = si.fewshot_conversation(ex, with_input=True)
    assert conv[3]["content"] == "Sum these.\n1, 2"
    attrs = {"topic": "bees", "persona": "a chef", "difficulty": "hard: careful reasoning", "format": "a table"}
    last = si.fewshot_conversation(ex, attrs)[-1]["content"]
    assert "bees" in last and "a chef" in last and "hard" in last and "careful" not in last and "a table" in last


def test_sample_examples_mixes_machine_tasks():
    rng = random.Random(0)
    seeds = [{"instruction": f"s{i}"} for i in range(10)]
    mach = [{"instruction": f"m{i}"} for i in range(3)]
    got = si.sample_examples(rng, seeds, 4, mach, 2)
    assert len(got) == 6 and sum(g["instruction"].startswith("m") for g in got) == 2
    assert len(si.sample_examples(rng, seeds[:2], 4)) == 2  # fewer seeds than asked


def test_response_conversation():
    assert si.response_conversation("Do X.", " ") == [{"role": "user", "content": "Do X."}]
    assert si.response_conversation("Do X.", "data")[0]["content"] == "Do X.\n\ndata"


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("raw, want", [
    ("Write a limerick about a cat.", "Write a limerick about a cat."),
    ("  Task: Write a limerick about a cat.\n\nSure! Here it is...", "Write a limerick about a cat."),
    ("1. Name three rivers in Africa.\n2. Name a mountain.", "Name three rivers in Africa."),
    ('"Explain gravity to a child."', "Explain gravity to a child."),
    ("- Summarise the text.\nThe cat sat on the mat.", "Summarise the text.\nThe cat sat on the mat."),
    ("New instruction: List four prime numbers.", "List four prime numbers."),
])
def test_parse_instruction_cleans(raw, want):
    p = si.parse_instruction(raw)
    assert p.ok and p.instruction == want


@pytest.mark.parametrize("raw, truncated, err", [
    ("", False, "empty"), ("   \n ", False, "empty"), ("1. ", False, "empty"), (None, False, "not text"),
    ("x" * 5000, False, "too long"), ("Write a long essay about the history of", True, "truncated"),
])
def test_parse_instruction_errors(raw, truncated, err):
    p = si.parse_instruction(raw, truncated=truncated)
    assert not p.ok and p.error == err


def test_parse_truncated_but_complete_sentence_is_kept():
    assert si.parse_instruction("Name three birds.", truncated=True).ok


# ---------------------------------------------------------------------------- heuristics
@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("Write.", "too short"),
    ("word " * 200, "too long"),
    ("Напишите короткое стихотворение о весне и солнце", "not english"),
    ("写一首关于春天的诗，不少于八行", "too short"),
    ("Describe the image below in detail.", "needs image or file"),
    ("Draw a diagram of the water cycle.", "needs image or file"),
    ("Open the attached file and count the rows.", "needs image or file"),
    ("Sure! Here is a new task for you.", "not an instruction"),
    ("Output: the answer is forty two.", "not an instruction"),
    ("... and then explain the rest of it", "not an instruction"),
    ("Write a new task instruction about dogs.", "talks about the prompt"),
    ("Topic: cooking. Write a recipe for soup.", "talks about the prompt"),
    ("Solve for x. Write it the way a novelist would ask it.", "talks about the prompt"),
    ("list list list list list list list list list list", "repetitive"),
])
def test_heuristic_reject_reasons(text, reason):
    assert si.heuristic_reject(text) == reason


def test_heuristic_keeps_good_instructions():
    for t in ["Explain why leaves change colour in autumn.", "Write a SQL query that counts users per country.",
              "Give three tips for a first marathon, as a checklist."]:
        assert si.heuristic_reject(t) is None, t


# ---------------------------------------------------------------------------- ROUGE-L
def test_lcs_and_rouge_l():
    assert si.lcs_length("abcbdab", "bdcaba") == 4
    assert si.lcs_length([], [1]) == 0
    assert si.rouge_l([], ["a"]) == 0.0
    assert si.rouge_l(["a", "b"], ["a", "b"]) == 1.0
    assert si.rouge_l(["a", "b", "c", "d"], ["a", "x", "c"]) == pytest.approx(2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))


def _random_sentences(n, seed=0, vocab=60, lo=3, hi=18):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)] + ["the", "a", "of", "to"] * 5
    return [" ".join(rng.choice(words) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def test_novelty_filter_matches_rouge_score_bruteforce():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pool = _random_sentences(150, seed=1, vocab=25)
    queries = _random_sentences(40, seed=2, vocab=25) + [pool[3], pool[7] + " w1", "", "!!!"]
    nf = si.NoveltyFilter(pool)
    for q in queries:
        res = nf.check(q)
        want = max(scorer.score(p, q)["rougeL"].fmeasure for p in pool)
        if want >= nf.threshold:  # early exit: only "not novel" must agree, and the score reaches it
            assert res.score >= nf.threshold
        else:
            assert res.score == pytest.approx(want, abs=1e-9), q
        assert res.novel() == (want < nf.threshold)
        if res.nearest >= 0:
            assert scorer.score(pool[res.nearest], q)["rougeL"].fmeasure == pytest.approx(res.score)


def test_novelty_filter_add_if_novel_and_threshold():
    nf = si.NoveltyFilter(["Write a poem about the sea."])
    added, res = nf.add_if_novel("Write a poem about the sea today.")
    assert not added and res.score >= 0.7 and res.nearest == 0
    added, res = nf.add_if_novel("List the planets of the solar system in order.")
    assert added and len(nf) == 2
    loose = si.NoveltyFilter(["Write a poem about the sea."], threshold=0.95)
    assert loose.add_if_novel("Write a poem about the sea today.")[0]
    assert si.NoveltyFilter().check("anything").score == 0.0


def test_novelty_filter_prunes_pairs_without_changing_the_answer():
    """The length/overlap bound skips the exact LCS for almost every pair, and the nearest item and
    score it reports are the ones a brute-force ROUGE-L over the whole pool finds."""
    from rouge_score import rouge_scorer

    pool = _random_sentences(2000, seed=3, vocab=2000, lo=6, hi=20)
    nf = si.NoveltyFilter(pool)
    queries = _random_sentences(40, seed=4, vocab=2000, lo=6, hi=20) + [pool[7] + " today", pool[99]]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for q in queries:
        res = nf.check(q)
        best = max(scorer.score(p, q)["rougeL"].fmeasure for p in pool)
        assert res.score == pytest.approx(best, abs=1e-9), q
    assert nf.pairs_exact < 0.05 * nf.pairs_checked


# ---------------------------------------------------------------------------- pipeline bookkeeping
def test_filter_candidates_counts_everything():
    nf = si.NoveltyFilter(["Write a poem about the sea."])
    replies = ["Write a poem about the sea.", "", "Describe the picture.", "Name three rivers in Asia.",
               "Name three rivers in Asia!", "Explain how tides work, step by step.", None,
               "Sure! Here you go."]
    log = si.FilterLog()
    out = si.filter_candidates(replies, [False] * len(replies), nf, method="plain", log=log)
    log.check()
    assert log.seen == len(replies) == len(out)
    assert log.kept == 2 and [c.instruction for c in out if c.reason is None] == [
        "Name three rivers in Asia.", "Explain how tides work, step by step."]
    assert log.dropped["rouge-l >= 0.7"] == 2
    assert log.dropped["malformed: empty"] == 1 and log.dropped["malformed: not text"] == 1
    assert log.dropped["needs image or file"] == 1 and log.dropped["not an instruction"] == 1
    df = log.table()
    assert df["count"].sum() == log.seen and "kept" in set(df["outcome"])
    assert "2/8 kept" in str(log)


# ---------------------------------------------------------------------------- rounds and comparison
def _echo_length_lm():
    """Echoes the last request's length; the first reply of each call hits the length limit."""
    state = {"k": 0}

    def reply(msgs):
        state["k"] += 1
        return (f"Task number {len(msgs[-1]['content'])}.", "length" if state["k"] == 1 else "stop")
    return ScriptedLM(reply)


def test_round_items_and_generate_replies():
    seeds, _ = si.load_seed_tasks()
    attrs = si.load_attributes()
    plain = si.round_items("plain", 0, 5, random.Random(0), seeds)
    rand = si.round_items("randomized", 1, 5, random.Random(0), seeds, [{"instruction": "Made earlier."}],
                          attrs, k_seed=3, k_machine=1)
    assert [it["id"] for it in plain] == [f"plain-r0-{i:05d}" for i in range(5)]
    assert all(it[k] == "" for it in plain for k in si.ATTRIBUTE_KEYS)
    assert all(it[k] for it in rand for k in si.ATTRIBUTE_KEYS)
    assert len(rand[0]["conversation"]) == 2 * 4 + 1
    assert any(m["content"] == "Made earlier." for m in rand[0]["conversation"])
    assert plain[0]["conversation"][-1]["content"] == si.REQUEST
    rows = si.generate_replies(_echo_length_lm(), rand, seed=1)
    assert len(rows) == 5 and "conversation" not in rows[0]
    assert rows[0]["truncated"] and not rows[1]["truncated"] and rows[0]["topic"] == rand[0]["topic"]
    json.dumps(rows)  # rows must be JSON-serialisable for job shards
    assert si.shard_seed(0, rand[:2]) == si.shard_seed(0, rand[:2]) != si.shard_seed(0, rand[2:])
    assert si.shard_seed(5, []) == 5


def test_diversity_table_equal_size_and_direction():
    rng = np.random.default_rng(0)
    same = ["write a poem about the sea"] * 30
    varied = [f"task {i} about topic {i * 7} with word{i}" for i in range(50)]
    base = rng.normal(size=(1, 16))
    emb_same = base + 0.01 * rng.normal(size=(30, 16))
    emb_varied = rng.normal(size=(50, 16))
    norm = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    df = si.diversity_table({"same": same, "varied": varied}, {"same": norm(emb_same), "varied": norm(emb_varied)},
                            repeats=5)
    assert (df["n"] == 30).all()
    assert df.loc["varied", "distinct_2"] > df.loc["same", "distinct_2"]
    assert df.loc["varied", "mean_pairwise_cosine"] < df.loc["same", "mean_pairwise_cosine"]
    assert df.loc["same", "near_dup_rate"] == 1.0 and df.loc["same", "distinct_1_std"] == 0.0
    tiny = si.diversity_table({"a": ["x"], "b": varied}, {"a": norm(emb_same[:1]), "b": norm(emb_varied)})
    assert tiny["distinct_2"].isna().all() and list(tiny["n"]) == [1, 1]


def _counting_lm():
    """Echoes the topic of a randomized request (or a numbered plain task); ``n_replies`` counts calls."""
    count = iter(range(1, 10**6))

    def reply(msgs):
        last = msgs[-1]["content"]
        topic = last.split("It must be about ")[1].split(".")[0] if "It must be about" in last else "cooking"
        return f"Explain one surprising fact about {topic} number {next(count)}."
    return ScriptedLM(reply)


def test_bootstrap_equal_budget_counts_and_resumes(tmp_path):
    seeds, _ = si.load_seed_tasks()
    attrs = si.load_attributes()
    lm = _counting_lm()
    kw = dict(n_prompts=7, rounds=2, job_root=tmp_path, config={"model": "fake"}, k_seed=3, k_machine=1,
              batch_size=2, log=None, max_new_tokens=8)
    res = si.bootstrap(lm, seeds, attrs, **kw)
    assert lm.n_replies == 14  # 7 per method, nothing more
    for m in ("plain", "randomized"):
        res.logs[m].check()
        assert res.logs[m].seen == 7 and len(res.candidates[m]) == 7
        assert {c.attributes["round"] for c in res.candidates[m]} == {0, 1}
        assert set(map(id, res.kept(m))) <= set(map(id, res.well_formed(m)))
    # randomized prompts name a topic and this generator follows it; plain ones match a random topic by chance
    assert si.topic_follow_rate(res.kept("randomized"), attrs["topic"]) == 1.0
    assert si.topic_follow_rate(res.kept("plain"), attrs["topic"]) < 0.5
    assert np.isnan(si.topic_follow_rate([], attrs["topic"]))
    # a re-run (kernel restart) reads every reply back from the job shards and generates nothing
    again = si.bootstrap(lm, seeds, attrs, **kw)
    assert lm.n_replies == 14
    assert [c.instruction for c in again.candidates["randomized"]] == [c.instruction for c in res.candidates["randomized"]]
    with pytest.raises(ValueError, match="unknown methods"):
        si.bootstrap(lm, seeds, attrs, methods=("fancy",), **kw)


