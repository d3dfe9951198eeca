"""phi-1 in miniature (chapter 09), part 1: real Python source that ships on the machine as "the web".

phi-1 (Gunasekar et al., 2023, "Textbooks Are All You Need") filtered web code with a classifier trained
on a language model's "educational value" annotations. Our stand-in for web code is the Python source
already on the machine: the standard library and every installed package. :func:`snippet_pool` cuts it
into snippet-sized documents (top-level functions and classes, the methods of classes too long to keep
whole) with :mod:`ast`, and records for each its package, module, file and licence, so a dataset made
from them can say where every row came from.

>>> pool = snippet_pool(packages=["stdlib", "requests"], max_per_package=200, seed=0)
>>> pool[0]["package"], pool[0]["licence"], pool[0]["kind"], pool[0]["name"]
('stdlib', 'PSF-2.0', 'function', 'quote')
>>> features(pool[0]["text"])          # cheap signals to look at: docstring, comment share, ...

:func:`features` gives the cheap surface signals a learner can compare with a model's judgement
(docstring present, share of comment lines, digits share, longest line). Written by hand: ``ast`` and
``importlib.metadata`` do the parsing and the package lookup; the rest is bookkeeping.
"""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import io
import random
import sysconfig
import tokenize
from pathlib import Path
from typing import Any, Sequence

__all__ = ["STDLIB", "STDLIB_SKIP", "package_files", "package_licence", "cut_snippets", "snippet_pool", "features",
           "EDU_QUESTION", "EDU_SHOTS", "edu_messages", "annotate", "best_f1_threshold", "PREDICATES", "AGGREGATORS", "exercise_specs",
           "exercise_program", "cut_body", "function_body", "exercise_chat_prompt", "TEXTBOOK_TOPICS", "AUDIENCES",
           "textbook_prompts", "textbook_section", "word_ngrams", "ngram_overlap", "fill_budget", "run_arm", "run_arms"]

#: The name :func:`snippet_pool` uses for the standard library.
STDLIB = "stdlib"
#: Standard-library folders left out: tests, the IDE, vendored packages and generated tables.
STDLIB_SKIP = ("test", "tests", "idlelib", "lib2to3", "ensurepip", "site-packages", "dist-packages", "turtledemo",
               "tkinter", "__pycache__", "encodings", "pydoc_data", "config-")


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).parts
        if any(part.startswith(STDLIB_SKIP) for part in rel[:-1]) or p.name.startswith("test_"):
            continue
        out.append(p)
    return out


def package_files(package: str) -> list[Path]:
    """The ``.py`` files of an installed distribution (``"stdlib"`` for the standard library), sorted.

    Raises ``ValueError`` naming the package when it is not installed.
    """
    if package == STDLIB:
        return _stdlib_files()
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as err:
        raise ValueError(f"package {package!r} is not installed here: pip install {package}") from err
    files = [Path(dist.locate_file(f)) for f in (dist.files or []) if str(f).endswith(".py")]
    return sorted(p for p in files if p.is_file() and "tests" not in p.parts and "test" not in p.parts)


def package_licence(package: str) -> str:
    """The licence an installed distribution declares (its SPDX expression, else its ``License`` field's
    first line, else its trove classifier), ``"PSF-2.0"`` for the standard library, ``"unknown"`` when
    it declares none."""
    if package == STDLIB:
        return "PSF-2.0"
    meta = metadata.metadata(package)
    for key in ("License-Expression", "License"):
        value = (meta.get(key) or "").strip()
        if value and value.upper() != "UNKNOWN" and len(value.splitlines()[0]) <= 80:
            return value.splitlines()[0]
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    return classifiers[0] if classifiers else "unknown"


def cut_snippets(source: str, *, min_lines: int = 5, max_lines: int = 60) -> list[dict[str, Any]]:
    """Top-level functions and classes of one module's source as ``{"text", "kind", "name", "lines"}``.

    A class longer than ``max_lines`` is cut into its methods (``kind="method"``, ``name="Class.method"``);
    pieces shorter than ``min_lines`` or still too long are left out. Decorators are kept. Source that
    does not parse returns ``[]`` (count those files with :func:`snippet_pool`'s statistics).
    """
    tree = ast.parse(source)
    lines = source.splitlines()

    def piece(node: ast.AST, kind: str, name: str) -> dict[str, Any] | None:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        text = "\n".join(lines[start - 1:node.end_lineno])
        n = node.end_lineno - start + 1
        if not min_lines <= n <= max_lines:
            return None
        indent = len(text) - len(text.lstrip(" "))
        if indent:  # a method: dedent it so it reads as code on its own
            text = "\n".join(l[indent:] if l[:indent].isspace() else l for l in text.splitlines())
        return {"text": text, "kind": kind, "name": name, "lines": n}

    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(piece(node, "function", node.name))
        elif isinstance(node, ast.ClassDef):
            whole = piece(node, "class", node.name)
            if whole is not None:
                out.append(whole)
            elif node.end_lineno - node.lineno + 1 > max_lines:
                out.extend(piece(m, "method", f"{node.name}.{m.name}") for m in node.body
                           if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return [p for p in out if p is not None]


def _site_relative(path: Path) -> Path:
    """``requests/cookies.py`` for ``.../site-packages/requests/cookies.py`` (the import path)."""
    parts = path.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("site-packages", "dist-packages"):
            return Path(*parts[i + 1:])
    return Path(*parts[-2:])


def snippet_pool(*, packages: Sequence[str] | None = None, max_per_package: int | None = 500,
                 min_lines: int = 5, max_lines: int = 60, seed: int = 0,
                 stats: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Snippets of real Python source: ``{"id", "text", "package", "module", "path", "licence", "kind",
    "name", "lines"}`` per snippet.

    Args:
        packages: distribution names, ``"stdlib"`` for the standard library (default: the standard
            library and every installed distribution with Python files).
        max_per_package: at most this many snippets per package, drawn at random (``None``: all), so
            one huge package does not swamp the pool.
        min_lines, max_lines: snippet size, in lines (see :func:`cut_snippets`).
        stats: a dict that receives counts (files read, files that did not parse or decode, exact
            duplicates dropped), so nothing is dropped silently.

    Exact duplicate texts are kept once (vendored copies of the same file are common).
    """
    rng = random.Random(seed)
    if packages is None:
        names = {d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"]}
        packages = [STDLIB] + sorted(names, key=str.lower)
    counts = stats if stats is not None else {}
    for key in ("files", "unparsable", "duplicates", "packages_without_python"):
        counts.setdefault(key, 0)
    seen: set[str] = set()
    pool: list[dict[str, Any]] = []
    for package in packages:
        files = package_files(package)
        if not files:
            counts["packages_without_python"] += 1
            continue
        licence = package_licence(package)
        root = Path(sysconfig.get_paths()["stdlib"]) if package == STDLIB else None
        found = []
        for path in files:
            counts["files"] += 1
            try:
                pieces = cut_snippets(path.read_text(encoding="utf-8"), min_lines=min_lines, max_lines=max_lines)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                counts["unparsable"] += 1
                continue
            rel = path.relative_to(root) if root else _site_relative(path)
            module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
            for p in pieces:
                key = p["text"].strip()
                if key in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(key)
                found.append({**p, "package": package, "module": module, "path": str(rel), "licence": licence})
        if max_per_package is not None and len(found) > max_per_package:
            found = rng.sample(found, max_per_package)
        pool.extend(found)
    for i, p in enumerate(pool):
        p["id"] = f"snip-{i}"
    return pool


def features(text: str) -> dict[str, float]:
    """Cheap surface signals of one snippet: ``lines``, ``has_docstring``, ``comment_share`` (share of
    non-blank lines that are comments), ``digit_share`` (share of characters that are digits: data
    tables score high), ``max_line`` (longest line) and ``mean_name_length`` (mean identifier length)."""
    lines = [l for l in text.splitlines() if l.strip()]
    comments = sum(l.strip().startswith("#") for l in lines)
    names: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME:
                names.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    try:
        node = ast.parse(text).body[0]
        doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
    except (SyntaxError, IndexError):
        doc = None
    return {"lines": float(len(lines)), "has_docstring": float(bool(doc)),
            "comment_share": comments / max(len(lines), 1),
            "digit_share": sum(c.isdigit() for c in text) / max(len(text), 1),
            "max_line": float(max((len(l) for l in lines), default=0)),
            "mean_name_length": float(sum(map(len, names)) / len(names)) if names else 0.0}



#: The question the annotator answers for every snippet (FineWeb-Edu's rubric idea, phi-1's question: "what is
#: the educational value for a student whose goal is to learn basic coding concepts?"), scored 1 to 5.
EDU_QUESTION = ("Rate the educational value of this Python code for a student learning to program, from 1 (none: "
                "internal plumbing that needs other code to make sense) to 5 (excellent: a self-contained, clearly "
                "explained example of a concept).")
#: Worked examples with their scores, for a few-shot annotator (``edu_messages(code, shots=EDU_SHOTS)``). Our own
#: code. Chapter 09 measures whether they help the 0.5B annotator (they triple the prompt).
EDU_SHOTS = (
    ("def _on_close(self, fut):\n    self._waiters.discard(fut)\n    if self._conn is not None and not self._closed:\n"
     "        self._loop.call_soon(self._conn._finish, fut, self._opts[3])", 1),
    ('def average(numbers):\n    """Return the arithmetic mean of a list of numbers.\n\n    >>> average([2, 4, 6])\n'
     '    4.0\n    """\n    # add the numbers up, then divide by how many there are\n    total = 0\n'
     "    for n in numbers:\n        total += n\n    return total / len(numbers)", 5),
    ("def merge_dicts(a, b):\n    out = dict(a)\n    for k, v in b.items():\n        out[k] = v\n    return out", 3),
)


def edu_messages(code: str, *, shots: Sequence[tuple[str, int]] = (), max_chars: int = 1000) -> list[dict[str, str]]:
    """The chat the annotator sees for one snippet: :data:`EDU_QUESTION` and the snippet (cut to ``max_chars``)
    in a fenced block, asking for one digit; ``shots`` (code, score) pairs come first as earlier turns."""
    def turn(c: str) -> dict[str, str]:
        return {"role": "user", "content": f"{EDU_QUESTION}\n\n```python\n{c[:max_chars]}\n```\n\nAnswer with one digit."}

    msgs: list[dict[str, str]] = []
    for shot, score in shots:
        msgs += [turn(shot), {"role": "assistant", "content": str(score)}]
    return msgs + [turn(code)]


def annotate(lm: Any, snippets: Sequence[dict[str, Any]], *, shots: Sequence[tuple[str, int]] = (), max_chars: int = 1000,
             batch_size: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Educational-value scores (1 to 5) of ``snippets`` by the model ``lm``, read from its next-token
    probabilities over the digits 1..5 after :func:`edu_messages` (one forward pass per snippet, nothing
    to parse; the score is the expected digit, :func:`helpers.lm.judge.digit_probs`). With a local llama.cpp
    engine the transformers model scores them (faster for prompts on a CPU); a remote server answers
    from its top log-probabilities.

    Returns ``{"scores", "probs" (n x 5, renormalised over the digits), "digit_mass" (probability the
    digits got before renormalising: low means the model wanted to say something else), "seconds"}``.
    """
    import time

    import numpy as np

    from helpers.lm.judge import digit_probs

    t0 = time.perf_counter()
    texts = [lm.render(edu_messages(s["text"], shots=shots, max_chars=max_chars)) for s in snippets]
    probs, mass = digit_probs(lm, texts, batch_size=batch_size or 4, progress=progress, desc="annotate")
    return {"scores": probs @ np.arange(1, 6), "probs": probs, "digit_mass": mass, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------- the classifier's threshold
def best_f1_threshold(y_true: Sequence[int], proba: Sequence[float]) -> dict[str, float]:
    """The probability threshold with the highest F1 on ``(y_true, proba)`` (scikit-learn's
    ``precision_recall_curve``), with its ``precision``, ``recall`` and ``f1``. Choose it on a
    validation split and report F1 on a test split, or the F1 is optimistic."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y_true).astype(int)
    if y.min() == y.max():
        raise ValueError("best_f1_threshold needs both classes in y_true")
    prec, rec, thr = precision_recall_curve(y, np.asarray(proba, dtype=float))
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-12)
    i = int(np.argmax(f1))
    return {"threshold": float(thr[i]), "precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i])}


# ----------------------------------------------------------------------- exercises (phi-1's CodeExercises)
#: Conditions on one number ``x``: key -> (docstring phrase, Python condition, function). ``{k}`` is a constant.
PREDICATES: dict[str, tuple[str, str, Any]] = {
    "even": ("even", "x % 2 == 0", lambda x, k: x % 2 == 0),
    "odd": ("odd", "x % 2 == 1", lambda x, k: x % 2 == 1),
    "positive": ("positive", "x > 0", lambda x, k: x > 0),
    "negative": ("negative", "x < 0", lambda x, k: x < 0),
    "gt": ("greater than {k}", "x > {k}", lambda x, k: x > k),
    "lt": ("less than {k}", "x < {k}", lambda x, k: x < k),
    "div": ("divisible by {k}", "x % {k} == 0", lambda x, k: x % k == 0),
    "eq": ("equal to {k}", "x == {k}", lambda x, k: x == k),
}
#: What to do with the numbers that meet the condition: key -> (function name, docstring, reference body, function).
AGGREGATORS: dict[str, tuple[str, str, str, Any]] = {
    "count": ("count_{p}", "Return how many numbers in xs are {ph}.", "return sum(1 for x in xs if {c})",
              lambda xs, f: sum(1 for x in xs if f(x))),
    "sum": ("sum_{p}", "Return the sum of the numbers in xs that are {ph}.", "return sum(x for x in xs if {c})",
            lambda xs, f: sum(x for x in xs if f(x))),
    "keep": ("keep_{p}", "Return a list of the numbers in xs that are {ph}.", "return [x for x in xs if {c}]",
             lambda xs, f: [x for x in xs if f(x)]),
    "drop": ("drop_{p}", "Return a list of the numbers in xs that are not {ph}.",
             "return [x for x in xs if not ({c})]", lambda xs, f: [x for x in xs if not f(x)]),
    "any": ("any_{p}", "Return True if any number in xs is {ph}.", "return any({c} for x in xs)",
            lambda xs, f: any(f(x) for x in xs)),
    "all": ("all_{p}", "Return True if every number in xs is {ph}.", "return all({c} for x in xs)",
            lambda xs, f: all(f(x) for x in xs)),
    "first": ("first_{p}", "Return the first number in xs that is {ph}, or None.",
              "return next((x for x in xs if {c}), None)", lambda xs, f: next((x for x in xs if f(x)), None)),
}


def exercise_specs(*, constants: Sequence[int] = (2, 3, 4, 5, 6, 7, 8, 9), n_tests: int = 6,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Every exercise of the family "aggregate the numbers of a list that meet a condition" as
    ``{"id", "agg", "pred", "k", "name", "prompt", "reference", "tests"}``.

    ``prompt`` is a signature plus docstring (what a model completes, as in HumanEval and phi-1's
    CodeExercises), ``reference`` a body that solves it, and ``tests`` assert lines whose expected
    values are computed here in Python, not by any model, on seeded random lists (one of them empty),
    so a solution is checked by running it. 7 aggregations x (4 plain + 4 x ``len(constants)``)
    conditions: 252 exercises with the default constants.
    """
    rng = random.Random(seed)
    out = []
    for agg, (name_t, doc_t, body_t, agg_fn) in AGGREGATORS.items():
        for pred, (phrase, cond, pred_fn) in PREDICATES.items():
            for k in (constants if "{k}" in cond else [None]):
                ph, c = phrase.format(k=k), cond.format(k=k)
                name = name_t.format(p=pred if k is None else f"{pred}{k}")
                prompt = f'def {name}(xs):\n    """{doc_t.format(ph=ph)}"""\n'
                lists = [[]] + [[rng.randint(-10, 10) for _ in range(rng.randint(1, 8))] for _ in range(n_tests - 1)]
                tests = [f"assert {name}({xs!r}) == {agg_fn(xs, lambda x: pred_fn(x, k))!r}" for xs in lists]
                out.append({"id": name, "agg": agg, "pred": pred, "k": k, "name": name, "prompt": prompt,
                            "reference": "    " + body_t.format(c=c) + "\n", "tests": tests})
    return out


def exercise_program(spec: dict[str, Any], body: str) -> str:
    """The program that checks ``body`` (an indented function body) against ``spec``'s tests:
    run it in a sandbox, exit code 0 means it passed."""
    return spec["prompt"] + body.rstrip() + "\n\n\n" + "\n".join(spec["tests"]) + "\n"


def cut_body(completion: str) -> str:
    """The function body at the start of ``completion`` (what follows a prompt): its lines up to the first
    non-blank line that is not indented, so a model that goes on writing the next function is cut."""
    keep = []
    for line in completion.splitlines():
        if line.strip() and not line.startswith((" ", "\t")):
            break
        keep.append(line)
    return "\n".join(keep).rstrip() + "\n"


def function_body(code: str, name: str) -> tuple[str | None, str | None]:
    """The body of function ``name`` in ``code`` (docstring removed, indented by 4 spaces), or
    ``(None, reason)``: ``"syntax"`` when the code does not parse, ``"no function"`` when it has no
    function of that name, ``"empty"`` when the body is only a docstring."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None, "syntax"
    fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if fn is None:
        return None, "no function"
    stmts = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
    if not stmts:
        return None, "empty"
    lines = code.splitlines()[stmts[0].lineno - 1:fn.end_lineno]
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "".join("    " + l[indent:] + "\n" if l.strip() else "\n" for l in lines), None


def exercise_chat_prompt(spec: dict[str, Any]) -> str:
    """What the teacher model is asked, to write a solution of one exercise."""
    return ("Complete this Python function. Answer with one Python code block that contains the whole "
            "function and nothing else.\n\n```python\n" + spec["prompt"] + "```")


# ----------------------------------------------------------------------- textbook sections
#: Concepts the synthetic textbook teaches, and readers it is written for (diversity as chapter 01 injects it).
TEXTBOOK_TOPICS = (
    "counting the items of a list that meet a condition", "adding up only some numbers of a list",
    "keeping the items of a list that meet a condition with a list comprehension",
    "removing the items of a list that meet a condition", "even and odd numbers with the % operator",
    "divisibility with the % operator", "comparing numbers with > and <", "positive, negative and zero",
    "any() and all() with a generator expression", "finding the first matching item with next() and a default",
    "writing a function with a docstring", "loops versus comprehensions", "returning booleans from functions",
    "empty lists and edge cases", "testing a function with assert", "for loops with an if inside",
)
AUDIENCES = ("a complete beginner", "a high-school student", "a data analyst learning Python",
             "a programmer coming from JavaScript", "a maths teacher", "a curious child")


def textbook_prompts(n: int, *, seed: int = 0) -> list[dict[str, str]]:
    """``n`` requests for textbook sections, each a (topic, audience) pair, every topic used before any repeats."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        topics = list(TEXTBOOK_TOPICS)
        rng.shuffle(topics)
        for topic in topics[:n - len(out)]:
            audience = rng.choice(AUDIENCES)
            out.append({"topic": topic, "audience": audience, "prompt": (
                f"Write a short Python lesson on {topic} for {audience}. Answer with one Python code block "
                "only: comments that explain the idea step by step, one small function with a docstring, "
                "and a few example calls with print() whose printed result is shown in a comment. "
                "At most 25 lines.")})
    return out


def textbook_section(reply: str, *, cut_to_parse: bool = False) -> tuple[str | None, str | None]:
    """The code of a textbook reply, or ``(None, reason)``: ``"no code"``, ``"syntax"``, ``"no function"``
    (a lesson must define one).

    The code is the longest fenced block, or the text after an opening fence that was never closed (a
    reply cut by the length limit). ``cut_to_parse=True`` drops whole lines from the end of such code until
    it parses (the lesson loses its unfinished last statement instead of the whole lesson)."""
    import re

    from helpers.core.textutil import code_blocks

    blocks = code_blocks(reply)
    if not blocks:
        m = re.search(r"```(?:python|py)?[ \t]*\n(.*)\Z", reply, flags=re.S)
        if not m:
            return None, "no code"
        blocks = [m.group(1)]
    lines = max(blocks, key=len).strip().splitlines()
    while lines:
        code = "\n".join(lines).strip() + "\n"
        try:
            tree = ast.parse(code)
            break
        except SyntaxError:
            if not cut_to_parse:
                return None, "syntax"
            lines.pop()
    else:
        return None, "syntax"
    if not any(isinstance(n, ast.FunctionDef) for n in ast.walk(tree)):
        return None, "no function"
    return code, None


# ----------------------------------------------------------------------- contamination
def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The set of ``n``-grams of ``text``'s words and symbols (identifiers, numbers, punctuation marks)."""
    import re

    toks = re.findall(r"[A-Za-z_]+|\d+|[^\sA-Za-z_\d]", text)
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def ngram_overlap(texts: Sequence[str], reference: Sequence[str], n: int = 10) -> list[dict[str, Any]]:
    """For each text, how much of it a single reference text already contains: ``{"overlap", "nearest"}``,
    the largest share of its word ``n``-grams found in any one reference text, and that text's index
    (``None`` when nothing overlaps). phi-1 (section 5) looked for HumanEval problems in its exercises by
    n-grams; the share within one reference text finds near-duplicates (the same exercise with another
    constant), which a union over all references would blur. Written by hand: sets of n-grams are all it takes.
    """
    ref = [word_ngrams(r, n) for r in reference]
    out = []
    for t in texts:
        grams = word_ngrams(t, n)
        best, nearest = 0.0, None
        for j, g in enumerate(ref):
            share = len(grams & g) / len(grams) if grams else 0.0
            if share > best:
                best, nearest = share, j
        out.append({"overlap": best, "nearest": nearest})
    return out


# ----------------------------------------------------------------------- corpora of equal budgets
def fill_budget(texts: Sequence[str], budget_chars: int, *, seed: int = 0) -> list[str]:
    """Texts in a seeded random order until ``budget_chars`` characters: the last one is cut so the total is
    exactly the budget. Raises ``ValueError`` when all of ``texts`` together are shorter than the budget
    (an arm that ran short would not be an equal-budget comparison)."""
    total = sum(len(t) for t in texts)
    if total < budget_chars:
        raise ValueError(f"only {total:,} characters for a budget of {budget_chars:,}: lower the budget")
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    out, n = [], 0
    for i in order:
        if n >= budget_chars:
            break
        t = texts[i][:budget_chars - n]
        out.append(t)
        n += len(t)
    return out


# ----------------------------------------------------------------------- one arm: pretrain, fine-tune, sample
def run_arm(job: dict[str, Any]) -> dict[str, Any]:
    """Pretrain a :class:`~helpers.train.tiny.TinyLM` on ``job["corpus"]``, then fine-tune it on
    ``job["exercises"]``; greedy completions of ``job["eval_prompts"]`` before and after the fine-tune,
    and the loss (nats per character, over whole texts cut into context-sized pieces) on each set of
    ``job["loss_sets"]`` before and after: ``"loss"`` per set, ``"loss_items"`` per text of each set (for
    intervals over texts).

    ``job`` keys: ``corpus``, ``exercises``, ``eval_prompts``, ``loss_sets`` (name -> texts), ``chars``
    (the tokenizer's alphabet), ``config`` (:class:`~helpers.train.tiny.TinyConfig` fields except the
    vocabulary), ``pretrain`` and ``finetune`` (``train_tiny`` keyword arguments: ``steps``, ``lr``,
    ``batch_size``, ``seq_len``), ``seed``, ``threads``, ``max_new_tokens`` and ``checkpoint_dir``
    (each phase resumes from its own checkpoints there after a crash). A top-level function of plain
    data, so :func:`run_arms` can run several at once in separate processes. The completions are
    returned as text: running them is the sandbox's job (``helpers.verify``), not this stage's.
    """
    import time

    import numpy as np
    import torch

    from helpers.train import tiny

    torch.set_num_threads(int(job.get("threads", 1)))
    t0 = time.perf_counter()
    tok = tiny.CharTokenizer(job["chars"])
    cfg = tiny.TinyConfig(vocab_size=tok.vocab_size, **job["config"])
    model = tiny.TinyLM(cfg, seed=job["seed"])
    ck = Path(job["checkpoint_dir"])

    # score whole texts, not only their openings: each text is cut into pieces the model's context holds
    step = cfg.max_len - 1
    pieces = {name: [t[i:i + step] for t in texts for i in range(0, len(t), step)]
              for name, texts in job["loss_sets"].items()}
    owner = {name: np.array([k for k, t in enumerate(texts) for _ in range(0, len(t), step)])
             for name, texts in job["loss_sets"].items()}

    def losses() -> tuple[dict[str, float], dict[str, list[float]]]:
        out, per_text = {}, {}
        for name, chunks in pieces.items():
            ppl = tiny.perplexity(model, tok, chunks)
            n = np.array([len(c) + 1 for c in chunks], dtype=float)  # characters and <eos> of each piece
            nats = np.log(ppl) * n
            out[name] = float(nats.sum() / n.sum())
            k = len(job["loss_sets"][name])
            per_text[name] = (np.bincount(owner[name], nats, k) / np.maximum(np.bincount(owner[name], n, k), 1)).tolist()
        return out, per_text

    def complete() -> list[str]:
        outs = tiny.generate(model, tok, job["eval_prompts"], max_new_tokens=job.get("max_new_tokens", 64))
        return [cut_body(o) for o in outs]

    pre = None
    if job["pretrain"].get("steps", 0) > 0 and job["corpus"]:  # an arm without pre-training starts from random weights
        pre = tiny.train_tiny(model, job["corpus"], tokenizer=tok, seed=job["seed"],
                              checkpoint_dir=ck / "pretrain", progress=False, **job["pretrain"])
    loss, loss_items = losses()
    before = {"loss": loss, "loss_items": loss_items, "completions": complete()}
    ft = tiny.train_tiny(model, job["exercises"], tokenizer=tok, seed=job["seed"], checkpoint_dir=ck / "finetune",
                         progress=False, **job["finetune"])
    loss, loss_items = losses()
    after = {"loss": loss, "loss_items": loss_items, "completions": complete()}
    return {"arm": job.get("arm", ""), "seed": job["seed"], "parameters": model.num_parameters(),
            "before": before, "after": after, "pretrain_loss": pre.final_loss if pre else float("nan"),
            "finetune_loss": ft.final_loss, "pretrain_tokens": pre.tokens if pre else 0,
            "pretrain_seconds": pre.seconds if pre else 0.0, "seconds": time.perf_counter() - t0}


def run_arms(jobs: Sequence[dict[str, Any]], workers: int = 1) -> list[dict[str, Any]]:
    """:func:`run_arm` for every job, ``workers`` processes at a time (each with ``job["threads"]`` torch
    threads; on a 2-core machine two one-thread processes train tiny models faster than one process with
    two threads), results in the order of ``jobs``."""
    if workers <= 1:
        return [run_arm(j) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(run_arm, jobs))
