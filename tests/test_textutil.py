"""Unit tests for helpers.core.textutil: fenced code blocks, word tokens, Latin-letter share.

Each shared function is checked against the copy it replaced (written out inline) on the
inputs where those copies agreed, and on the cases their callers rely on.
"""
from __future__ import annotations

import math
import random
import re

import pytest

from helpers.core.textutil import code_blocks, latin_ratio, strip_code_blocks, words

# the copies this module replaced
OLD_CODEGEN_BLOCK = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)  # helpers.verify.codegen
OLD_JSON_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)  # helpers.lm.generation
OLD_STRIP = re.compile(r"```.*?(?:```|\Z)", re.S)  # helpers.text.filters.strip_code


# ---------------------------------------------------------------------- code blocks
def test_code_blocks_by_language():
    reply = ("Here you go:\n```python\ndef f(x):\n    return x\n```\nand the tests\n```py\nassert f(1) == 1\n```\n"
             "in JS:\n```javascript\nconsole.log(1)\n```\n```\nuntagged\n```\n```JSON\n{\"a\": 1}\n```")
    assert code_blocks(reply, ("python", "py", "")) == ["def f(x):\n    return x", "assert f(1) == 1", "untagged"]
    assert code_blocks(reply, ("javascript", "js")) == ["console.log(1)"]
    assert code_blocks(reply, ("json",)) == ['{"a": 1}']  # tags compare case-insensitively
    assert len(code_blocks(reply)) == 5  # no filter: every block
    assert code_blocks(reply, ()) == []


def test_code_blocks_forms_model_replies_take():
    # an info string after the tag is dropped, not read as code
    assert code_blocks("```python title=f.py\nx = 1\n```") == ["x = 1"]
    # a closing fence glued to the last code line
    assert code_blocks("```python\nreturn x```\nmore") == ["return x"]
    # a block cut off by the token limit is kept (the caller decides what a cut-off is worth)
    assert code_blocks("```python\ndef f(:\n", ["python"]) == ["def f(:"]
    # a one-line block, as models write short JSON
    assert code_blocks('Sure: ```json {"a": [1, 2]}``` ok') == ['{"a": [1, 2]}']
    assert code_blocks('```{"a": 1}```') == ['{"a": 1}']
    assert code_blocks(None) == [] and code_blocks("no fences here") == []


def _random_reply(rng: random.Random) -> str:
    parts = ["```", "```python", "```js", "```json", " ", "\n", "x = 1", "{\"a\": 1}", "text", "`", "py title\n"]
    return "".join(rng.choice(parts) for _ in range(rng.randint(0, 14)))


def test_code_blocks_agree_with_the_codegen_parser_on_multiline_fences():
    """Where every fence opens a line of its own (the form the codegen prompt asks for), the shared
    pattern gives exactly what the codegen parser gave."""
    rng = random.Random(0)
    tried = 0
    for _ in range(3000):
        text = _random_reply(rng)
        starts = [m.start() for m in re.finditer("```", text)]
        # only texts whose opening fences have a newline before the next backtick
        opening = [m for m in OLD_STRIP.finditer(text)]
        if not all(re.match(r"```[^\n`]*\n", text[m.start():]) for m in opening) or not starts:
            continue
        tried += 1
        for langs in (("python", "py", ""), ("js",), None):
            old = [m.group(2).rstrip() for m in OLD_CODEGEN_BLOCK.finditer(text)
                   if langs is None or m.group(1).lower() in langs]
            assert code_blocks(text, langs) == old, text
    assert tried > 200


def test_code_blocks_find_the_json_the_old_fence_found():
    for text in ['```json\n{"a": 1}\n```', 'Sure! ```json\n{"a": [1, 2]}\n``` hope it helps', '```JSON{"b": 2}```',
                 '```\n[1, 2]\n```', 'a ```json {"c": 3} ``` b ```json\n{"d": 4}\n```']:
        assert [b.strip() for b in code_blocks(text)] == [m.group(1).strip() for m in OLD_JSON_FENCE.finditer(text)]


def test_strip_code_blocks_removes_what_strip_code_removed():
    rng = random.Random(1)
    for _ in range(2000):
        text = _random_reply(rng)
        assert strip_code_blocks(text) == OLD_STRIP.sub(" ", text), text
    assert strip_code_blocks("prose ```py\ncode\n``` more ```open") == "prose   more  "
    assert strip_code_blocks("a ```b``` c", repl="") == "a  c"


# ---------------------------------------------------------------------- words
def test_words_lowercase_any_script():
    assert words("Hello, World_2 -- héllo! Привет 你好 don't") == ["hello", "world_2", "héllo", "привет", "你好",
                                                                     "don", "t"]
    assert words("") == [] and words("!!! ...") == []


# ---------------------------------------------------------------------- Latin share
def test_latin_ratio_any_latin_letter_by_default():
    assert latin_ratio("café crème") == 1.0  # French is Latin script
    assert latin_ratio("Straße") == 1.0
    assert latin_ratio("abc где") == pytest.approx(0.5)
    assert latin_ratio("Привет") == 0.0
    assert math.isnan(latin_ratio("12345 !!")) and math.isnan(latin_ratio(""))


def test_latin_ratio_ascii_only_counts_a_to_z():
    assert latin_ratio("café", ascii_only=True) == 0.75
    assert latin_ratio("Hello there", ascii_only=True) == 1.0
    assert latin_ratio("Привет, как дела", ascii_only=True) == 0.0
    assert math.isnan(latin_ratio("1234 !!", ascii_only=True))
    # the same as the old [A-Za-z] share of the letters in helpers.core.data.looks_english
    rng = random.Random(2)
    alphabet = "abcXYZ éüßøПриветあ1 !"
    for _ in range(300):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
        letters = [c for c in t if c.isalpha()]
        if letters:
            old = sum(bool(re.match(r"[A-Za-z]", c)) for c in letters) / len(letters)
            assert latin_ratio(t, ascii_only=True) == pytest.approx(old)
