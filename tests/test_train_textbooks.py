"""Tests for helpers.train.textbooks: the snippet pool of real Python source (chapter 09)."""
from __future__ import annotations

import textwrap

import pytest

from helpers.train import textbooks as tb

SOURCE = textwrap.dedent('''
    import os


    def tiny(x):
        return x


    @staticmethod
    def decorated(a, b):
        """Add two numbers."""
        # the sum
        total = a + b
        return total


    class Small:
        def __init__(self):
            self.a = 1
            self.b = 2
            self.c = 3


    class Big:
        def first(self, items):
            out = []
            for item in items:
                out.append(item)
            return out

        def second(self):
            return 1
''')


def test_cut_snippets_keeps_functions_and_classes_of_the_right_size():
    pieces = tb.cut_snippets(SOURCE, min_lines=4, max_lines=8)
    names = {p["name"]: p for p in pieces}
    assert "tiny" not in names  # 2 lines: too short
    assert names["decorated"]["text"].startswith("@staticmethod\ndef decorated")  # decorator kept
    assert names["decorated"]["kind"] == "function" and names["decorated"]["lines"] == 6
    assert names["Small"]["kind"] == "class"
    # Big has 10 lines: cut into methods, dedented, the short one dropped
    assert names["Big.first"]["kind"] == "method"
    assert names["Big.first"]["text"].startswith("def first(self, items):\n    out = []")
    assert "Big.second" not in names and "Big" not in names


def test_cut_snippets_raises_on_source_that_does_not_parse():
    with pytest.raises(SyntaxError):
        tb.cut_snippets("def broken(:\n    pass\n")


def test_unknown_package_is_named():
    with pytest.raises(ValueError, match="no-such-package-xyz"):
        tb.package_files("no-such-package-xyz")


def test_licences():
    assert tb.package_licence("stdlib") == "PSF-2.0"
    assert tb.package_licence("requests") == "Apache-2.0"


def test_pool_records_provenance_and_keeps_each_text_once():
    stats = {}
    pool = tb.snippet_pool(packages=["stdlib", "requests"], max_per_package=40, seed=0, stats=stats)
    assert len(pool) == 80
    assert {p["package"] for p in pool} == {"stdlib", "requests"}
    assert all(p["licence"] == "PSF-2.0" for p in pool if p["package"] == "stdlib")
    assert len({p["text"].strip() for p in pool}) == len(pool)
    assert len({p["id"] for p in pool}) == len(pool)
    assert all(5 <= p["lines"] <= 60 and p["path"].endswith(".py") and p["module"] for p in pool)
    assert all(p["module"].startswith("requests") for p in pool if p["package"] == "requests")
    assert stats["files"] > 100 and stats["unparsable"] >= 0
    again = tb.snippet_pool(packages=["stdlib", "requests"], max_per_package=40, seed=0)
    assert [p["text"] for p in again] == [p["text"] for p in pool]  # seeded


def test_features():
    f = tb.features('def f(a):\n    """Doc."""\n    # note\n    return a + 12345\n')
    assert f["has_docstring"] == 1.0 and f["lines"] == 4
    assert f["comment_share"] == pytest.approx(0.25)
    assert f["digit_share"] > 0.05
    plain = tb.features("def g(x):\n    return x\n")
    assert plain["has_docstring"] == 0.0 and plain["comment_share"] == 0.0


# ----------------------------------------------------------------------- exercises
def test_exercise_family_is_complete_and_its_tests_check_the_reference():
    specs = tb.exercise_specs(seed=0)
    assert len(specs) == 7 * (4 + 4 * 8) == 252
    assert len({s["name"] for s in specs}) == len(specs)
    s = next(x for x in specs if x["name"] == "count_div3")
    assert s["prompt"] == 'def count_div3(xs):\n    """Return how many numbers in xs are divisible by 3."""\n'
    assert s["reference"] == "    return sum(1 for x in xs if x % 3 == 0)\n"
    assert s["tests"][0] == "assert count_div3([]) == 0"
    # the expected values come from Python functions, not from the reference text: they must agree
    for spec in specs:
        ns = {}
        exec(tb.exercise_program(spec, spec["reference"]), ns)  # raises AssertionError if they disagree
    wrong = next(x for x in specs if x["name"] == "keep_even")
    with pytest.raises(AssertionError):
        exec(tb.exercise_program(wrong, "    return [x for x in xs if x % 2 == 1]\n"), {})
    assert tb.exercise_specs(seed=0) == specs and tb.exercise_specs(seed=1) != specs


def test_cut_body_stops_at_the_next_top_level_line():
    assert tb.cut_body("    return 1\n\n\ndef other():\n    pass\n") == "    return 1\n"
    assert tb.cut_body("    x = 1\n\n    return x\nprint(1)") == "    x = 1\n\n    return x\n"
    assert tb.cut_body("") == "\n"


def test_function_body_reads_a_named_function_and_names_what_went_wrong():
    code = 'import os\n\ndef f(xs):\n    """Doc."""\n    y = [x for x in xs]\n\n    return y\n\nprint(f([1]))\n'
    assert tb.function_body(code, "f") == ("    y = [x for x in xs]\n\n    return y\n", None)
    assert tb.function_body(code, "g") == (None, "no function")
    assert tb.function_body("def f(:\n", "f") == (None, "syntax")
    assert tb.function_body('def f():\n    """Only a docstring."""\n', "f") == (None, "empty")
    # a method-style indentation is brought back to four spaces
    body, _ = tb.function_body("class A:\n    def f(self):\n        return 1\n", "f")
    assert body == "    return 1\n"


def test_textbook_section_keeps_code_that_parses_and_can_cut_an_unfinished_end():
    reply = 'Lesson:\n```python\n# add\ndef add(a, b):\n    """Sum."""\n    return a + b\nprint(add(1, 2))  # 3\nprint(add(\n'
    assert tb.textbook_section(reply) == (None, "syntax")
    code, why = tb.textbook_section(reply, cut_to_parse=True)
    assert why is None and code.endswith("print(add(1, 2))  # 3\n")
    assert tb.textbook_section("no code here") == (None, "no code")
    assert tb.textbook_section("```python\nx = 1\n```") == (None, "no function")
    prompts = tb.textbook_prompts(len(tb.TEXTBOOK_TOPICS) + 3, seed=0)
    first = [p["topic"] for p in prompts[:len(tb.TEXTBOOK_TOPICS)]]
    assert sorted(first) == sorted(tb.TEXTBOOK_TOPICS)  # every topic once before any repeats
    assert all(p["audience"] in tb.AUDIENCES and p["topic"] in p["prompt"] for p in prompts)


def test_ngram_overlap_finds_the_nearest_single_text():
    a = 'def count_gt3(xs):\n    """Return how many numbers in xs are greater than 3."""\n'
    b = 'def count_gt5(xs):\n    """Return how many numbers in xs are greater than 5."""\n'
    c = 'def keep_odd(xs):\n    """Return a list of the numbers in xs that are odd."""\n'
    out = tb.ngram_overlap([a, c], [c, b], n=4)
    assert out[0]["nearest"] == 1 and 0.5 < out[0]["overlap"] < 1
    assert out[1] == {"overlap": 1.0, "nearest": 0}
    assert tb.ngram_overlap(["short"], [a], n=4) == [{"overlap": 0.0, "nearest": None}]


def test_fill_budget_is_exact_seeded_and_refuses_to_run_short():
    texts = ["a" * 10, "b" * 20, "c" * 30]
    out = tb.fill_budget(texts, 45, seed=0)
    assert sum(map(len, out)) == 45 and out == tb.fill_budget(texts, 45, seed=0)
    with pytest.raises(ValueError, match="budget"):
        tb.fill_budget(texts, 61)


def test_best_f1_threshold():
    y = [0, 0, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.6, 0.5, 0.8, 0.9]
    best = tb.best_f1_threshold(y, p)
    assert best["threshold"] == pytest.approx(0.5) and best["f1"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError):
        tb.best_f1_threshold([1, 1], [0.2, 0.3])


def test_run_arm_trains_resumes_and_returns_completions(tmp_path):
    corpus = ["def f(x):\n    return x + 1\n"] * 20
    ex = ['def g(xs):\n    """Doc."""\n    return xs\n'] * 10
    chars = sorted(set("".join(corpus + ex)))
    job = {"arm": "t", "seed": 0, "corpus": corpus, "exercises": ex, "eval_prompts": ['def g(xs):\n    """Doc."""\n'],
           "loss_sets": {"code": [corpus[0], "".join(corpus[:6])]}, "chars": chars,
           "config": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "max_len": 64},
           "pretrain": {"steps": 3, "batch_size": 4, "seq_len": 32}, "finetune": {"steps": 2, "batch_size": 4, "seq_len": 64},
           "threads": 1, "max_new_tokens": 8, "checkpoint_dir": str(tmp_path)}
    r = tb.run_arm(job)
    assert r["pretrain_tokens"] > 0 and len(r["after"]["completions"]) == 1
    assert set(r["before"]["loss"]) == {"code"} and r["before"]["loss"]["code"] > 0
    # one loss per text (the second is cut into three context-sized pieces); weighted by characters they
    # give the set's loss
    items = r["before"]["loss_items"]["code"]
    weights = [len(corpus[0]) + 1, len("".join(corpus[:6])) + 3]
    assert len(items) == 2 and all(v > 0 for v in items)
    assert sum(v * w for v, w in zip(items, weights)) / sum(weights) == pytest.approx(r["before"]["loss"]["code"])
    again = tb.run_arm(job)  # both phases find their finished checkpoints: nothing is trained twice
    assert again["pretrain_tokens"] == 0
    assert again["after"]["completions"] == r["after"]["completions"]
    none = tb.run_arm({**job, "pretrain": {"steps": 0}, "checkpoint_dir": str(tmp_path / "none")})
    assert none["pretrain_tokens"] == 0 and none["pretrain_seconds"] == 0.0


class FakeAnnotator:
    """Next-token log-probs from the number of lines of the snippet in the prompt: the real annotate code
    (rendering, digit ids, renormalising) on a model whose answer we know."""

    def token_ids(self, text):
        return [ord(text)] if len(text) == 1 else [0, 0]

    def render(self, msgs):
        return msgs[-1]["content"]

    def next_token_logprobs(self, texts, ids, **kw):
        import numpy as np

        out = np.full((len(texts), len(ids)), -30.0)
        for i, t in enumerate(texts):
            k = min(5, t.count("\n") - 4)  # question + fence lines, then one per code line
            out[i, k - 1] = np.log(0.9)  # 10% of the mass goes to other tokens
        return out


def test_annotate_reads_the_expected_digit_and_the_mass_on_the_digits():
    import numpy as np

    snippets = [{"text": "x = 1"}, {"text": "a\nb\nc"}]
    r = tb.annotate(FakeAnnotator(), snippets, progress=False)
    assert np.allclose(r["digit_mass"], 0.9, atol=1e-6)
    assert np.allclose(r["probs"].sum(1), 1)
    assert r["scores"][1] > r["scores"][0] and 1 <= r["scores"].min() <= r["scores"].max() <= 5
    msgs = tb.edu_messages("x = 1", shots=tb.EDU_SHOTS)
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 3 + ["user"]
    assert "```python\nx = 1\n```" in msgs[-1]["content"] and tb.edu_messages("x = 1")[0] == msgs[-1]
