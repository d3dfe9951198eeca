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
