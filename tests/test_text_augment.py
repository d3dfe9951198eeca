"""Tests for helpers.text.augment: typo noise, table QA templates, safety mixes and the rule checks."""

import pytest

from helpers.core.env import data_dir
from helpers.core.io import load_jsonl
from helpers.text import augment as A


# --------------------------------------------------------------------------- typo noise
def test_neighbours_are_symmetric_and_local():
    nb = A.keyboard_neighbours()
    assert set(nb) == set("abcdefghijklmnopqrstuvwxyz")
    assert set(nb["g"]) == set("fhtybv")
    assert set(nb["q"]) == set("wa")
    for c, near in nb.items():
        for d in near:
            assert c in nb[d], (c, d)


def test_add_typos_rate_zero_and_one():
    s = "Which of these has the highest alcohol? 13.2"
    assert A.add_typos(s, 0.0, seed=1) == s
    noisy = A.add_typos(s, 1.0, seed=1)
    assert noisy != s
    assert "13.2" in noisy  # digits and punctuation are never touched


def test_add_typos_is_reproducible_and_seed_dependent():
    s = "the quick brown fox jumps over the lazy dog" * 3
    assert A.add_typos(s, 0.2, seed=3) == A.add_typos(s, 0.2, seed=3)
    assert A.add_typos(s, 0.2, seed=3) != A.add_typos(s, 0.2, seed=4)


def test_measured_error_rate_tracks_the_requested_rate():
    s = "abcdefghij klmnopqrst uvwxyz " * 8  # 26 letters of 29 characters per repeat
    means = []
    for rate in (0.05, 0.1, 0.2):
        cers = [A.char_error_rate(s, A.add_typos(s, rate, seed=i)) for i in range(30)]
        means.append(sum(cers) / len(cers))
        # each corrupted letter costs one edit (two for a swap, at most); letters are 26/29 of the text
        assert 0.6 * rate * 26 / 29 < means[-1] < 1.3 * rate * 26 / 29 + 0.01, (rate, means[-1])
    assert means == sorted(means)


def test_single_operations_do_what_they_say():
    s = "hello world"
    deleted = A.add_typos(s, 1.0, seed=0, ops=("delete",))
    assert deleted == " "  # every letter deleted, the space stays
    inserted = A.add_typos(s, 1.0, seed=0, ops=("insert",))
    assert len(inserted) == 2 * 10 + 1 and inserted[0] == "h"
    nb = A.keyboard_neighbours()
    subbed = A.add_typos("g", 1.0, seed=0, ops=("substitute",))
    assert subbed in nb["g"]
    assert A.add_typos("G", 1.0, seed=0, ops=("substitute",)).isupper()
    swapped = A.add_typos("ab", 1.0, seed=0, ops=("swap",))
    assert swapped == "ba"


def test_add_typos_rejects_bad_input():
    with pytest.raises(ValueError, match="rate"):
        A.add_typos("x", 1.5)
    with pytest.raises(ValueError, match="unknown typo"):
        A.add_typos("x", 0.1, ops=("shout",))
    with pytest.raises(TypeError):
        A.add_typos(None, 0.1)


def test_char_error_rate():
    assert A.char_error_rate("kitten", "sitting") == pytest.approx(3 / 6)
    assert A.char_error_rate("abc", "abc") == 0.0
    assert A.char_error_rate("", "") == 0.0


def test_noisy_copies_sizes_and_labels():
    texts, labels = A.noisy_copies(["one text here", "another"], ["a", "b"], copies=3, max_rate=0.3, seed=0)
    assert len(texts) == 8 and labels == ["a"] * 4 + ["b"] * 4
    assert texts[0] == "one text here" and texts[4] == "another"
    texts2, _ = A.noisy_copies(["one text here"], ["a"], copies=2, max_rate=0.3, keep_clean=False)
    assert len(texts2) == 2
    with pytest.raises(ValueError, match="differ"):
        A.noisy_copies(["x"], [], copies=1, max_rate=0.1)


# --------------------------------------------------------------------------- tables to QA
def test_sklearn_table_shape():
    t = A.sklearn_table("iris", n_rows=10, seed=0)
    assert t["columns"] == ["sepal length", "sepal width", "petal length", "petal width"]
    assert len(t["rows"]) == 10 and t["rows"][0]["id"].startswith("flower ")
    t2 = A.sklearn_table("wine", columns=["alcohol"])
    assert t2["columns"] == ["alcohol"] and len(t2["rows"]) == 178
    with pytest.raises(ValueError, match="unknown table"):
        A.sklearn_table("titanic")
    with pytest.raises(ValueError, match="not in table"):
        A.sklearn_table("iris", columns=["colour"])


def test_table_qa_answers_are_computed_from_the_rows():
    t = A.sklearn_table("wine", n_rows=50, seed=1)
    by_id = {r["id"]: r for r in t["rows"]}
    items = A.table_qa(t, n=40, seed=2)
    assert [it["intent"] for it in items[:5]] == list(A.QA_TEMPLATES)  # intents cycle
    for it in items:
        assert A.check_qa(it) is None
        names = [f for f in it["facts"] if f in by_id]
        vals = [by_id[n][it["column"]] for n in names]
        if it["intent"] == "max":
            assert it["value"] == names[vals.index(max(vals))]
        elif it["intent"] == "min":
            assert it["value"] == names[vals.index(min(vals))]
        elif it["intent"] == "mean":
            assert it["value"] == pytest.approx(sum(vals) / len(vals))
        elif it["intent"] == "difference":
            assert it["value"] == pytest.approx(vals[0] - vals[1])
        elif it["intent"] == "count":
            thr = float(it["facts"][-1])
            assert it["value"] == sum(v > thr for v in vals)
            assert 1 <= it["value"] <= len(vals) - 1


def test_table_qa_template_ids_restrict_templates():
    t = A.sklearn_table("iris", n_rows=30)
    items = A.table_qa(t, n=20, seed=0, template_ids=[1])
    assert {it["template_id"] for it in items} == {1}
    with pytest.raises(ValueError, match="no templates"):
        A.table_qa(t, n=2, intents=["median"])


def test_check_qa_reasons():
    good = {"question": "Which has the highest ash? wine 1: ash 2.4; wine 2: ash 2.1", "answer": "wine 1.",
            "facts": ["wine 1", "wine 2", "2.4", "2.1"]}
    assert A.check_qa(good) is None
    assert A.check_qa({**good, "question": ""}) == "empty question"
    assert A.check_qa({**good, "question": good["question"] + " {col}"}) == "unfilled slot"
    assert A.check_qa({**good, "answer": " "}) == "no answer"
    assert A.check_qa({**good, "facts": good["facts"] + ["9.9"]}) == "missing fact"


def test_kept_facts_matches_whole_numbers():
    assert A.kept_facts(["1.4", "flower 3"], "Is flower 3 at 1.4 cm?") is None
    assert A.kept_facts(["1.4"], "the value 11.4") == "1.4"
    assert A.kept_facts(["1.4"], "the value 1.45") == "1.4"
    assert A.kept_facts(["flower 3"], "flower 31 is tall") == "flower 3"
    assert A.kept_facts(["2"], "exactly 2.") is None  # a full stop after a number is fine


# --------------------------------------------------------------------------- safety data
def test_seed_files_load_and_have_what_the_builders_need():
    u = load_jsonl(data_dir() / "safety_seeds.jsonl", required=("prompt", "alternative", "category"))
    b = load_jsonl(data_dir() / "benign_risky.jsonl", required=("prompt",))
    p = load_jsonl(data_dir() / "false_premises.jsonl", required=("question", "correction"))
    i = load_jsonl(data_dir() / "instructions_small.jsonl", required=("prompt", "completion"))
    h = load_jsonl(data_dir() / "reply_hand_labels.jsonl", required=("reply", "refusal", "corrects_premise"))
    assert min(len(u), len(b), len(p), len(i), len(h)) >= 30
    prompts = [r["prompt"] for r in u + b + i] + [r["question"] for r in p]
    assert len(set(prompts)) == len(prompts)  # no prompt in two roles


def test_load_jsonl_errors(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": 1}\n\nnot json\n')
    with pytest.raises(ValueError, match=r"x.jsonl:3"):
        load_jsonl(f)
    f.write_text('{"a": 1}\n')
    with pytest.raises(ValueError, match="missing"):
        load_jsonl(f, required=("b",))


def test_replies_have_the_shape_the_rules_check():
    rows = A.safety_examples([{"prompt": "Write a mean note.", "alternative": "Instead, I can help with a kind one."}],
                             [{"question": "Why is the Moon made of cheese?", "correction": "The Moon is made of rock."}])
    assert [r["kind"] for r in rows] == ["refusal", "correction"]
    assert rows[0]["completion"].endswith("Instead, I can help with a kind one.")
    assert A.is_refusal(rows[0]["completion"])
    assert rows[1]["completion"] == "Actually, the Moon is made of rock."
    assert A.corrects_premise(rows[1]["completion"])
    for tpl in A.REFUSAL_TEMPLATES:
        assert A.is_refusal(tpl.format(alt="Instead, I can help.")), tpl
    with pytest.raises(ValueError, match="alternative"):
        A.refusal_reply({"prompt": "x"})
    with pytest.raises(ValueError, match="correction"):
        A.correction_reply({"question": "x"})


def test_safety_mix_share_and_errors():
    ordinary = [{"prompt": f"o{i}", "completion": "c"} for i in range(30)]
    safety = [{"prompt": f"s{i}", "completion": "c"} for i in range(4)]
    for share, n, want in ((0.0, 40, 0), (0.05, 40, 2), (0.3, 40, 12), (1.0, 10, 10)):
        rows = A.safety_mix(ordinary, safety, share=share, n=n, seed=1)
        assert len(rows) == n
        assert sum(r["prompt"].startswith("s") for r in rows) == want
    rows = A.safety_mix(ordinary, safety, share=0.2, n=40, seed=1)  # 8 safety rows from a pool of 4
    assert {r["prompt"] for r in rows if r["prompt"].startswith("s")} == {f"s{i}" for i in range(4)}
    with pytest.raises(ValueError, match="share"):
        A.safety_mix(ordinary, safety, share=1.2, n=10)
    with pytest.raises(ValueError, match="safety pool is empty"):
        A.safety_mix(ordinary, [], share=0.5, n=10)


@pytest.mark.parametrize("text, want", [
    ("I can't help with that, because it could hurt someone.", True),
    ("I'm sorry, but I won't write that.", True),
    ("I'm sorry for any confusion, but as a chatbot I don't have the capability to do that.", True),
    ("That would be illegal.", True),
    ("Sure! Open a terminal and run kill with the process id.", False),
    ("I'm sorry to hear that. Here is how to unlock it.", False),
    ("", False),
])
def test_is_refusal(text, want):
    assert A.is_refusal(text) is want


def test_is_refusal_looks_only_at_the_first_sentences():
    text = "Here is the review. It is short. I'm sorry, but I made it up."
    assert A.is_refusal(text, sentences=3) is True
    assert A.is_refusal(text) is False  # the default window is two sentences


@pytest.mark.parametrize("text, want", [
    ("Actually, the Great Wall is not visible from the Moon.", True),
    ("That's a common myth: goldfish remember for months.", True),
    ("It is not true that sugar makes children hyperactive.", True),
    ("The Titanic sank in the Pacific because it hit an iceberg.", False),
    ("Camels store water in their humps.", False),
    (None, False),
])
def test_corrects_premise(text, want):
    assert A.corrects_premise(text) is want


def test_rule_agreement_counts():
    r = A.rule_agreement([True, True, False, False], [True, False, True, False])
    assert (r["tp"], r["fn"], r["fp"], r["tn"]) == (1, 1, 1, 1)
    assert r["agreement"] == 0.5 and r["kappa"] == pytest.approx(0.0)
    perfect = A.rule_agreement([True, False, True], [True, False, True])
    assert perfect["agreement"] == 1.0 and perfect["kappa"] == pytest.approx(1.0)
    const = A.rule_agreement([False, False], [False, False])
    assert const["precision"] != const["precision"]  # NaN: no positive prediction
    with pytest.raises(ValueError):
        A.rule_agreement([True], [])


def test_rules_agree_with_the_hand_labels_file():
    """The shipped hand labels: the rules must agree on most items (the notebook reports the exact numbers)."""
    rows = load_jsonl(data_dir() / "reply_hand_labels.jsonl")
    ref = A.rule_agreement([r["refusal"] for r in rows], [A.is_refusal(r["reply"]) for r in rows])
    cor = A.rule_agreement([r["corrects_premise"] for r in rows], [A.corrects_premise(r["reply"]) for r in rows])
    assert ref["agreement"] >= 0.85 and cor["agreement"] >= 0.85
    assert ref["tp"] >= 5 and cor["tp"] >= 3  # both classes are present, so agreement is not just "always no"


def test_table_qa_ask_is_the_question_without_its_rows_and_with_data_puts_them_back():
    from helpers.text import augment

    table = augment.sklearn_table("wine", n_rows=20, seed=0)
    items = augment.table_qa(table, n=10, seed=1)
    for it in items:
        assert it["data"] in it["question"] and it["data"] not in it["ask"]
        assert augment.kept_facts(it["ask_facts"], it["ask"]) is None  # the ask carries its own facts
        assert it["column"] in it["ask_facts"]
        if it["intent"] == "difference":
            assert len(it["ask_facts"]) == 3  # the column and the two rows compared
        joined = augment.with_data(it["ask"], it["data"])
        assert augment.kept_facts(it["facts"], joined) is None  # with the rows attached, every fact is back
    assert augment.with_data("Which one is biggest", "a: 1; b: 2") == "Which one is biggest: a: 1; b: 2"
