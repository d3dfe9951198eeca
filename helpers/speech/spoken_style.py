"""Spoken-style rewriting: turn written text into text a TTS voice can read aloud.

Speech-instruction datasets such as LLaMA-Omni's InstructS2S-200K rewrite text before
synthesis: numbers, symbols and markdown cannot be spoken as written, and real speech has
fillers ("so", "well", "hey"). This module does that with rules, checks the result, rejects
what cannot be made speakable, and offers an LM rewrite for comparison.

>>> r = rewrite("Buy 3 apples for $2.50 (about 20% off) by 5:30pm.")
>>> r.text
'Buy three apples for two dollars and fifty cents, about twenty percent off, by five thirty p.m.'
>>> check_speakable("Costs $5 (see **below**)")
['digits', 'symbols', 'markdown', 'parentheses']

Main entry points:

- :func:`rewrite` / :class:`SpokenRewriter`: rule-based rewrite of one text into a
  :class:`RewriteResult` (spoken text, rules used, what was dropped and why, rejection reason,
  failing checks). Numbers are spelled by ``num2words``; markdown structure (headings, lists,
  tables, code, quotes, emphasis, links) is read from ``markdown-it-py`` tokens.
- :func:`to_spoken`: text in, spoken text out (for TTS pipelines such as notebook 12).
- :func:`check_speakable`: which speakability checks a text fails (:data:`CHECKS`).
- :func:`add_fillers`: insert fillers with a controlled probability and seed.
- :func:`lm_rewrite_messages`, :func:`parse_lm_rewrite`, :func:`lm_rewrite`: the LM rewrite.
- :func:`polish_messages`, :func:`gate_polish`, :func:`lm_polish`: the LM *behind* the rules, making
  already-normalised text sound spoken; every reply passes a gate (speakable, length, meaning) or is
  rejected with a counted reason, and the rules text is kept instead.
- :func:`spoken_markers`: measures of spoken style (contractions, sentence length, fillers, "you", questions).
- :func:`summarise`: counts over many results (changed, rejected by reason, checks failing).
"""
from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

from num2words import num2words

from helpers.core.textutil import latin_ratio

__all__ = [
    "CHECKS", "REJECT_REASONS", "FILLERS", "RewriteResult", "SpokenRewriter", "UnspeakableError",
    "rewrite", "rewrite_many", "to_spoken", "check_speakable", "is_changed", "add_fillers", "number_words",
    "normalize_inline", "summarise", "LMRewrite", "lm_rewrite_messages", "parse_lm_rewrite", "lm_rewrite",
    "POLISH_REJECT_REASONS", "Polished", "polish_messages", "gate_polish", "lm_polish", "new_names",
    "spoken_markers",
]

#: The speakability checks, in the order :func:`check_speakable` reports them.
CHECKS = ("empty", "digits", "symbols", "markdown", "parentheses", "too_long")
#: Reasons an item can be rejected by :class:`SpokenRewriter`.
REJECT_REASONS = ("empty", "no words", "not English", "too long", "code", "large table")
#: Default fillers put at the start of a sentence ("hey" only opens the first one).
FILLERS = ("so", "well", "okay", "um", "uh", "you know", "like")
OPENING_FILLERS = ("hey", "so", "well", "okay", "um")

_PUNCT_OK = set(".,!?;:'\"-\u2019\u2018\u201c\u201d")


class UnspeakableError(ValueError):
    """Raised by :func:`to_spoken` with ``strict=True`` when the text is rejected."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


# ---------------------------------------------------------------------------- numbers
def _clean(words: str) -> str:
    """num2words writes "one thousand, two hundred"; drop the commas (they add pauses)."""
    return words.replace(",", "").replace("  ", " ").strip()


def number_words(num: str | int | float, *, to: str = "cardinal") -> str:
    """Spell a number with ``num2words``: ``"1,234.5"`` -> ``"one thousand two hundred and thirty-four point five"``.

    ``to`` is ``"cardinal"``, ``"ordinal"`` or ``"year"``. Digit strings with a leading zero or
    more than 12 digits (IDs, phone numbers) are read digit by digit.
    """
    s = str(num).replace(",", "").strip()
    neg = s.startswith(("-", "\u2212"))
    s = s.lstrip("-\u2212+")
    if not s:
        return ""
    if re.fullmatch(r"\d+", s) and ((len(s) > 1 and s.startswith("0")) or len(s) > 12):
        out = " ".join(_clean(num2words(int(d))) for d in s)
        return ("minus " if neg else "") + out
    try:
        val = Decimal(s)
    except InvalidOperation:
        return str(num)
    if to in ("ordinal", "year") and val == val.to_integral_value():
        out = num2words(int(val), to=to)
    elif val == val.to_integral_value() and "." not in s:
        out = num2words(int(val))
    else:
        whole, _, frac = s.partition(".")
        out = num2words(int(whole or "0")) + " point " + " ".join(num2words(int(d)) for d in frac if d.isdigit())
    return ("minus " if neg else "") + _clean(out)


_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_SCALE = {"k": "thousand", "K": "thousand", "thousand": "thousand", "m": "million", "M": "million", "mn": "million",
          "million": "million", "b": "billion", "B": "billion", "bn": "billion", "billion": "billion",
          "t": "trillion", "T": "trillion", "tn": "trillion", "trillion": "trillion"}
_CURRENCY_SIGN = {"$": ("dollar", "dollars", "cent", "cents"), "\u20ac": ("euro", "euros", "cent", "cents"),
                  "\u00a3": ("pound", "pounds", "penny", "pence"), "\u00a5": ("yen", "yen", "", ""),
                  "\u20b9": ("rupee", "rupees", "paisa", "paise")}
_CURRENCY_CODE = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3", "JPY": "\u00a5", "INR": "\u20b9", "dollars": "$",
                  "euros": "\u20ac", "pounds": "\u00a3"}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_MONTH_RE = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
             r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_UNITS = {  # symbol: (singular, plural)
    "km/h": ("kilometre per hour", "kilometres per hour"), "kph": ("kilometre per hour", "kilometres per hour"),
    "mph": ("mile per hour", "miles per hour"), "m/s": ("metre per second", "metres per second"),
    "km": ("kilometre", "kilometres"), "cm": ("centimetre", "centimetres"), "mm": ("millimetre", "millimetres"),
    "m": ("metre", "metres"), "mi": ("mile", "miles"), "ft": ("foot", "feet"), "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "g": ("gram", "grams"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "ml": ("millilitre", "millilitres"), "mL": ("millilitre", "millilitres"), "l": ("litre", "litres"),
    "L": ("litre", "litres"), "kcal": ("kilocalorie", "kilocalories"), "cal": ("calorie", "calories"),
    "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"), "secs": ("second", "seconds"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "h": ("hour", "hours"), "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"), "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"), "W": ("watt", "watts"), "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"), "V": ("volt", "volts"), "mAh": ("milliamp hour", "milliamp hours"),
    "px": ("pixel", "pixels"), "mhz": ("megahertz", "megahertz"), "ghz": ("gigahertz", "gigahertz"),
    "khz": ("kilohertz", "kilohertz"), "gb": ("gigabyte", "gigabytes"), "tb": ("terabyte", "terabytes"), "\u00b0C": ("degree Celsius", "degrees Celsius"),
    "\u00b0F": ("degree Fahrenheit", "degrees Fahrenheit"), "\u00b0": ("degree", "degrees"),
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_OPS = {"+": "plus", "-": "minus", "\u2212": "minus", "*": "times", "\u00d7": "times", "x": "times",
        "/": "divided by", "\u00f7": "divided by", "=": "equals", "^": "to the power of", "<": "is less than",
        ">": "is greater than", "<=": "is at most", ">=": "is at least", "\u2264": "is at most",
        "\u2265": "is at least", "\u2260": "is not equal to", "!=": "is not equal to", "\u2248": "is about"}
_SYMBOL_WORDS = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "!=": " is not equal to ",
                 ">=": " is at least ", "<=": " is at most ", "==": " equals ", "%": " percent ", "\u2192": " to ",
                 "->": " to ", "=>": " to ", "\u2190": " from ", "\u00b1": " plus or minus ", "\u03c0": " pi ",
                 "\u221e": " infinity ", "\u2026": "...", "\u2014": ", ", "\u2013": ", ", "\u2022": ", ",
                 "\u00b2": " squared ", "\u00b3": " cubed ", "\u221a": " the square root of ", "\u00d7": " times ",
                 "\u00f7": " divided by ", "\u2248": " about ", "\u2264": " at most ", "\u2265": " at least ",
                 "\u2260": " is not equal to ", "\u00a9": " copyright ", "\u2122": "", "\u00ae": "", "~": " about "}
_FRACTIONS = {(1, 2): "one half", (1, 3): "one third", (2, 3): "two thirds", (1, 4): "one quarter",
              (3, 4): "three quarters"}


def _money(sign: str, amount: str, scale: str | None) -> str:
    one, many, sub1, subn = _CURRENCY_SIGN[sign]
    amount = amount.replace(",", "")
    if scale:
        return f"{number_words(amount)} {_SCALE[scale]} {many}"
    whole, _, cents = amount.partition(".")
    whole_i = int(whole or "0")
    words = f"{number_words(whole or '0')} {one if whole_i == 1 else many}"
    if cents and sub1:
        c = int((cents + "0")[:2])
        if c:
            sub = f"{number_words(c)} {sub1 if c == 1 else subn}"
            words = sub if whole_i == 0 else f"{words} and {sub}"
    elif cents:
        words = f"{number_words(amount)} {many}"
    return words


def _time_words(h: int, m: int, ampm: str | None) -> str:
    hw = number_words(h if ampm else h)
    if m == 0:
        out = f"{hw} o'clock" if not ampm else hw
    elif m < 10:
        out = f"{hw} oh {number_words(m)}"
    else:
        out = f"{hw} {number_words(m)}"
    if ampm:
        out += " a.m." if ampm.lower().startswith("a") else " p.m."
    return out


def _month(token: str) -> str:
    for name in _MONTHS:
        if name.lower().startswith(token.lower()[:3]):
            return name
    return token


def _date_words(year: int | None, month: int, day: int) -> str:
    out = f"{_MONTHS[month - 1]} {number_words(day, to='ordinal')}"
    if year is not None:
        out += f", {number_words(year, to='year')}"
    return out


@dataclass
class _Log:
    rules: Counter = field(default_factory=Counter)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    def sub(self, rule: str, pattern: "re.Pattern[str]", repl: Any, text: str) -> str:
        def wrap(m: "re.Match[str]") -> str:
            out = repl(m) if callable(repl) else m.expand(repl)
            if out != m.group(0):
                self.rules[rule] += 1
            return out
        return pattern.sub(wrap, text)


# inline patterns, compiled once
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b")
_MONTH_YEAR = re.compile(rf"\b({_MONTH_RE})\.?,?\s+(1[1-9]\d\d|20\d\d)\b")
_TECH = {"C#": "C sharp", "F#": "F sharp", "C++": "C plus plus", ".NET": "dot net", ".Net": "dot net",
         ".net": "dot net"}
_TECH_RE = re.compile(r"(?<![\w#+])(C#|F#|C\+\+|\.NET|\.Net|\.net)(?![\w#+])")
_DOT_WORD = re.compile(r"(?<![\w.])\.(?=[A-Za-z]{2,5}\b)")
_DOT_IN_WORD = re.compile(r"(?<=[A-Za-z]{2})\.(?=[a-z]{2,5}\b)")
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\.?(?:,?\s+(\d{{4}}))?\b")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?[Mm]\.?)?(?![\w:])")
_HOUR_AMPM = re.compile(r"\b(\d{1,2})\s*([AaPp])\.?[Mm]\b\.?")
_MONEY_SIGN = re.compile(rf"([$\u20ac\u00a3\u00a5\u20b9])\s?({_NUM})(?:\s?(k|K|M|mn|B|bn|T|tn|thousand|million|billion|trillion)\b)?")
_MONEY_CODE = re.compile(rf"\b({_NUM})\s?(k|K|M|B|thousand|million|billion)?\s?(USD|EUR|GBP|JPY|INR)\b")
_MONEY_CODE_FIRST = re.compile(rf"\b(USD|EUR|GBP|JPY|INR)\s?({_NUM})(?:\s?(k|K|M|B|thousand|million|billion)\b)?")
_PERCENT = re.compile(rf"(?<![\w.])(-?)({_NUM})\s?%")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_DECADE = re.compile(r"(?<![\w'])(?:(1[0-9]|20)(\d)0|'(\d)0)s\b")
_UNIT = re.compile(rf"(?<![\w.])(?:([-\u2212])(?=\d))?({_NUM})\s?({_UNIT_RE})(?![\w/])")
_SCALED = re.compile(rf"(?<![\w.])({_NUM})\s?(k|K|M|B|bn|mn)\b")
_TIMES = re.compile(rf"(?<![\w.])({_NUM})[x\u00d7](?![\w])(?!\s*[-+=*/^])")
_RANGE = re.compile(rf"(?<![\w.\-/])({_NUM})\s?[-\u2013\u2014]\s?({_NUM})(?![\w.\-/])")
_FRACTION = re.compile(r"(?<![\w./])(\d{1,2})/(\d{1,2})(?![\w/])")
_YEAR = re.compile(r"\b(in|since|from|by|until|till|before|after|during|of|year|circa|around|early|late|mid)(\s+)"
                   r"(1[1-9]\d\d|20\d\d)\b", re.I)
_OPERATOR = r"<=|>=|!=|[+\-\u2212*\u00d7x/\u00f7=^<>\u2264\u2265\u2260\u2248]"
_MATH = re.compile(rf"(?<![\w.])(-?(?:{_NUM}))(?:\s*(?:{_OPERATOR})\s*-?(?:{_NUM}))+(?![\w.])")
_PHONE = re.compile(r"(?<![\w.])(?:\+?\d{1,3}[ -])?(?:\d{3}[-. ])?\d{3}-\d{4}(?![\w-])")
_MATH_TOKEN = re.compile(rf"({_NUM})|({_OPERATOR})")
_NEG = re.compile(rf"(?<![\w.])[-\u2212]({_NUM})\b")
_PLAIN_NUM = re.compile(rf"(?<![\w.])({_NUM})(?![\w])")
_DIGIT_IN_WORD = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_ANY_DIGITS = re.compile(rf"{_NUM}")
_HASH_NUM = re.compile(r"#\s?(\d+)")
_HASHTAG = re.compile(r"(?<!\w)#(\w+)")
_SLASH_WORDS = re.compile(r"(?<=[A-Za-z])/(?=[A-Za-z])")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200d]")
_HTML = re.compile(r"</?[A-Za-z][^<>]{0,200}>")  # tags left in raw HTML blocks
_ENUM = re.compile(r"(^|[\s:;,.])(\d{1,2}|[A-Ea-e])\)(?=\s)")
_PARENS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|\{([^{}]*)\}")
# "10 000", "1 000 000", "250\u202f000": digit groups separated by (narrow, no-break) spaces. With a plain space
# the groups are only joined when that is the likely reading ("10 000", "100 000"), not for "100 200 300".
_SPACED_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})((?:[ \u00a0\u202f\u2009]\d{3})+)(?![\d,]|\.\d)")
# 1.2.3 (a version), 15.03.2023 (a date), 192.168.0.1 (an address)
_DOTTED = re.compile(r"(?:(?<=\bv)|(?<![\w.]))\d+(?:\.\d+){2,}(?![\w]|\.\d)")
# 2010-2015, 1990-95: year ranges
_YEAR_RANGE = re.compile(r"(?<![\w.\-/:])(1[1-9]\d\d|20\d\d)\s?[-\u2013\u2014]\s?(1[1-9]\d\d|20\d\d|\d\d)(?![\w.\-/:])")
_YEAR_MONTH = re.compile(r"(?<![\w.\-/:])(1[89]\d\d|20\d\d)-(0[1-9]|1[0-2])(?![\w.\-/:])")
# $50-$500, \u20ac5 - 10: one currency for a range
_MONEY_RANGE = re.compile(rf"([$\u20ac\u00a3\u00a5\u20b9])\s?({_NUM})\s?[-\u2013\u2014]\s?\1?\s?({_NUM})(?![\w.])")
# 5-10 km: a range with a unit
_RANGE_UNIT = re.compile(rf"(?<![\w.\-/])({_NUM})\s?[-\u2013\u2014]\s?({_NUM})\s?({_UNIT_RE})(?![\w/])")
# simple maths with letters: x > 3, x^2, a*b, X \u2013 Y, 2x + 1 = 7. An operand is a number or one letter
# (optionally with a number in front: 2x); "-" and "\u2013" between letters need spaces around them, so
# "x-ray", "A-B testing" and "A\u2013Z" stay words.
_VAR = r"\d*[^\W\d_](?![\w'])"
_ALG_OPERAND = rf"(?:{_NUM}(?![\w.])|{_VAR})"
_ALG_OP = r"<=|>=|!=|\s[-\u2013]\s|[+\u2212*\u00d7/\u00f7=^<>\u2264\u2265\u2260\u2248]"
_ALGEBRA = re.compile(rf"(?<![\w.'\-])[-\u2212]?{_ALG_OPERAND}(?:\s*(?:{_ALG_OP})\s*[-\u2212]?{_ALG_OPERAND})+(?![\w'\-])")
_ALG_TOKEN = re.compile(rf"({_NUM})|([^\W\d_])|(<=|>=|!=|[-\u2013+\u2212*\u00d7/\u00f7=^<>\u2264\u2265\u2260\u2248])")
# f(x), E(X \u2013 Y), cos(2x): a one-letter or well-known function applied to a short maths argument
_FUNC = re.compile(r"(?<![\w'])([b-zB-HJ-Z\u03b1-\u03c9]|sin|cos|tan|log|ln|exp|sqrt|max|min|gcd|lcm)\(([^()\n]{1,40})\)")
_FUNC_ARG = re.compile(r"^\s*(?:(?:\d+(?:\.\d+)?|\d*[^\W\d_])(?![\w])\s*(?:<=|>=|!=|[-\u2013+\u2212*\u00d7/\u00f7=^<>,]\s*)?)+$")
_FUNC_NAMES = {"sqrt": "the square root", "ln": "the natural log", "log": "log", "exp": "exp", "max": "the maximum",
               "min": "the minimum", "gcd": "the greatest common divisor", "lcm": "the least common multiple"}
_FLAG = re.compile(r"(?<![\w\-])(-+)(?=[^\W\d_])")  # ls -ltr, --verbose


def _math_words(m: "re.Match[str]") -> str:
    expr = m.group(0)
    if not re.search(r"[+*\u00d7x/\u00f7=^<>\u2264\u2265\u2260\u2248]|\s[-\u2212]\s", expr):
        return expr  # "5-10" is a range, handled elsewhere
    if re.fullmatch(rf"\d{{1,2}}/\d{{1,2}}", expr):
        return expr  # a fraction or a date, handled elsewhere
    out = []
    for num, op in _MATH_TOKEN.findall(expr):
        out.append(number_words(num) if num else _OPS[op])
    return " ".join(out)


_ALG_WORDS = dict(_OPS, **{"-": "minus", "\u2013": "minus", "x": "x"})
_DASHES = {"-", "\u2013"}


def _algebra_words(m: "re.Match[str]") -> str:
    """Simple maths with one-letter variables into words (``x^2 + 1`` -> ``x squared plus one``)."""
    expr = m.group(0)
    tokens = _ALG_TOKEN.findall(expr)
    letters = [v for _n, v, _o in tokens if v]
    binary_ops = [o for k, (_n, _v, o) in enumerate(tokens) if o and k and not tokens[k - 1][2]]
    if not letters or not binary_ops:
        return expr  # numbers only: the number rules handle it
    if all(o == "/" for o in binary_ops) and (not any(n for n, _v, _o in tokens) or re.search(r"\d[^\W\d_]", expr)):
        return expr  # a/b, w/o, 60s/70s: the slash rule reads it as "or"
    if all(o in _DASHES for o in binary_ops):
        # "6 \u2013 n" and "X \u2013 Y" are maths; "vitamin D - 500" and "I - you" are not
        numbers = any(n for n, _v, _o in tokens)
        lower_ok = all(v.islower() and v != "a" for v in letters)
        upper_ok = not numbers and all(v.isupper() and v not in ("I", "A") for v in letters)
        if not (lower_ok or upper_ok):
            return expr
    return " " + _tokens_to_words(tokens) + " "


def _tokens_to_words(toks: "list[tuple[str, str, str]]") -> str:
    out: list[str] = []
    prev_operand = False
    for k, (num, var, op) in enumerate(toks):
        if num:
            if out and out[-1] == "to the power of" and num in ("2", "3") and (k + 1 == len(toks) or toks[k + 1][2]):
                out[-1] = "squared" if num == "2" else "cubed"
            else:
                out.append(number_words(num))
            prev_operand = True
        elif var:
            out.append(var)
            prev_operand = True
        else:
            out.append(_ALG_WORDS.get(op, op) if prev_operand or op not in ("-", "\u2212", "\u2013") else "minus")
            prev_operand = False
    return " ".join(out)


def _function_words(m: "re.Match[str]") -> str:
    """``f(x)`` -> ``f of x``; ``sqrt(2)`` -> ``the square root of 2`` (only for short maths arguments)."""
    name, arg = m.group(1), m.group(2)
    if not _FUNC_ARG.match(arg):
        return m.group(0)
    words = ", ".join(_tokens_to_words(_ALG_TOKEN.findall(part)) for part in arg.split(","))
    fname = _FUNC_NAMES.get(name, name)
    if fname.startswith("the ") and re.search(r"\bthe\s*$", m.string[: m.start()], re.I):
        fname = fname[4:]  # "the gcd(4, 6)": no second "the"
    return f" {fname} of {words} "


def _spaced_thousands(m: "re.Match[str]") -> str:
    first, rest = m.group(1), m.group(2)
    groups = re.findall(r"\d{3}", rest)
    narrow = any(c in rest for c in "\u00a0\u202f\u2009")
    if narrow or len(first) <= 2 or "000" in groups:
        return first + "".join("," + g for g in groups)
    return m.group(0)


def _dotted_words(m: "re.Match[str]") -> str:
    parts = m.group(0).split(".")
    if len(parts) == 3 and len(parts[2]) == 4 and 1 <= int(parts[0]) <= 31 and 1 <= int(parts[1]) <= 12 \
            and 1100 <= int(parts[2]) <= 2099:
        return _date_words(int(parts[2]), int(parts[1]), int(parts[0]))  # 15.03.2023, day first
    if len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return " dot ".join(" ".join(number_words(d) for d in p) for p in parts)  # an address, digit by digit
    return " point ".join(number_words(p) for p in parts)  # a version: one point two point three


def _year_range(m: "re.Match[str]") -> str:
    start, end = m.group(1), m.group(2)
    if len(end) == 2:
        end = start[:2] + end
    if int(end) <= int(start):
        return m.group(0)  # not a range of years (2023-03 is a month)
    return f"{number_words(int(start), to='year')} to {number_words(int(end), to='year')}"


def normalize_inline(text: str, log: _Log | None = None) -> str:
    """Rewrite the inline parts of ``text``: URLs, e-mails, dates, times, money, percentages,
    ordinals, units, simple maths, numbers and symbols into words (no markdown handling)."""
    log = log or _Log()
    t = text

    def url(m: "re.Match[str]") -> str:
        raw = m.group(0).rstrip(".,;:!?")
        tail = m.group(0)[len(raw):]
        host_path = re.sub(r"^(?:https?://)?(?:www\.)?", "", raw, flags=re.I)
        host, _, path = host_path.partition("/")
        if path.strip("/"):
            log.dropped.append(("url path", "/" + path))
        return " " + " dot ".join(p for p in host.split(".") if p) + tail + " "

    t = log.sub("url", _URL, url, t)
    t = log.sub("symbol", _TECH_RE, lambda m: " " + _TECH[m.group(1)] + " ", t)
    t = log.sub("email", _EMAIL, lambda m: " " + m.group(0).replace(".", " dot ").replace("@", " at ")
                .replace("_", " underscore ").replace("-", " dash ").replace("+", " plus ") + " ", t)

    t = log.sub("number", _SPACED_THOUSANDS, _spaced_thousands, t)  # 10 000 -> 10,000, read below
    t = log.sub("maths", _FUNC, _function_words, t)
    t = log.sub("number", _DOTTED, lambda m: " " + _dotted_words(m) + " ", t)

    def iso(m: "re.Match[str]") -> str:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return _date_words(y, mo, d) if 1 <= mo <= 12 and 1 <= d <= 31 else m.group(0)

    def slash(m: "re.Match[str]") -> str:
        a, b, y = int(m.group(1)), int(m.group(2)), m.group(3)
        year = int(y) + (2000 if len(y) == 2 and int(y) < 50 else 1900 if len(y) == 2 else 0)
        mo, d = (a, b) if a <= 12 else (b, a)  # US order unless the first part cannot be a month
        return _date_words(year, mo, d) if 1 <= mo <= 12 and 1 <= d <= 31 else m.group(0)

    t = log.sub("date", _ISO_DATE, iso, t)
    t = log.sub("date", _SLASH_DATE, slash, t)
    t = log.sub("date", _MONTH_DAY, lambda m: (
        _date_words(int(m.group(3)) if m.group(3) else None, _MONTHS.index(_month(m.group(1))) + 1, int(m.group(2)))
        if 1 <= int(m.group(2)) <= 31 else m.group(0)), t)
    t = log.sub("date", _DAY_MONTH, lambda m: (
        f"the {number_words(int(m.group(1)), to='ordinal')} of {_month(m.group(2))}"
        + (f", {number_words(int(m.group(3)), to='year')}" if m.group(3) else "")
        if 1 <= int(m.group(1)) <= 31 else m.group(0)), t)
    t = log.sub("date", _MONTH_YEAR, lambda m: f"{_month(m.group(1))} {number_words(int(m.group(2)), to='year')}", t)
    t = log.sub("year", _YEAR_RANGE, _year_range, t)
    t = log.sub("date", _YEAR_MONTH, lambda m: f"{_MONTHS[int(m.group(2)) - 1]} {number_words(int(m.group(1)), to='year')}", t)
    t = log.sub("time", _TIME, lambda m: (
        _time_words(int(m.group(1)), int(m.group(2)), m.group(4))
        if int(m.group(1)) <= 24 and int(m.group(2)) < 60 and not m.group(3) else m.group(0)), t)
    t = log.sub("time", _HOUR_AMPM, lambda m: _time_words(int(m.group(1)), 0, m.group(2))
                if 1 <= int(m.group(1)) <= 12 else m.group(0), t)
    t = log.sub("currency", _MONEY_RANGE, lambda m: (
        f"{number_words(m.group(2).replace(',', ''))} to {_money(m.group(1), m.group(3), None)}"), t)
    t = log.sub("currency", _MONEY_SIGN, lambda m: _money(m.group(1), m.group(2), m.group(3)), t)
    t = log.sub("currency", _MONEY_CODE, lambda m: _money(_CURRENCY_CODE[m.group(3)], m.group(1), m.group(2)), t)
    t = log.sub("currency", _MONEY_CODE_FIRST, lambda m: _money(_CURRENCY_CODE[m.group(1)], m.group(2), m.group(3)), t)
    t = log.sub("percent", _PERCENT, lambda m: ("minus " if m.group(1) else "") + number_words(m.group(2)) + " percent", t)
    t = log.sub("ordinal", _ORDINAL, lambda m: number_words(int(m.group(1)), to="ordinal"), t)

    def decade(m: "re.Match[str]") -> str:
        if m.group(3):
            return {"0": "two thousands", "1": "tens", "2": "twenties", "3": "thirties", "4": "forties",
                    "5": "fifties", "6": "sixties", "7": "seventies", "8": "eighties", "9": "nineties"}[m.group(3)]
        year = int(m.group(1) + m.group(2) + "0")
        words = number_words(year, to="year")
        return re.sub(r"y$", "ies", words) if words.endswith("y") else words + "s"

    t = log.sub("decade", _DECADE, decade, t)
    t = log.sub("year", _YEAR, lambda m: m.group(1) + m.group(2) + number_words(int(m.group(3)), to="year"), t)
    t = log.sub("phone", _PHONE, lambda m: ", ".join(
        " ".join(number_words(d) for d in grp) for grp in re.findall(r"\d+", m.group(0))), t)
    t = log.sub("maths", _ALGEBRA, _algebra_words, t)  # with letters; numbers-only sums are left to _MATH
    t = log.sub("maths", _MATH, _math_words, t)

    def range_unit(m: "re.Match[str]") -> str:
        return f"{number_words(m.group(1))} to {number_words(m.group(2))} {_UNITS[m.group(3)][1]}"

    t = log.sub("range", _RANGE_UNIT, range_unit, t)
    t = log.sub("range", _RANGE, lambda m: f"{number_words(m.group(1))} to {number_words(m.group(2))}", t)

    def unit(m: "re.Match[str]") -> str:
        one, many = _UNITS[m.group(3)]
        val = m.group(2).replace(",", "")
        return f"{'minus ' if m.group(1) else ''}{number_words(val)} {one if val in ('1', '1.0') else many}"

    t = log.sub("unit", _UNIT, unit, t)
    t = log.sub("number", _SCALED, lambda m: f"{number_words(m.group(1))} {_SCALE[m.group(2)]}", t)
    t = log.sub("number", _TIMES, lambda m: f"{number_words(m.group(1))} times", t)

    def fraction(m: "re.Match[str]") -> str:
        a, b = int(m.group(1)), int(m.group(2))
        if (a, b) in _FRACTIONS:
            return _FRACTIONS[(a, b)]
        if b == 0:
            return f"{number_words(a)} divided by zero"
        return f"{number_words(a)} over {number_words(b)}"

    t = log.sub("fraction", _FRACTION, fraction, t)
    t = log.sub("symbol", _HASH_NUM, lambda m: "number " + number_words(m.group(1)), t)
    t = log.sub("number", _DIGIT_IN_WORD, " ", t)  # GPT-4, mp3, 3D: split, then spell
    t = log.sub("number", _NEG, lambda m: "minus " + number_words(m.group(1)), t)
    t = log.sub("number", _PLAIN_NUM, lambda m: number_words(m.group(1)), t)
    t = log.sub("number", _ANY_DIGITS, lambda m: " " + number_words(m.group(0)) + " ", t)  # leftovers such as v.3
    def flag(m: "re.Match[str]") -> str:
        before = m.string[: m.start()].rstrip(" \t")
        if (not before or before[-1] in "\n.!?:") and m.string[m.end():m.end() + 1].isupper():
            log.dropped.append(("symbol", m.group(1)))
            return ""  # "-Create a survey": a list bullet without its space
        return "dash " * len(m.group(1))

    t = log.sub("symbol", _FLAG, flag, t)  # command-line flags: ls -ltr -> ls dash ltr
    t = log.sub("symbol", _HASHTAG, lambda m: "hashtag " + m.group(1), t)
    t = log.sub("symbol", _SLASH_WORDS, " or ", t)
    t = log.sub("symbol", _DOT_WORD, "dot ", t)  # .js, .csv
    t = log.sub("symbol", _DOT_IN_WORD, " dot ", t)  # node.js, file.txt

    def emoji(m: "re.Match[str]") -> str:
        if m.group(0).strip("\ufe0f\u200d"):
            log.dropped.append(("emoji", m.group(0)))
        return " "

    t = _EMOJI.sub(emoji, t)
    for sym in sorted(_SYMBOL_WORDS, key=len, reverse=True):
        if sym in t:
            log.rules["symbol"] += t.count(sym)
            t = t.replace(sym, _SYMBOL_WORDS[sym])
    t = re.sub(r"(?<=\w)_(?=\w)", " ", t)  # snake_case -> snake case
    t = re.sub(r"\s[-\u2212]\s", ", ", t)   # a spaced dash is a pause
    leftover = [c for c in t if not (c.isalnum() or c.isspace() or c in _PUNCT_OK or c in "()[]{}")]
    for c in leftover:
        log.dropped.append(("symbol", c))
    if leftover:
        log.rules["symbol"] += len(leftover)
        t = "".join(" " if c in leftover else c for c in t)
    return t


# ---------------------------------------------------------------------------- markdown blocks
@lru_cache(maxsize=1)
def _markdown() -> Any:
    """The markdown parser: markdown-it-py, CommonMark plus GitHub tables and strikethrough.

    Two CommonMark rules are switched off for prompts: indented code blocks (an indented line is
    a wrapped or quoted line far more often than code; fenced code and :data:`_CODE_LINE` catch
    real code) and link reference definitions (``[TASK]: write a poem`` is a label, not a link target).
    """
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).disable(["code", "reference"])


def _close(tokens: list[Any], i: int) -> int:
    """Index of the token that closes the block opened at ``tokens[i]``."""
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _and_join(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b, and c``."""
    items = [it for it in items if it]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (", and " if len(items) > 2 else " and ") + items[-1]


def _product_stars(children: list[Any]) -> set[int]:
    """Indices of ``*`` emphasis tokens that are multiplication signs: CommonMark reads the ``*4*`` of
    ``3*4*5`` and the ``*exp(2*`` of ``sin(x)*exp(2*x)`` as emphasis, because ``*`` may open and close
    inside a word. In prompts a ``*`` glued to a word or bracket on its outer side is a product."""
    literal: set[int] = set()
    stack: list[int] = []
    for k, ch in enumerate(children):
        if ch.type == "em_open" and ch.markup == "*":
            stack.append(k)
        elif ch.type == "em_close" and ch.markup == "*" and stack:
            start = stack.pop()
            before = children[start - 1].content[-1:] if start else ""
            after = children[k + 1].content[:1] if k + 1 < len(children) else ""
            if (before.isalnum() or before == ")") or (after.isalnum() or after == "("):
                literal.update((start, k))
    return literal


_QUOTE_PREFIX = re.compile(r"^ {0,3}(?:> ?)*")
_CODE_LINE = re.compile(
    r"(;\s*$|[{}]\s*$|^\s*(def|class|import|from\s+\S+\s+import|return|function|const|let|var|public|private|"
    r"#include|SELECT|INSERT|UPDATE|for\s*\(|if\s*\(|while\s*\(|print\(|console\.|</?\w+[^>]*>)|=>|\)\s*:\s*$|"
    r"^\s*[\w.\[\]]+\s*=\s*[\w\"'\[{(])")


_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")


def _pause(m: "re.Match[str]") -> str:
    dashes = m.group(0).strip()
    if "\n" in m.group(0) and len(dashes) >= 3:
        return m.group(0)  # a "---" line is markdown (a rule or a heading underline): the parser reads it
    return ", "


def _prepare(text: str) -> str:
    """Undo markdown escapes (``\\_`` -> ``_``), drop invisible characters, map full-width forms to ASCII.

    Escapes are undone before parsing, not left to the parser: prompts pasted from web pages (ShareGPT)
    escape every markdown character (``\\* item``, ``my\\_var``), and the code check reads the lines unescaped.
    """
    text = _INVISIBLE.sub("", _ESCAPED.sub(r"\1", text)).replace("\u2010", "-").replace("\u2011", "-")
    text = re.sub(r"\s+--+\s+|(?<=\w)--(?=\w)", _pause, text)  # "a -- b" is a pause
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in text)


def _ensure_stop(s: str) -> str:
    s = s.strip()
    if not s:
        return s
    return s if s[-1] in ".!?:;" else s + "."


def _ordinal_word(i: int) -> str:
    return number_words(i, to="ordinal").capitalize()


@dataclass
class RewriteResult:
    """What :class:`SpokenRewriter` made of one text.

    Attributes:
        original: the input text.
        text: the spoken text (``""`` when rejected).
        rejected: the rejection reason (one of :data:`REJECT_REASONS`) or ``None``.
        rules: how often each rule fired (``"number"``, ``"currency"``, ``"list"``, ``"filler"``, ...).
        dropped: ``(what, reason-or-snippet)`` pairs for content that was removed.
        checks: the speakability checks the spoken text still fails (see :func:`check_speakable`).
    """

    original: str
    text: str
    rejected: str | None = None
    rules: Counter = field(default_factory=Counter)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Accepted and passes every check."""
        return self.rejected is None and not self.checks

    @property
    def changed(self) -> bool:
        """The rewrite changed what is said; rejected items count as unchanged (see :func:`is_changed`)."""
        return self.rejected is None and is_changed(self.original, self.text)


class SpokenRewriter:
    """Rule-based spoken-style rewriter.

    Args:
        filler_prob: probability that a sentence gets a filler word in front (0 = none).
        seed: seed for the fillers; the same text with the same seed gets the same fillers,
            whatever order texts are processed in.
        fillers: words to pick from (default :data:`FILLERS`; ``"hey"`` may open the first sentence).
        max_words: spoken texts longer than this are rejected as ``"too long"``.
        max_chars: inputs longer than this are rejected before any work (huge pastes).
        max_table_rows: tables with more data rows are rejected (``"large table"``); smaller
            ones become one sentence per row.
        drop_code: ``False`` (default) rejects texts with code blocks or code-like lines as
            ``"code"``; ``True`` drops the code with a reason and keeps the rest.
        english_share: minimum share of ASCII letters among all letters (English voices only).
    """

    def __init__(self, *, filler_prob: float = 0.0, seed: int = 0, fillers: Sequence[str] = FILLERS,
                 max_words: int = 120, max_chars: int = 4000, max_table_rows: int = 4, drop_code: bool = False,
                 english_share: float = 0.8) -> None:
        if not 0.0 <= filler_prob <= 1.0:
            raise ValueError(f"filler_prob must be in [0, 1], got {filler_prob}")
        self.filler_prob = filler_prob
        self.seed = seed
        self.fillers = tuple(fillers)
        self.max_words = max_words
        self.max_chars = max_chars
        self.max_table_rows = max_table_rows
        self.drop_code = drop_code
        self.english_share = english_share

    # -------------------------------------------------------------- public
    def rewrite(self, text: Any) -> RewriteResult:
        """Rewrite one text; never raises on bad input (it is rejected with a reason instead)."""
        original = text if isinstance(text, str) else ("" if text is None else str(text))
        res = RewriteResult(original=original, text="")
        stripped = original.strip()
        if not stripped:
            return self._reject(res, "empty")
        if len(stripped) > self.max_chars:
            return self._reject(res, "too long")
        if not any(c.isalnum() for c in stripped):
            return self._reject(res, "no words")
        if latin_ratio(stripped, ascii_only=True) < self.english_share:  # nan (no letters) passes
            return self._reject(res, "not English")
        log = _Log()
        stripped = _prepare(stripped)
        chunks, reason = self._blocks(stripped, log)
        if reason:
            return self._reject(res, reason, log)
        pieces = []
        for chunk in chunks:
            chunk = log.sub("maths", _FUNC, _function_words, chunk)  # f(x) before parentheses become clauses
            chunk = self._parentheses(chunk, log)
            chunk = normalize_inline(chunk, log)
            chunk = self._parentheses(chunk, log)  # brackets uncovered by the rules above
            pieces.append(chunk)
        spoken = self._tidy(" ".join(pieces))
        if not spoken or not any(c.isalpha() for c in spoken):
            return self._reject(res, "no words", log)
        if self.filler_prob > 0:
            spoken, n = add_fillers(spoken, self.filler_prob, seed=self.seed, fillers=self.fillers, return_count=True)
            if n:
                log.rules["filler"] += n
        res.text, res.rules, res.dropped = spoken, log.rules, log.dropped
        res.checks = check_speakable(spoken, max_words=self.max_words)
        if "too_long" in res.checks:
            return self._reject(res, "too long", log)
        return res

    def rewrite_many(self, texts: Iterable[Any], progress: bool = False) -> list[RewriteResult]:
        """:meth:`rewrite` for each text, in order."""
        from tqdm.auto import tqdm

        texts = list(texts)
        return [self.rewrite(t) for t in tqdm(texts, disable=not progress, desc="rewrite", leave=False)]

    # -------------------------------------------------------------- steps
    @staticmethod
    def _reject(res: RewriteResult, reason: str, log: _Log | None = None) -> RewriteResult:
        res.rejected, res.text = reason, ""
        if log is not None:
            res.rules, res.dropped = log.rules, log.dropped
        res.checks = []
        return res

    def _blocks(self, text: str, log: _Log) -> tuple[list[str], str | None]:
        """Split into speakable chunks from markdown-it-py's tokens: code, tables, lists, headings, quotes.

        Code without markdown (pasted lines of Python, SQL ...) has no token of its own, so it is
        still found line by line with :data:`_CODE_LINE`.
        """
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        code_lines = sum(bool(_CODE_LINE.search(ln)) for ln in lines if ln.strip())
        non_empty = sum(bool(ln.strip()) for ln in lines)
        if not self.drop_code and (code_lines >= 3 or (non_empty >= 2 and code_lines / non_empty >= 0.3)):
            return [], "code"
        tokens = _markdown().parse(text)
        out: list[str] = []
        reason = self._walk(tokens, lines, 0, len(tokens), log, out)
        if reason:
            return [], reason
        out = [c.strip() for c in out if c and c.strip()]
        # a line without final punctuation followed by another line is its own sentence
        # (hard-wrapped lines that continue in lower case are joined instead)
        merged: list[str] = []
        for chunk in out:
            if merged and chunk[:1].islower() and merged[-1][-1:] not in ".!?:;":
                merged[-1] += " " + chunk
            else:
                if merged:
                    merged[-1] = _ensure_stop(merged[-1])
                merged.append(chunk)
        return merged, None

    def _walk(self, tokens: list[Any], src: list[str], lo: int, hi: int, log: _Log, out: list[str]) -> str | None:
        """Append the chunks of the block tokens ``tokens[lo:hi]`` to ``out``; a rejection reason or ``None``.

        ``src`` holds the source lines (token maps index them).
        """
        i = lo
        while i < hi:
            tok = tokens[i]
            kind = tok.type
            if kind in ("fence", "code_block"):
                reason = self._code_block(tok, log, out)
                if reason:
                    return reason
            elif kind == "heading_open":
                log.rules["heading"] += 1
                out.append(_ensure_stop(" ".join(self._inline_lines(tokens[i + 1], log)).strip()))
                i = _close(tokens, i)
            elif kind == "hr":
                log.rules["markdown"] += 1
            elif kind == "table_open":
                end = _close(tokens, i)
                reason = self._table(tokens[i:end + 1], log, out)
                if reason:
                    return reason
                i = end
            elif kind in ("bullet_list_open", "ordered_list_open"):
                end = _close(tokens, i)
                reason = self._list(tokens, src, i, end, log, out)
                if reason:
                    return reason
                i = end
            elif kind == "blockquote_open":
                log.rules["markdown"] += 1  # its blocks follow in the stream
            elif kind == "paragraph_open":
                out.extend(self._paragraph_lines(tokens[i + 1], log))
                i = _close(tokens, i)
            elif kind == "html_block":
                log.rules["markdown"] += 1
                out.extend(ln.strip() for ln in _HTML.sub(" ", tok.content).split("\n"))
            i += 1
        return None

    def _code_block(self, tok: Any, log: _Log, out: list[str]) -> str | None:
        body = [ln for ln in tok.content.split("\n") if ln.strip()]
        log.rules["code"] += 1
        if len(body) == 1 and len(body[0].strip()) <= 40 and not _CODE_LINE.search(body[0]):
            out.append(body[0].strip())  # a one-word "code" block is just a word
            return None
        if not self.drop_code:
            return "code"
        log.dropped.append(("code block", f"{len(body)} lines"))
        return None

    def _paragraph_lines(self, inline: Any, log: _Log, raw: list[str] | None = None) -> list[str]:
        """The spoken lines of a paragraph; with ``drop_code`` code-like lines are dropped."""
        rendered = self._inline_lines(inline, log)
        raw = inline.content.split("\n") if raw is None else raw
        if not self.drop_code or len(raw) != len(rendered):
            return rendered
        keep = []
        for src, line in zip(raw, rendered):
            if _CODE_LINE.search(src):
                log.dropped.append(("code line", src.strip()[:60]))
                log.rules["code"] += 1
            else:
                keep.append(line)
        return keep

    def _table(self, tokens: list[Any], log: _Log, out: list[str]) -> str | None:
        rows: list[list[str]] = []
        for k, tok in enumerate(tokens):
            if tok.type == "tr_open":
                rows.append([])
            elif tok.type in ("th_open", "td_open"):
                rows[-1].append(" ".join(self._inline_lines(tokens[k + 1], log)).strip())
        header, body = (rows[0], rows[1:]) if rows else ([], [])
        if len(body) > self.max_table_rows:
            return "large table"
        log.rules["table"] += 1
        for row in body:
            pairs = [f"{h} is {c}" for h, c in zip(header[1:], row[1:]) if c]
            subject = row[0] if row else ""
            out.append(_ensure_stop(f"For {subject}, " + ", ".join(pairs) if pairs else subject))
        return None

    def _list(self, tokens: list[Any], src: list[str], lo: int, hi: int, log: _Log, out: list[str]) -> str | None:
        """A list becomes one sentence (see :meth:`_list_sentence`); a nested list is read as part of
        its item (``Buy fruit: apples and pears``)."""
        numbered = tokens[lo].type == "ordered_list_open"
        items: list[str] = []

        def flush() -> None:
            if items:
                out.append(self._list_sentence(items, numbered, log))
                items.clear()

        k = lo + 1
        while k < hi:
            if tokens[k].type != "list_item_open":
                k += 1
                continue
            end = _close(tokens, k)
            text, trailing, reason = self._item(tokens, src, k + 1, end, log)
            if reason:
                return reason
            if numbered and len(tokens[k].info) > 3:  # "1986. A good year." is a year, not item 1986
                flush()
                out.append(f"{tokens[k].info}{tokens[k].markup} {text}")
            else:
                items.append(text)
            if trailing:  # a capitalised line after an item, not indented, ends the list
                flush()
                out.extend(trailing)
            k = end + 1
        flush()
        return None

    def _item(self, tokens: list[Any], src: list[str], lo: int, hi: int,
              log: _Log) -> tuple[str, list[str], str | None]:
        """One list item: ``(text, lines that follow the list instead, rejection reason)``."""
        parts: list[str] = []
        trailing: list[str] = []
        i = lo
        while i < hi:
            tok = tokens[i]
            end = _close(tokens, i)
            if tok.type == "paragraph_open":
                inline = tokens[i + 1]
                raw = inline.content.split("\n")
                lines = self._paragraph_lines(inline, log, raw)
                where = src[inline.map[0]:inline.map[1]] if inline.map else []
                if len(where) == len(lines) == len(raw):
                    for n, (line, s) in enumerate(zip(lines, where)):
                        body = _QUOTE_PREFIX.sub("", s)
                        # CommonMark reads an unindented line after an item as part of it ("lazy"
                        # continuation); in prompts a capitalised one is a new sentence after the list
                        if trailing or (n and body.strip() and not body[:1].isspace()
                                        and not body.lstrip()[:1].islower()):
                            trailing.append(line)
                        else:
                            parts.append(line.strip())
                else:
                    parts.extend(ln.strip() for ln in lines)
            elif tok.type in ("bullet_list_open", "ordered_list_open"):
                sub: list[str] = []
                j = i + 1
                while j < end:
                    if tokens[j].type == "list_item_open":
                        e = _close(tokens, j)
                        text, more, reason = self._item(tokens, src, j + 1, e, log)
                        if reason:
                            return "", [], reason
                        sub.append(" ".join([text, *more]).strip().rstrip(" .;,"))
                        j = e
                    j += 1
                joined = _and_join(sub)
                if parts and joined:
                    if joined[:2] != joined[:2].upper():  # keep "UNIX", "I"
                        joined = joined[:1].lower() + joined[1:]
                    parts[-1] = parts[-1].rstrip(" .;,:") + ": " + joined
                elif joined:
                    parts.append(joined)
            else:
                chunks: list[str] = []
                reason = self._walk(tokens, src, i, end + 1, log, chunks)
                if reason:
                    return "", [], reason
                parts.extend(chunks)
            i = end + 1
        return " ".join(p for p in parts if p), trailing, None

    @staticmethod
    def _inline_lines(inline: Any, log: _Log) -> list[str]:
        """Plain text of an inline token, one string per source line: emphasis, links and HTML tags
        dropped, images dropped with a reason, inline code read out (or replaced when long)."""
        lines = [""]
        children = inline.children or []
        literal = _product_stars(children)
        for k, ch in enumerate(children):
            kind = ch.type
            if k in literal:
                lines[-1] += ch.markup
            elif kind in ("softbreak", "hardbreak"):
                lines.append("")
            elif kind == "code_inline":
                log.rules["code"] += 1
                body = ch.content.strip()
                if len(body) > 40 or len(body.split()) > 4:
                    log.dropped.append(("inline code", body[:60]))
                    lines[-1] += " some code "
                else:
                    lines[-1] += re.sub(r"\(\s*\)", "", body).replace(".", " dot ").replace("_", " ")
            elif kind == "image":
                log.rules["markdown"] += 1
                log.dropped.append(("image", ch.content or ch.attrGet("src") or ""))
                lines[-1] += " "
            elif kind == "html_inline":
                log.rules["markdown"] += 1
                lines[-1] += " "
            elif kind in ("strong_open", "em_open", "s_open", "link_open"):
                log.rules["markdown"] += 1
            elif kind.endswith("_close"):
                continue
            else:  # text, text_special, ...
                lines[-1] += ch.content
        return lines

    @staticmethod
    def _list_sentence(items: list[str], numbered: bool, log: _Log) -> str:
        items = [it.rstrip(" .;,") for it in items if it.strip(" .;,")]
        if not items:
            return ""
        log.rules["list"] += 1
        avg_words = sum(len(it.split()) for it in items) / len(items)
        if not numbered and avg_words < 6 and len(items) > 1:
            body = ", ".join(items[:-1]) + (", and " if len(items) > 2 else " and ") + items[-1]
            return _ensure_stop(body[:1].upper() + body[1:])
        if len(items) == 1:
            return _ensure_stop(items[0])
        parts = []
        for k, it in enumerate(items, 1):
            lead = "Finally" if (k == len(items) and k > 3) else _ordinal_word(k) if k <= 10 else "Next"
            parts.append(_ensure_stop(f"{lead}, {it[:1].lower() + it[1:] if it[:2] != it[:2].upper() else it}"))
        return " ".join(parts)

    @staticmethod
    def _parentheses(text: str, log: _Log) -> str:
        text = log.sub("list", _ENUM, lambda m: f"{m.group(1)}{m.group(2)},", text)  # inline "1) a 2) b"
        for _ in range(10):  # innermost first; nested ones need several rounds
            new = log.sub("parentheses", _PARENS, lambda m: (
                f", {(m.group(1) or m.group(2) or m.group(3) or '').strip()}, "
                if (m.group(1) or m.group(2) or m.group(3) or "").strip() else " "), text)
            if new == text:
                break
            text = new
        stray = [c for c in text if c in "()[]{}"]
        if stray:
            log.dropped.extend(("unbalanced bracket", c) for c in stray)
            text = re.sub(r"[()\[\]{}]", " ", text)
        return text

    @staticmethod
    def _tidy(text: str) -> str:
        t = re.sub(r"\s+", " ", text)
        t = re.sub(r"\s+([,.!?;:])", r"\1", t)
        t = re.sub(r",(\s*,)+", ",", t)
        t = re.sub(r"([.!?;:])(\s*,)+", r"\1", t)
        t = re.sub(r",\s*([.!?;:])", r"\1", t)
        t = re.sub(r"^[\s,.;:]+", "", t)
        t = re.sub(r"([,;:])(?=\w)", r"\1 ", t)
        t = re.sub(r"\.{4,}", "...", t)
        t = re.sub(r"\s+", " ", t).strip()
        t = re.sub(r",$", ".", t)
        return t


_COSMETIC = re.compile(r"[\s.,;:!?]+")


def is_changed(original: str, spoken: str) -> bool:
    """True when ``spoken`` says something other than ``original``.

    Whitespace and sentence punctuation (``. , ; : ! ?``) are ignored, so tidying alone
    ("NieR:Automata" -> "NieR: Automata", a full stop added at a line break) is not a change,
    while spelling a number, dropping markdown or a bracket, or adding a filler is.
    """
    return _COSMETIC.sub("", original or "") != _COSMETIC.sub("", spoken or "")


# ---------------------------------------------------------------------------- fillers
def _rng_for(text: str, seed: int) -> random.Random:
    digest = hashlib.sha1(f"{seed}:{text}".encode("utf-8", "replace")).hexdigest()
    return random.Random(int(digest[:16], 16))


_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=\S)")


def add_fillers(text: str, prob: float, *, seed: int = 0, fillers: Sequence[str] = FILLERS,
                opening: Sequence[str] = OPENING_FILLERS, return_count: bool = False) -> Any:
    """Put a filler word in front of each sentence with probability ``prob``.

    The first sentence draws from ``opening`` (which has "hey"), the others from ``fillers``.
    The choice depends only on ``(seed, text)``, so results do not change with batch order.
    Returns the new text, or ``(text, n_fillers)`` with ``return_count=True``.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")
    rng = _rng_for(text, seed)
    sentences = _SENT_SPLIT.split(text.strip()) if text.strip() else []
    out, n = [], 0
    for k, s in enumerate(sentences):
        if rng.random() < prob and s:
            pool = opening if k == 0 and opening else fillers
            filler = rng.choice(list(pool))
            first = s.split(" ", 1)[0]
            keep_case = first == "I" or first.startswith("I'") or (len(first) > 1 and first.isupper())
            s = f"{filler.capitalize()}, {s if keep_case else s[:1].lower() + s[1:]}"
            n += 1
        out.append(s)
    joined = " ".join(out)
    return (joined, n) if return_count else joined


# ---------------------------------------------------------------------------- checks
_MD_LEFT = re.compile(r"(^|\n)\s*(#{1,6}\s|[-*+\u2022]\s|\d+[.)]\s|>\s|\|)|```|`|\*\*|__|\[[^\]]*\]\(|^\s*-{3,}\s*$",
                      re.M)


def check_speakable(text: str, *, max_words: int = 120) -> list[str]:
    """Names of the speakability checks ``text`` fails, in :data:`CHECKS` order.

    - ``empty``: no words at all;
    - ``digits``: a digit is left (TTS voices read them inconsistently);
    - ``symbols``: a character that is not a letter, space or plain punctuation
      (``.,!?;:'"-``), for example ``$ % & @ / = * #`` or an emoji; also a hyphen in front of a
      word (``-three``, ``-v``): that is a minus sign or a command-line flag, not a hyphen;
    - ``markdown``: headings, list bullets, tables, code marks, bold or links;
    - ``parentheses``: any of ``()[]{}``;
    - ``too_long``: more than ``max_words`` words.
    """
    text = text if isinstance(text, str) else ""
    fails = []
    if not any(c.isalpha() for c in text):
        fails.append("empty")
    if any(c.isdigit() for c in text):
        fails.append("digits")
    if any(not (c.isalnum() or c.isspace() or c in _PUNCT_OK or c in "()[]{}") for c in text) or _FLAG.search(text):
        fails.append("symbols")
    if _MD_LEFT.search(text):
        fails.append("markdown")
    if any(c in "()[]{}" for c in text):
        fails.append("parentheses")
    if len(text.split()) > max_words:
        fails.append("too_long")
    return fails


# ---------------------------------------------------------------------------- conveniences
_DEFAULT = SpokenRewriter()


def rewrite(text: Any, **kwargs: Any) -> RewriteResult:
    """Rewrite one text with :class:`SpokenRewriter` (keyword arguments configure it)."""
    return (SpokenRewriter(**kwargs) if kwargs else _DEFAULT).rewrite(text)


def rewrite_many(texts: Iterable[Any], progress: bool = False, **kwargs: Any) -> list[RewriteResult]:
    """Rewrite many texts with one :class:`SpokenRewriter`."""
    return SpokenRewriter(**kwargs).rewrite_many(texts, progress=progress)


def to_spoken(text: Any, *, filler_prob: float = 0.0, seed: int = 0, strict: bool = False,
              max_words: int = 120, **kwargs: Any) -> str:
    """Turn an instruction into text for a TTS voice (the entry point notebook 12 uses).

    Returns the spoken text. When the text cannot be made speakable (empty, code, too long,
    not English, ...) it raises :class:`UnspeakableError` with ``strict=True``; otherwise it
    returns ``""`` so the caller can count it (check ``rewrite(...).rejected`` for the reason).
    """
    res = SpokenRewriter(filler_prob=filler_prob, seed=seed, max_words=max_words, **kwargs).rewrite(text)
    if res.rejected:
        if strict:
            raise UnspeakableError(res.rejected, res.original)
        return ""
    return res.text


def summarise(results: Sequence[RewriteResult]) -> dict[str, Any]:
    """Counts over many results: changed, rejected by reason, checks still failing, rules, drops."""
    n = len(results)
    accepted = [r for r in results if r.rejected is None]
    return {
        "items": n,
        "accepted": len(accepted),
        "changed": sum(r.changed for r in results),
        "rejected": Counter(r.rejected for r in results if r.rejected),
        "pass_all_checks": sum(r.ok for r in accepted),
        "checks_failing": Counter(c for r in accepted for c in r.checks),
        "rules": sum((r.rules for r in results), Counter()),
        "dropped": Counter(what for r in results for what, _ in r.dropped),
    }


# ---------------------------------------------------------------------------- LM rewrite
LM_SYSTEM = (
    "Rewrite the user's text the way a person would say it aloud. Write all numbers, amounts, dates, times, "
    "units and symbols in words. No lists, markdown, code or parentheses. Do not answer it; reply with the "
    "rewritten text only."
)
LM_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Give me 3 tips to save 20% on a $1,500 budget:\n- food\n- rent (shared)",
     "Give me three tips to save twenty percent on a budget of one thousand five hundred dollars, "
     "for food and for rent, which is shared."),
    ("## Meeting\nWhat should I prepare for the 10:30am call on 3/15 with 2 clients?",
     "About the meeting: what should I prepare for the ten thirty a.m. call on March fifteenth with two clients?"),
)


def lm_rewrite_messages(text: str, *, system: str = LM_SYSTEM,
                        examples: Sequence[tuple[str, str]] = LM_EXAMPLES) -> list[dict[str, str]]:
    """The chat for an LM rewrite of ``text``: a system rule list, few-shot pairs, then the text."""
    return _few_shot_chat(system, examples, text, "Rewrite for speech:\n{}")


def _few_shot_chat(system: str, examples: Sequence[tuple[str, str]], text: str, ask: str) -> list[dict[str, str]]:
    """System turn, then each example as a user turn (``ask`` around its source) and its answer, then ``text``."""
    msgs = [{"role": "system", "content": system}]
    for src, dst in examples:
        msgs += [{"role": "user", "content": ask.format(src)}, {"role": "assistant", "content": dst}]
    msgs.append({"role": "user", "content": ask.format(text)})
    return msgs


@dataclass
class LMRewrite:
    """One parsed LM rewrite: ``text`` on success, else ``error`` says why."""

    raw: str
    text: str = ""
    error: str | None = None
    new_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


_PREAMBLE = re.compile(r"^\s*(sure|certainly|of course|okay|here(?:'s| is)|rewritten|spoken|output|answer)"
                       r"[^\n:]{0,80}:\s*\n?", re.I)
_REFUSAL = re.compile(r"^\s*(i'm sorry|i am sorry|sorry|i cannot|i can't|as an ai)", re.I)


def parse_lm_rewrite(reply: str, original: str = "", *, truncated: bool = False,
                     max_ratio: float = 2.5) -> LMRewrite:
    """Clean an LM reply into spoken text, or say why it is unusable.

    Strips preambles ("Sure! Here is ...:"), code fences and surrounding quotes. Errors:
    ``empty``, ``truncated`` (hit the token limit), ``refused``, ``answered`` (the reply is
    over ``max_ratio`` times longer than the input plus 20 words: it answered instead of
    rewriting).
    """
    raw = reply if isinstance(reply, str) else ""
    text = raw.strip()
    text = re.sub(r"^```\w*\s*|\s*```$", "", text)
    for _ in range(2):
        text = _PREAMBLE.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'\u201c":
        text = text[1:-1].strip()
    if text.startswith("\u201c") and text.endswith("\u201d"):
        text = text[1:-1].strip()
    res = LMRewrite(raw=raw, text=text)
    if truncated:
        res.error = "truncated"
    elif not text:
        res.error = "empty"
    elif _REFUSAL.match(text):
        res.error = "refused"
    elif original and len(text.split()) > max_ratio * len(original.split()) + 20:
        res.error = "answered"
    return res


def lm_rewrite(lm: Any, texts: Sequence[str], *, batch_size: int | None = None, temperature: float = 0.0,
               max_new_tokens: int | None = None, seed: int = 0, progress: bool = True,
               messages: Callable[[str], list[dict[str, str]]] = lm_rewrite_messages,
               token_budget: tuple[float, int] = (1.6, 32)) -> list[LMRewrite]:
    """Rewrite ``texts`` with a :class:`helpers.lm.generation.LM`, batched by length.

    Each batch gets a token limit sized to its longest input (``token_budget``: 1.6 times its
    tokens plus 32 by default, at most 512) unless ``max_new_tokens`` is given, so one runaway reply cannot hold a
    whole batch for long. Failures are kept with their reason (see :func:`parse_lm_rewrite`).
    ``messages`` builds the chat for one text (:func:`lm_rewrite_messages`, or
    :func:`polish_messages` for the polish step).
    """
    from tqdm.auto import tqdm

    texts = [t if isinstance(t, str) else "" for t in texts]
    out: list[LMRewrite | None] = [None] * len(texts)
    todo = []
    for i, t in enumerate(texts):
        if t.strip():
            todo.append(i)
        else:
            out[i] = LMRewrite(raw="", error="empty input")
    bs = batch_size or getattr(lm, "default_batch_size", 8)
    lengths = {i: lm.count_tokens(texts[i]) for i in todo}
    todo.sort(key=lambda i: lengths[i])
    bar = tqdm(total=len(todo), desc=f"LM rewrite ({getattr(lm, 'name', 'lm')})", disable=not progress, leave=False)
    for start in range(0, len(todo), bs):
        idx = todo[start:start + bs]
        longest = max(lengths[i] for i in idx)
        limit = max_new_tokens or min(512, int(math.ceil(token_budget[0] * longest)) + token_budget[1])
        gens = lm.chat([messages(texts[i]) for i in idx], max_new_tokens=limit, temperature=temperature,
                       seed=seed, batch_size=bs, progress=False)
        for i, g in zip(idx, gens):
            res = parse_lm_rewrite(g.text, texts[i], truncated=g.finish_reason == "length")
            res.new_tokens = g.new_tokens
            out[i] = res
        bar.update(len(idx))
    bar.close()
    return [r if r is not None else LMRewrite(raw="", error="missing") for r in out]


# ---------------------------------------------------------------------------- LM polish behind the rules
POLISH_SYSTEM = (
    "You make a written request sound like something a person says out loud. Keep every fact, name and request; "
    "add nothing new. Use contractions (I'm, don't, what's), short sentences, and at most one filler such as "
    "\"so\", \"well\" or \"you know\". Do not answer or carry out the request. No digits, symbols, lists or "
    "parentheses. Reply with the spoken version only."
)
#: Few-shot pairs: already-normalised text (what the rules produce) -> the same request said aloud.
POLISH_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("I would like to know what is the best way to learn Python in three months. I do not have any programming "
     "experience.",
     "So, what's the best way to learn Python in three months? I don't have any programming experience."),
    ("Write a short poem about the ocean, about twelve lines, in the style of Emily Dickinson.",
     "Could you write me a short poem about the ocean? About twelve lines, in the style of Emily Dickinson."),
    ("Write a function in Java that sorts a list of names. It should not use any library.",
     "Can you write me a function in Java that sorts a list of names? It shouldn't use any library."),
    ("Please explain the difference between a virus and a bacterium. It is for a school project that is due on "
     "March fifteenth.",
     "Well, can you explain the difference between a virus and a bacterium? It's for a school project that's due "
     "on March fifteenth."),
)
#: Why :func:`gate_polish` turns an LM reply down (the first four come from :func:`parse_lm_rewrite`).
#: ``unchanged`` is not a failure of the model's text, but there is nothing to keep either.
POLISH_REJECT_REASONS = ("empty", "truncated", "refused", "answered", "unspeakable", "length", "new names",
                         "meaning", "unchanged")
_ANSWER_OPENING = re.compile(r"^\s*(?:sure|certainly|of course|absolutely|here (?:is|are|'s))\b", re.I)
_WORD = re.compile(r"[A-Za-z][\w'\u2019-]*")


def new_names(source: str, reply: str) -> list[str]:
    """Capitalised words inside a sentence of ``reply`` that ``source`` lacks (in any case): a name the model
    invented or swapped ("Exchange" -> "Excel"). Sentence-initial words and "I" do not count."""
    have = {w.lower() for w in _WORD.findall(source)}
    out = []
    for m in _WORD.finditer(reply):
        w = m.group(0)
        before = reply[:m.start()].rstrip()
        if not w[0].isupper() or w == "I" or w.startswith(("I'", "I\u2019")) or not before or before[-1] in ".!?:\"":
            continue
        if w.lower() not in have:
            out.append(w)
    return out


def polish_messages(text: str, *, system: str = POLISH_SYSTEM,
                    examples: Sequence[tuple[str, str]] = POLISH_EXAMPLES) -> list[dict[str, str]]:
    """The chat that asks an LM to make already-normalised ``text`` sound spoken (few-shot pairs, then the text).

    The text goes between quotes so a small model sees it as something to rephrase, not a request to carry out.
    """
    return _few_shot_chat(system, examples, text, 'Say this the way a person would say it:\n"{}"')


@dataclass
class Polished:
    """One text after the polish step: ``text`` is the LM's version when ``accepted``, else the rules text."""

    source: str
    lm_text: str
    text: str
    reason: str | None = None
    checks: list[str] = field(default_factory=list)
    similarity: float | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


def gate_polish(source: str, reply: LMRewrite, *, similarity: float | None = None, min_similarity: float = 0.8,
                length_ratio: tuple[float, float] = (0.6, 1.6), max_words: int = 120) -> Polished:
    """Accept an LM polish of ``source`` (the rules text) or reject it with the first failing reason.

    In order: a parse error from :func:`parse_lm_rewrite` (``empty``, ``truncated``, ``refused``,
    ``answered``, also a reply that opens like an answer, "Sure, here are ..."); ``unspeakable``
    (:func:`check_speakable` fails: the model put digits, symbols or markdown back); ``length``
    (words outside ``length_ratio`` times the source's: it dropped or added content); ``new names``
    (:func:`new_names`: a capitalised word the source does not have); ``meaning`` (``similarity`` to the source, for example an embedding cosine,
    below ``min_similarity``; skipped when ``similarity`` is None); ``unchanged`` (the same words).
    A rejected item keeps ``source`` as its text, so the pipeline never loses an item to the LM.
    """
    lm_text = reply.text if reply.ok else ""
    out = Polished(source=source, lm_text=lm_text, text=source, similarity=similarity)
    if not reply.ok:
        out.reason = reply.error if reply.error in POLISH_REJECT_REASONS else "empty"
        return out
    out.checks = check_speakable(lm_text, max_words=max_words)
    n_src, n_lm = len(source.split()), len(lm_text.split())
    if _ANSWER_OPENING.match(lm_text) and not _ANSWER_OPENING.match(source):
        out.reason = "answered"
    elif out.checks:
        out.reason = "unspeakable"
    elif not length_ratio[0] * n_src <= n_lm <= length_ratio[1] * n_src + 3:
        out.reason = "length"
    elif new_names(source, lm_text):
        out.reason = "new names"
    elif similarity is not None and similarity < min_similarity:
        out.reason = "meaning"
    elif not is_changed(source, lm_text):
        out.reason = "unchanged"
    else:
        out.text = lm_text
    return out


def lm_polish(lm: Any, texts: Sequence[str], *,
              similarity: Callable[[list[str], list[str]], Sequence[float]] | None = None,
              min_similarity: float = 0.8, length_ratio: tuple[float, float] = (0.6, 1.6), max_words: int = 120,
              batch_size: int | None = None, seed: int = 0, progress: bool = True,
              messages: Callable[[str], list[dict[str, str]]] = polish_messages) -> list[Polished]:
    """Polish rules-normalised ``texts`` with ``lm`` and gate every reply (see :func:`gate_polish`).

    ``similarity(sources, replies)`` returns one score per pair (for example the cosine of sentence
    embeddings); without it the meaning check is skipped. Greedy decoding, batched by length, with a
    token limit of ``length_ratio[1]`` times the longest text's tokens plus 12 (a longer reply would
    fail the length check anyway; it comes back as ``truncated``).
    """
    # a reply longer than length_ratio[1] times the text fails the gate anyway, so generation stops about there
    budget = (length_ratio[1], 12)
    replies = lm_rewrite(lm, texts, batch_size=batch_size, seed=seed, progress=progress, messages=messages,
                         token_budget=budget)
    sims: list[float | None] = [None] * len(texts)
    if similarity is not None:
        idx = [i for i, r in enumerate(replies) if r.ok]
        if idx:
            for i, v in zip(idx, similarity([texts[i] for i in idx], [replies[i].text for i in idx])):
                sims[i] = float(v)
    return [gate_polish(t, r, similarity=s, min_similarity=min_similarity, length_ratio=length_ratio,
                        max_words=max_words) for t, r, s in zip(texts, replies, sims)]


_CONTRACTION = re.compile(r"\b(?:\w+n't|\w+'(?:re|ve|ll|m|d)|(?:it|that|what|there|here|he|she|who|where|how|"
                          r"let|this|why|when)'s|can't|won't)\b", re.I)
_YOU = re.compile(r"\b(?:you|your|you're|you've|you'll|you'd|yours)\b", re.I)
_FILLER_START = re.compile(r"^(?:" + "|".join(sorted({*FILLERS, *OPENING_FILLERS}, key=len, reverse=True)) + r"),",
                           re.I)


def spoken_markers(text: str) -> dict[str, float]:
    """Measures of how spoken a text reads, computed from its characters (NaN for an empty text).

    - ``contractions``: contractions ("don't", "it's", "I'm") per 100 words (a possessive "John's" is not one);
    - ``words_per_sentence``: mean sentence length in words (speech uses shorter sentences);
    - ``fillers``: share of sentences that open with a filler from :data:`FILLERS` or "hey" and a comma;
    - ``you``: second-person words ("you", "your", ...) per 100 words;
    - ``questions``: share of sentences that end with a question mark.
    """
    text = (text if isinstance(text, str) else "").replace("\u2019", "'").strip()
    words = text.split()
    if not words:
        return dict.fromkeys(("contractions", "words_per_sentence", "fillers", "you", "questions"), float("nan"))
    sentences = [s for s in _SENT_SPLIT.split(text) if s.strip()]
    return {
        "contractions": 100 * len(_CONTRACTION.findall(text)) / len(words),
        "words_per_sentence": len(words) / len(sentences),
        "fillers": sum(bool(_FILLER_START.match(s)) for s in sentences) / len(sentences),
        "you": 100 * len(_YOU.findall(text)) / len(words),
        "questions": sum(s.rstrip().endswith("?") for s in sentences) / len(sentences),
    }
