"""The shape of ``helpers``: stages, the import rule, lazy packages, and the chapter -> module table.

A newcomer reads the folder names to find where a pipeline stage lives; these tests keep
that reading true. ``import_violations`` is the rule itself, so the test that feeds it a
cross-stage import shows that it bites.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "helpers"
STAGES = ("core", "lm", "text", "verify", "speech", "train", "vision", "scale")


def allowed_imports(stage: str) -> set[str]:
    """The ``helpers`` packages a module of ``stage`` may import from."""
    if stage == "core":
        return {"core"}
    if stage == "lm":
        return {"core", "lm"}
    return {"core", "lm", stage}


def _absolute(node: ast.ImportFrom, module_path: Path) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against the file)."""
    if not node.level:
        return node.module or ""
    parts = list(module_path.relative_to(ROOT).with_suffix("").parts)
    base = parts[: len(parts) - node.level]
    return ".".join(base + ([node.module] if node.module else []))


def import_violations(path: Path) -> list[str]:
    """Every import in ``path`` (a module under ``helpers/<stage>/``) that breaks the layout rule."""
    stage = path.relative_to(PKG).parts[0]
    ok = allowed_imports(stage)
    problems = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[tuple[str, list[str]]] = []
        if isinstance(node, ast.Import):
            targets = [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = [(_absolute(node, path), [a.name for a in node.names])]
        for mod, names in targets:
            parts = mod.split(".")
            if parts[0] != "helpers":
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if len(parts) == 1:
                problems.append(f"{where} imports the top-level package 'helpers' instead of a stage module")
                continue
            if parts[1] not in ok:
                problems.append(f"{where} ({stage}) imports {mod}: a {stage} module may import only "
                                f"{sorted(ok)}")
            for n in names:
                if n.startswith("_"):
                    problems.append(f"{where} imports the private name {n} from {mod}")
    return problems


def helper_modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.parent != PKG)


def test_helpers_is_split_into_stages_with_no_flat_module_left():
    flat = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"flat modules left in helpers/: {flat} (move them into a stage package)"
    folders = sorted(p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__"))
    assert folders == sorted(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_lists_exactly_its_modules(stage):
    import importlib

    pkg = importlib.import_module(f"helpers.{stage}")
    files = sorted(p.stem for p in (PKG / stage).glob("*.py") if p.name != "__init__.py")
    assert sorted(pkg.__all__) == files
    for name in files:  # each one reachable through the lazy attribute
        assert getattr(pkg, name).__name__ == f"helpers.{stage}.{name}"


def test_no_stage_imports_another_stage_or_a_private_name():
    problems = [p for path in helper_modules() for p in import_violations(path)]
    assert problems == [], "\n".join(problems)


def test_the_import_rule_catches_a_cross_stage_import(tmp_path, monkeypatch):
    """The rule is not vacuous: a text module importing from verify (or a private name) is reported."""
    fake_root = tmp_path
    (fake_root / "helpers" / "text").mkdir(parents=True)
    bad = fake_root / "helpers" / "text" / "bad.py"
    bad.write_text("from helpers.core.env import cache_dir\n"
                   "from helpers.lm.generation import LM\n"
                   "def f():\n    from helpers.verify.sandbox import Sandbox\n"
                   "from ..speech import audio\n"
                   "from helpers.core.models import _private\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake_root / "helpers")
    found = import_violations(bad)
    assert len(found) == 3, found
    assert "helpers.verify.sandbox" in found[0] or "helpers.verify.sandbox" in "".join(found)
    assert any("helpers.speech" in f for f in found)
    assert any("_private" in f for f in found)


def test_importing_helpers_and_every_stage_is_cheap():
    """``import helpers`` and each stage package load no heavy library (torch, numpy, transformers)."""
    code = ("import sys, helpers\n"
            f"for s in {STAGES!r}: __import__('helpers.' + s)\n"
            "heavy = [m for m in ('torch', 'numpy', 'transformers', 'datasets', 'pandas') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the packages loaded: {out.stdout.strip()}"


# --------------------------------------------------------------------------------------
# every reference to a helpers module points at a real one
# --------------------------------------------------------------------------------------
_REF = re.compile(r"(?<![\w.])helpers((?:\.[a-z_][a-z0-9_]*)+)")
_FROM = re.compile(r"^\s*from helpers((?:\.[a-z_]+)*) import ([\w ,]+)", re.M)


def _sources() -> list[Path]:
    out = []
    for folder in ("helpers", "tests", "benchmarks", "tools", "notebooks"):
        out += sorted((ROOT / folder).rglob("*.py")) + sorted((ROOT / folder).rglob("*.ipynb"))
    return out + [ROOT / "README.md", ROOT / "Makefile"]


def _code_text(path: Path) -> str:
    if path.suffix == ".ipynb":
        import json
        nb = json.loads(path.read_text())
        return "\n".join("".join(c["source"]) for c in nb["cells"])
    return path.read_text()


def _exists(dotted: str) -> bool:
    p = PKG.joinpath(*dotted.split(".")) if dotted else PKG
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def test_every_reference_to_a_helpers_module_exists():
    missing = []
    for path in _sources():
        if path == Path(__file__):
            continue
        text = _code_text(path)
        for m in _REF.finditer(text):
            parts = m.group(1).strip(".").split(".")
            # the longest prefix that is a module or package; the rest may be an attribute
            if not _exists(parts[0]):
                missing.append(f"{path.relative_to(ROOT)}: helpers{m.group(1)}")
                continue
            if len(parts) > 1 and (PKG / parts[0]).is_dir() and parts[0] in STAGES:
                if not _exists(".".join(parts[:2])) and parts[1] not in ("__all__",):
                    missing.append(f"{path.relative_to(ROOT)}: helpers{m.group(1)}")
    assert missing == [], "references to modules that do not exist:\n" + "\n".join(sorted(set(missing)))


def test_one_import_style_from_stage_packages():
    """Code imports stage modules (``from helpers.text import dedup``) or names from them
    (``from helpers.text.dedup import exact_dedup``), never ``from helpers import <module>``."""
    bad = []
    for path in _sources():
        for m in _FROM.finditer(_code_text(path)):
            if m.group(1) == "":
                names = [n.split(" as ")[0].strip() for n in m.group(2).split(",")]
                if any(n not in STAGES for n in names):
                    bad.append(f"{path.relative_to(ROOT)}: {m.group(0).strip()}")
    assert bad == [], "\n".join(bad)


# --------------------------------------------------------------------------------------
# chapter -> module table
# --------------------------------------------------------------------------------------
_ROW = re.compile(r"^\| (\d\d) ([a-z0-9_]+) \| ([a-z_., ]+) \|\s*$", re.M)


def notebook_modules(path: Path) -> set[str]:
    """``stage.module`` for every helpers module a notebook's code imports or names."""
    text = _code_text(path)
    used = set()
    for m in _REF.finditer(text):
        parts = m.group(1).strip(".").split(".")
        if len(parts) >= 2 and parts[0] in STAGES and _exists(".".join(parts[:2])):
            used.add(".".join(parts[:2]))
    for m in _FROM.finditer(text):
        stage = m.group(1).strip(".")
        if stage in STAGES:
            for n in m.group(2).split(","):
                used.add(f"{stage}.{n.split(' as ')[0].strip()}")
    return used


def _table(text: str) -> dict[str, set[str]]:
    return {f"{num}_{name}": {m.strip() for m in mods.split(",")} for num, name, mods in _ROW.findall(text)}


@pytest.mark.parametrize("where", ["helpers/__init__.py", "README.md"])
def test_chapter_module_table_matches_the_notebooks(where):
    table = _table((ROOT / where).read_text())
    actual = {p.stem: notebook_modules(p) for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    assert set(table) == set(actual), f"{where}: chapters in the table {sorted(table)} vs notebooks {sorted(actual)}"
    diffs = {nb: (sorted(table[nb] - mods), sorted(mods - table[nb])) for nb, mods in actual.items()
             if table[nb] != mods}
    assert diffs == {}, f"{where}: (listed but not used, used but not listed) per chapter: {diffs}"
