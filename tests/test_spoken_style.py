"""Unit tests for the spoken-style rewriter (fast: no model needed except the marked test)."""
from __future__ import annotations

import math

import pytest

from helpers.speech.spoken_style import (
    CHECKS, POLISH_REJECT_REASONS, REJECT_REASONS, LMRewrite, SpokenRewriter, UnspeakableError, add_fillers,
    check_speakable, gate_polish, lm_polish, lm_rewrite, lm_rewrite_messages, new_names, number_words, parse_lm_rewrite,
    polish_messages, rewrite, rewrite_many, spoken_markers, summarise, to_spoken,
)
from tests.fakes import ScriptedLM


def spoken(text: str, **kw) -> str:
    res = rewrite(text, **kw)
    assert res.rejected is None, (text, res.rejected)
    return res.text


# ------------------------------------------------------------------ numbers and friends
@pytest.mark.parametrize("text, expected", [
    ("I have 3 cats.", "I have three cats."),
    ("1,234 people", "one thousand two hundred and thirty-four people"),
    ("pi is 3.14", "pi is three point one four"),
    ("It fell to -5 today", "It fell to minus five today"),
    ("agent 007", "agent zero zero seven"),
    ("She came 1st and he came 22nd.", "She came first and he came twenty-second."),
    ("It costs $2.50", "It costs two dollars and fifty cents"),
    ("It costs $1", "It costs one dollar"),
    ("only $0.99", "only ninety-nine cents"),
    ("a budget of $2.5M", "a budget of two point five million dollars"),
    ("\u20ac3 billion", "three billion euros"),
    ("100 USD", "one hundred dollars"),
    ("up 12.5% this year", "up twelve point five percent this year"),
    ("It grew 20 %.", "It grew twenty percent."),
    ("on 2023-03-15", "on March fifteenth, twenty twenty-three"),
    ("on 3/15/2023", "on March fifteenth, twenty twenty-three"),
    ("on 15/03/2023", "on March fifteenth, twenty twenty-three"),
    ("on March 3rd, 2021", "on March third, twenty twenty-one"),
    ("on 4 July", "on the fourth of July"),
    ("at 10:30", "at ten thirty"),
    ("at 10:05", "at ten oh five"),
    ("at 5:30pm", "at five thirty p.m."),
    ("at 9am", "at nine a.m."),
    ("in 1999", "in nineteen ninety-nine"),
    ("as of October 2022", "as of October twenty twenty-two"),
    ("a C# .NET 7 app in C++", "a C sharp dot net seven app in C plus plus"),
    ("save it as .csv", "save it as dot csv"),
    ("use node.js, e.g. file.txt", "use node dot js, e.g. file dot txt"),
    ("since 2005", "since two thousand and five"),
    ("the 1990s", "the nineteen nineties"),
    ("I ran 5km", "I ran five kilometres"),
    ("12 km/h", "twelve kilometres per hour"),
    ("1 kg", "one kilogram"),
    ("30\u00b0C", "thirty degrees Celsius"),
    ("16 GB of RAM", "sixteen gigabytes of RAM"),
    ("a 1mhz clock", "a one megahertz clock"),
    ("2 + 3 = 5", "two plus three equals five"),
    ("10 - 3", "ten minus three"),
    ("6 / 3", "six divided by three"),
    ("2^10", "two to the power of ten"),
    ("wait 4-6 weeks", "wait four to six weeks"),
    ("1/2 of it", "one half of it"),
    ("3/4 cup", "three quarters cup"),
    ("10x faster", "ten times faster"),
    ("GPT-4", "GPT-four"),
    ("call 555-0134", "call five five five, zero one three four"),
    ("ticket #3", "ticket number three"),
])
def test_numbers_and_units(text: str, expected: str) -> None:
    assert spoken(text) == expected


@pytest.mark.parametrize("text, expected", [
    # a sign in front of a unit is a minus, not a hyphen
    ("-3\u00b0C", "minus three degrees Celsius"),
    ("It was -3\u00b0C in Oslo", "It was minus three degrees Celsius in Oslo"),
    ("\u22125 kg", "minus five kilograms"),
    # dotted numbers: versions, day-first dates, addresses
    ("version 1.2.3", "version one point two point three"),
    ("kivy 2.1.0 and v1.2.3", "kivy two point one point zero and v one point two point three"),
    ("on 15.03.2023", "on March fifteenth, twenty twenty-three"),
    ("IP 192.168.0.1", "IP one nine two dot one six eight dot zero dot one"),
    # simple maths with letters
    ("E(X \u2013 Y)", "E of X minus Y"),
    ("Given E(X) = 12, find E(X \u2013 Y).", "Given E of X equals twelve, find E of X minus Y."),
    ("x > 3", "x is greater than three"),
    ("if a>0 and b <= 2", "if a is greater than zero and b is at most two"),
    ("x^2", "x squared"),
    ("f(x) = x^2 + 1", "f of x equals x squared plus one"),
    ("the integral of x^2 cos(2x)", "the integral of x squared cos of two x"),
    ("a*b", "a times b"),
    ("x \u2212 y", "x minus y"),
    ("6 \u2013 n points", "six minus n points"),
    ("sqrt(16)", "the square root of sixteen"),
    ("status != done", "status is not equal to done"),
    # ... while words with hyphens and prose dashes stay words
    ("x-ray and A-B testing", "x-ray and A-B testing"),
    ("vitamin D - 500 IU", "vitamin D, five hundred IU"),
    ("Jan 24 \u2013 Compliment Day", "January twenty-fourth, Compliment Day"),
    # thousands written with spaces
    ("10 000", "ten thousand"),
    ("1 000 000 people", "one million people"),
    ("250\u202f000 km", "two hundred and fifty thousand kilometres"),
    ("scores 100 200 300", "scores one hundred two hundred three hundred"),
    # year ranges read as years; ranges with a unit or a currency
    ("2010-2015", "twenty ten to twenty fifteen"),
    ("from 2010-2015", "from twenty ten to twenty fifteen"),
    ("the 1990-95 recession", "the nineteen ninety to nineteen ninety-five recession"),
    ("in 2023-03", "in March twenty twenty-three"),
    ("wait 5-10 km", "wait five to ten kilometres"),
    ("from $50 \u2013 $500", "from fifty to five hundred dollars"),
    # command-line flags are spoken, a bullet without its space is dropped
    ("run ls -ltr now", "run ls dash ltr now"),
    ("-Create a survey", "Create a survey"),
])
def test_reviewed_rewrites(text: str, expected: str) -> None:
    res = rewrite(text)
    assert res.text == expected and res.checks == [], (res.text, res.checks)


def test_check_flags_minus_sign_and_flags() -> None:
    assert check_speakable("It was -three degrees") == ["symbols"]
    assert check_speakable("use --verbose") == ["symbols"]
    assert check_speakable("a well-known x-ray, pre- and post-war") == []


def test_changed_ignores_cosmetic_edits() -> None:
    from helpers.speech.spoken_style import is_changed

    res = rewrite("NieR:Automata")
    assert res.text == "NieR: Automata" and not res.changed
    assert not rewrite("first line\nNew sentence").changed  # only a full stop added
    assert rewrite("This is **very** good").changed  # markdown removed
    assert rewrite("I have 2 cats").changed
    assert is_changed("a (b)", "a, b") and not is_changed("a , b", "a, b.")
    s = summarise(rewrite_many(["NieR:Automata", "I have 2 dogs."]))
    assert s["changed"] == 1


def test_number_words_uses_num2words() -> None:
    assert number_words("1000000") == "one million"
    assert number_words(21, to="ordinal") == "twenty-first"
    assert number_words(2023, to="year") == "twenty twenty-three"
    assert number_words("12345678901234") == " ".join(
        ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero", "one", "two", "three", "four"])


def test_symbols_urls_emails() -> None:
    out = rewrite("Visit https://www.example.com/docs/intro or mail john.doe@gmail.com & ask.")
    assert out.text == "Visit example dot com or mail john dot doe at gmail dot com and ask."
    assert ("url path", "/docs/intro") in out.dropped
    assert spoken("salt & pepper, input/output") == "salt and pepper, input or output"
    assert spoken("#blessed") == "hashtag blessed"
    emo = rewrite("Hello \U0001F600 world")
    assert emo.text == "Hello world" and emo.dropped == [("emoji", "\U0001F600")]


# ------------------------------------------------------------------ markdown
def test_markdown_lists_headings_tables() -> None:
    assert spoken("# Plan\nSteps:\n1. Buy milk\n2. Call Bob\n3. Write the report") == \
        "Plan. Steps: First, buy milk. Second, call Bob. Third, write the report."
    assert spoken("Ingredients:\n- eggs\n- flour\n- sugar") == "Ingredients: Eggs, flour, and sugar."
    assert spoken("| Name | Age |\n|---|---|\n| Ann | 31 |\n| Bob | 42 |") == \
        "For Ann, Age is thirty-one. For Bob, Age is forty-two."
    assert spoken("This is **very** important and *quite* [urgent](http://x.com).") == \
        "This is very important and quite urgent."
    assert spoken("Use `print()` and `my_var`.") == "Use print and my var."
    assert spoken(r"Use my\_var and \*stars\*") == "Use my var and stars"
    assert spoken("first line\ncontinues here\nNew sentence") == "first line continues here. New sentence"
    assert spoken("1. How is UNIX more secure than\nother systems? Explain.") == \
        "How is UNIX more secure than other systems? Explain."
    assert spoken("slow -- and nice, Coca\u2011Cola") == "slow, and nice, Coca-Cola"


@pytest.mark.parametrize("text, expected", [
    # markdown that line patterns misread and the parser (markdown-it-py) reads right
    ("Title\n=====\nSome text here.", "Title. Some text here."),  # a setext heading, not "equals equals"
    ("Read [the docs](https://en.wikipedia.org/wiki/Foo_(bar)) first.", "Read the docs first."),  # ")" in a URL
    ("> - apples\n> - pears", "Apples and pears."),  # a list inside a block quote
    ("1. Buy fruit\n   - apples\n   - pears\n2. Cook dinner",  # a nested list belongs to its item
     "First, buy fruit: apples and pears. Second, cook dinner."),
    ("Tom &amp; Jerry", "Tom and Jerry"),  # an HTML entity
    ("Notes:\n```\n# not a heading\n```", "Notes: not a heading"),  # "#" inside a code block
    # ... and prompt conventions kept where CommonMark reads them otherwise
    ("[TASK TYPE]: Article\n[AUDIENCE]: hotel managers", "TASK TYPE: Article. AUDIENCE: hotel managers"),
    ("Do *this* and 3*4*5 = 60", "Do this and three times four times five equals sixty"),  # a product, not *4*
    ("Ingredients:\n- eggs\n- flour\nMix them well.", "Ingredients: Eggs and flour. Mix them well."),
    ("1986. A great year.", "one thousand nine hundred and eighty-six. A great year."),  # a year, not item 1986
    ("Intro:\n\n    First line here\n    Second line here", "Intro: First line here. Second line here"),  # not code
])
def test_markdown_structure_from_the_parser(text: str, expected: str) -> None:
    res = rewrite(text)
    assert res.text == expected and res.checks == [], (res.text, res.checks)


def test_large_table_rejected() -> None:
    rows = "\n".join(f"| r{i} | {i} |" for i in range(10))
    res = rewrite("| a | b |\n|---|---|\n" + rows)
    assert res.rejected == "large table"
    assert SpokenRewriter(max_table_rows=20).rewrite("| a | b |\n|---|---|\n" + rows).rejected is None


def test_parentheses_become_clauses() -> None:
    assert spoken("Call Bob (he is home) now.") == "Call Bob, he is home, now."
    assert spoken("A (b (c)) d") == "A, b, c, d"
    res = rewrite("odd ) bracket [here")
    assert res.text == "odd bracket here" and ("unbalanced bracket", ")") in res.dropped
    assert spoken("Choose 1) red 2) blue") == "Choose one, red two, blue"


def test_code_rejected_or_dropped() -> None:
    src = "Fix this:\n```python\ndef f(x):\n    return x+1\n```"
    assert rewrite(src).rejected == "code"
    dropped = SpokenRewriter(drop_code=True).rewrite(src)
    assert dropped.rejected is None and dropped.text == "Fix this:"
    assert ("code block", "2 lines") in dropped.dropped
    assert rewrite("x = 1;\ny = 2;\nprint(x + y);").rejected == "code"


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   \n ", "empty"), (None, "empty"), ("$$$ %%% ###", "no words"),
    ("\u8fd9\u662f\u4e2d\u6587\u7684\u95ee\u9898\uff0c\u8bf7\u56de\u7b54\u3002", "not English"),
    ("word " * 500, "too long"), ("x" * 100_000, "too long"),
])
def test_bad_input_rejected_with_reason(text, reason) -> None:
    res = rewrite(text)
    assert res.rejected == reason and res.text == "" and reason in REJECT_REASONS
    assert not res.changed and not res.ok


def test_never_crashes_on_odd_input() -> None:
    odd = ["(", ")", "[]", "``", "```", "|", "| a |\n|---|", "- ", "1.", "#", "$", "%", "1/0", "99/99/9999",
           "25:99", "\u00bd", "\u200b", "a" * 5000, "1" * 50, "3.2.1", "e=mc^2", 12345, 3.5]
    for text in odd:
        res = rewrite(text)
        assert res.rejected in (None,) + REJECT_REASONS
        if res.rejected is None:
            assert not {"digits", "symbols", "markdown", "parentheses"} & set(res.checks), (text, res.text)


# ------------------------------------------------------------------ checks
def test_check_speakable() -> None:
    assert check_speakable("Costs $5 (see **below**)") == ["digits", "symbols", "markdown", "parentheses"]
    assert check_speakable("Hello there, how are you?") == []
    assert check_speakable("") == ["empty"]
    assert check_speakable("- item one\n- item two") == ["markdown"]
    assert check_speakable("word " * 11, max_words=10) == ["too_long"]
    assert set(check_speakable("a 1 $ # ( " + "w " * 200)) <= set(CHECKS)


def test_accepted_rewrites_pass_checks() -> None:
    texts = ["Buy 3 apples for $2.50 (about 20% off) by 5:30pm.", "# Title\n- a\n- b", "Email me: a@b.com"]
    for res in rewrite_many(texts):
        assert res.rejected is None and res.checks == [], (res.original, res.text, res.checks)


# ------------------------------------------------------------------ fillers
def test_fillers_controlled_by_probability_and_seed() -> None:
    text = "This is one. This is two. I think three. And four."
    assert add_fillers(text, 0.0) == text
    all_f, n = add_fillers(text, 1.0, seed=3, return_count=True)
    assert n == 4 and all_f != text and "I think" in all_f  # "I" keeps its capital
    assert add_fillers(text, 0.5, seed=1) == add_fillers(text, 0.5, seed=1)
    many = [f"Sentence number {w}." for w in "abcdefghijklmnopqrstuvwxyz"] * 8
    got = sum(add_fillers(" ".join(many), 0.3, seed=7, return_count=True)[1] for _ in range(1))
    assert 0.15 * len(many) < got < 0.45 * len(many)
    with pytest.raises(ValueError):
        add_fillers(text, 1.5)


def test_rewriter_fillers_are_order_independent() -> None:
    rw = SpokenRewriter(filler_prob=0.5, seed=11)
    texts = [f"Tell me about topic {i}. Keep it short." for i in range(20)]
    forward = [r.text for r in rw.rewrite_many(texts)]
    backward = [r.text for r in rw.rewrite_many(texts[::-1])][::-1]
    assert forward == backward
    assert sum(r.rules["filler"] for r in rw.rewrite_many(texts)) > 0


# ------------------------------------------------------------------ entry points
def test_to_spoken_and_summary() -> None:
    assert to_spoken("What is 2 + 2?") == "What is two plus two?"
    assert to_spoken("") == ""
    with pytest.raises(UnspeakableError) as err:
        to_spoken("```\nx = 1\ny = 2\n```", strict=True)
    assert err.value.reason == "code"
    s = summarise(rewrite_many(["Hi there.", "I have 2 dogs.", "", "```\na=1\nb=2\n```"]))
    assert s["items"] == 4 and s["accepted"] == 2 and s["changed"] == 1
    assert s["rejected"] == {"empty": 1, "code": 1} and s["pass_all_checks"] == 2


# ------------------------------------------------------------------ LM rewrite plumbing
def test_lm_messages_and_parser() -> None:
    msgs = lm_rewrite_messages("I have 2 cats")
    assert msgs[0]["role"] == "system" and msgs[-1]["content"].endswith("I have 2 cats")
    assert parse_lm_rewrite('Sure! Here is the rewritten text:\n"I have two cats."', "I have 2 cats").text == \
        "I have two cats."
    assert parse_lm_rewrite("", "x").error == "empty"
    assert parse_lm_rewrite("I'm sorry, I can't.", "x").error == "refused"
    assert parse_lm_rewrite("word " * 80, "short question here").error == "answered"
    assert parse_lm_rewrite("half a repl", "x", truncated=True).error == "truncated"


def _upper_lm() -> ScriptedLM:
    """Upper-cases the text after the first line of the request; 'long' replies hit the length limit."""
    def reply(msgs):
        src = msgs[-1]["content"].split("\n", 1)[1]
        return src.upper(), ("length" if "LONG" in src.upper() else "stop")
    lm = ScriptedLM(reply, name="fake")
    lm.default_batch_size = 2
    return lm


def test_lm_rewrite_batches_and_keeps_order() -> None:
    res = lm_rewrite(_upper_lm(), ["a b c", "", "long one here", "x"], progress=False)
    assert [r.text for r in res] == ["A B C", "", "LONG ONE HERE", "X"]
    assert [r.error for r in res] == [None, "empty input", "truncated", None]


@pytest.mark.models
def test_lm_rewrite_real_model() -> None:
    from helpers.lm.generation import LM
    from helpers.core.models import MissingModelError

    try:
        lm = LM.load("smollm2-135m")
    except MissingModelError as err:
        pytest.skip(str(err))
    text = "I have 2 cats and 3 dogs."
    res = lm_rewrite(lm, [text], progress=False)  # greedy (temperature 0): the same reply every run
    assert len(res) == 1
    r = res[0]
    limit = min(512, math.ceil(1.6 * lm.count_tokens(text)) + 32)  # the per-batch token limit lm_rewrite promises
    assert r.ok and 0 < r.new_tokens <= limit, (r.raw, r.error, r.new_tokens)
    assert check_speakable(r.text) == [], r.text  # numbers in words: speakable
    assert "cats" in r.text.lower() and "dogs" in r.text.lower(), r.text  # a rewrite of the text, not an answer


def test_polish_messages_quote_the_rules_text() -> None:
    msgs = polish_messages("I would like to know the time")
    assert msgs[0]["role"] == "system" and msgs[-1]["role"] == "user"
    assert msgs[-1]["content"].endswith('"I would like to know the time"')
    assert len(polish_messages("x", examples=())) == 2
    for user, assistant in zip(msgs[1:-1:2], msgs[2:-1:2]):  # the worked examples are what the gate accepts
        src = user["content"].split("\n", 1)[1].strip('"')
        assert gate_polish(src, LMRewrite(raw="", text=assistant["content"])).accepted, assistant["content"]


@pytest.mark.parametrize("reply, sim, reason", [
    (LMRewrite(raw="", error="answered"), None, "answered"),
    (LMRewrite(raw="", text="So, can you tell me about 3 cats?"), None, "unspeakable"),
    (LMRewrite(raw="", text="Cats?"), None, "length"),
    (LMRewrite(raw="", text="So, can you tell me about three cats and also seven dogs and their owners and "
                            "where they all live today?"), None, "length"),
    (LMRewrite(raw="", text="So, can you tell me about three cats?"), 0.5, "meaning"),
    (LMRewrite(raw="", text="Sure, here are three cats."), 0.9, "answered"),
    (LMRewrite(raw="", text="So, can you tell me about three Persian cats?"), 0.9, "new names"),
    (LMRewrite(raw="", text="Tell me about three cats!"), 0.99, "unchanged"),
    (LMRewrite(raw="", text="So, can you tell me about three cats?"), 0.9, None),
])
def test_gate_polish_reasons(reply, sim, reason) -> None:
    out = gate_polish("Tell me about three cats.", reply, similarity=sim, min_similarity=0.8)
    assert out.reason == reason
    assert reason is None or reason in POLISH_REJECT_REASONS
    assert out.text == (reply.text if reason is None else "Tell me about three cats.")  # rejected: rules text kept


def test_lm_polish_gates_every_reply_and_keeps_order() -> None:
    replies = {"Tell me about three cats.": "So, can you tell me about three cats?",
               "What is the time in Oslo.": "What's the time in 4 Oslo?",
               "Write a poem about the sea.": "Sure! Here is a poem: " + "waves " * 36}
    lm = ScriptedLM(lambda msgs: replies[msgs[-1]["content"].split("\n", 1)[1].strip('"')], name="fake")
    seen = []

    def sim(a, b):
        seen.append((list(a), list(b)))
        return [0.9] * len(a)

    out = lm_polish(lm, list(replies), similarity=sim, progress=False)
    assert [p.source for p in out] == list(replies)
    assert [p.reason for p in out] == [None, "unspeakable", "truncated"]  # a runaway stops at the length budget
    assert out[0].text == "So, can you tell me about three cats?" and out[0].similarity == 0.9
    assert out[2].similarity is None and len(seen[0][0]) == 2  # only usable replies are embedded
    assert all(not check_speakable(p.text) for p in out)
    # the gate's length ratio caps generation
    assert max(c["max_new_tokens"] for c in lm.calls) == math.ceil(1.6 * 6) + 12


def test_spoken_markers() -> None:
    m = spoken_markers("So, what's the best way? I don't know. John's car is red and you like it.")
    assert m["contractions"] == pytest.approx(100 * 2 / 16)  # what's, don't; not the possessive John's
    assert m["words_per_sentence"] == pytest.approx(16 / 3)
    assert m["fillers"] == pytest.approx(1 / 3) and m["questions"] == pytest.approx(1 / 3)
    assert m["you"] == pytest.approx(100 / 16)
    assert spoken_markers("Well, it\u2019s fine.")["contractions"] == pytest.approx(100 / 3)
    assert all(math.isnan(v) for v in spoken_markers("").values())
    written, spoken = "I would like to know what is the best way to learn Python. I do not have experience.", \
        "So, what's the best way to learn Python? I don't have experience."
    a, b = spoken_markers(written), spoken_markers(spoken)
    assert b["contractions"] > a["contractions"] and b["words_per_sentence"] < a["words_per_sentence"]
    assert b["fillers"] > a["fillers"] and b["questions"] > a["questions"]


def test_new_names() -> None:
    src = "In Microsoft Exchange Online, will some code affect mailboxes in twitter?"
    assert new_names(src, "So, in Microsoft Excel Online, will some code affect mailboxes on Twitter?") == ["Excel"]
    assert new_names("i am using python", "Well, I'm using Python. Could you help?") == []  # case, "I", openers
