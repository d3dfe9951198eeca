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
           "EDU_RUBRIC", "annotate"]

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



#: A FineWeb-Edu-style rubric for code (Penedo et al., 2024, adapted to Python snippets as phi-1's
#: annotation prompt asked about "educational value for a student whose goal is to learn basic coding
#: concepts"). ``{prompt}`` is where the snippet comes from, ``{response}`` the code.
EDU_RUBRIC = """Rate how useful this Python code is for teaching a student basic programming concepts.
1: no educational value: boilerplate, data tables, configuration, generated or obscure code
2: some valid code, but hard to follow without its context, or mostly plumbing
3: readable code showing a common pattern, with little explanation
4: clear, self-contained code with meaningful names and some comments or a docstring
5: excellent teaching material: self-contained, well explained, shows a concept step by step

Where it is from: {prompt}

Code:
<<<{response}>>>

Answer with JSON only: {"score": N} where N is 1, 2, 3, 4 or 5."""


def annotate(lm: Any, snippets: Sequence[dict[str, Any]], *, rubric: str = EDU_RUBRIC, max_chars: int = 1200,
             batch_size: int | None = None, progress: bool = True):
    """Educational-value scores (1 to 5, expected value over the digits) of ``snippets`` by the judge ``lm``,
    read from the next-token probabilities after ``{"score": `` (:class:`helpers.lm.judge.Judge`,
    ``method="logprobs"``): one forward pass per snippet, nothing to parse. Returns the
    :class:`~helpers.lm.judge.JudgeResult` (``.scores``; ``.digit_mass``: how much probability the digits got)."""
    from helpers.lm.judge import Judge

    where = [f"{s.get('package', '?')}, module {s.get('module', '?')}" for s in snippets]
    return Judge(lm, rubric, max_chars=max_chars).score(where, [s["text"] for s in snippets], method="logprobs",
                                                        batch_size=batch_size, progress=progress)
