"""Paraphrases written by a language model, checked before they are used.

Notebook 03 plants these as the hardest near-duplicates (same meaning, different words);
later chapters reuse them for augmentation. :func:`paraphrase_texts` asks a chat model
(a :class:`helpers.lm.generation.LM`) for one rewording per text with a few worked examples,
and :func:`check_paraphrase` rejects replies that are empty, unchanged, answered instead of
reworded, far off in length, or carrying a detail copied from a worked example ("How many squares are there
in Canada?"); every rejection is counted by reason, nothing is dropped silently.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from helpers.text.dedup import normalize_text

__all__ = ["PARAPHRASE_PROMPT", "PARAPHRASE_SYSTEM", "PARAPHRASE_EXAMPLES", "EXAMPLE_DETAILS", "example_details",
           "clean_paraphrase", "check_paraphrase", "paraphrase_texts"]


#: The system prompt :func:`paraphrase_texts` gives the model: the instruction, said once.
PARAPHRASE_SYSTEM = ("Reword each request: different words and sentence structure, same meaning and details. "
                     "Never answer it. Reply with the reworded request only.")
#: The user turn for each request; ``{text}`` is the request.
PARAPHRASE_PROMPT = "Reword: {text}"
#: Worked examples (written for this course), sent as earlier turns: a small model copies the request almost
#: word for word, or answers it, unless it sees what a real rewording looks like. Two are enough; every
#: example is read again for every request, and on a CPU reading the prompt is the expensive part.
PARAPHRASE_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("write a python function that checks if a number is prime",
     "Could you code up a Python routine that tells me whether a given integer is a prime?"),
    ("what are the 5 largest cities in canada", "Which five Canadian cities have the biggest populations?"),
)
#: The topic words of :data:`PARAPHRASE_EXAMPLES` (not the words any rewording may use, such as "largest" or
#: "number"). A small model sometimes pastes one of them into an unrelated request ("How many squares are there
#: in Canada?"); :func:`check_paraphrase` rejects a rewording that brings in one the original never mentioned.
EXAMPLE_DETAILS: frozenset[str] = frozenset({"python", "function", "routine", "prime", "integer", "canada",
                                             "canadian", "city", "cities", "population", "populations"})
_PARA_PREAMBLE = re.compile(r"^\s*(?:(?:sure|certainly|of course|okay)[,!.]?\s*)?(?:here(?:'s| is) )?"
                            r"(?:the |a |an |my )?(?:rewritten|reworded|paraphrased)?\s*(?:request|version|paraphrase)?"
                            r"\s*:\s*", re.I)
_ANSWER_START = re.compile(r"^\s*(?:sure|certainly|of course|here is|here's|here are|i'd be happy|i can|as an ai|"
                           r"i'm sorry|i am sorry|```)", re.I)


def clean_paraphrase(text: str | None) -> str:
    """A model's paraphrase without a "Rewritten request:" preamble, surrounding quotes or spaces."""
    t = (text or "").strip()
    m = _PARA_PREAMBLE.match(t)
    if m and m.end() > 0 and ":" in m.group(0):
        t = t[m.end():].strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'“”":
        t = t[1:-1].strip()
    return t.strip("“”").strip()


_WORD = re.compile(r"[a-z]+")


def _words(text: str) -> set[str]:
    """Lower-case words, each also without a plural "s" ("squares" gives "squares" and "square")."""
    ws = set(_WORD.findall(text.lower()))
    return ws | {w[:-1] for w in ws if w.endswith("s") and len(w) > 3}


def example_details(examples: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The details a rewording could copy from custom worked ``examples``: their words of five letters or more
    that are not English stop words (scikit-learn's list). Broader than :data:`EXAMPLE_DETAILS`, which was
    picked by hand for the default examples."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = _words(" ".join(f"{q} {a}" for q, a in examples))
    return frozenset(w for w in words if len(w) >= 5 and w not in ENGLISH_STOP_WORDS)


def check_paraphrase(original: str, candidate: str | None, *, min_ratio: float = 0.4,
                     max_ratio: float = 2.5, details: frozenset[str] | set[str] = EXAMPLE_DETAILS) -> str | None:
    """Why ``candidate`` is not a usable paraphrase of ``original`` (``None`` if it is).

    Reasons: ``empty``; ``unchanged`` (the same after :func:`normalize_text`); ``answered``
    (it starts like a reply, "Sure, here is ...", or a code fence: the model carried out the
    request instead of rewording it); ``too short`` / ``too long`` (length outside
    ``min_ratio`` to ``max_ratio`` times the original's, in characters); ``copied from an example``
    (it contains one of ``details``, the topic words of the worked examples, that ``original``
    does not: the model pasted part of an example into the request). Cheap checks, so some
    bad paraphrases get through: read examples before trusting the set.
    """
    c = clean_paraphrase(candidate)
    if not c:
        return "empty"
    if normalize_text(c) == normalize_text(original):
        return "unchanged"
    if _ANSWER_START.match(c) and not _ANSWER_START.match(original):
        return "answered"
    ratio = len(c) / max(1, len(original))
    if ratio < min_ratio:
        return "too short"
    if ratio > max_ratio:
        return "too long"
    if details:
        # a word counts as the original's when it shares its first five letters with one ("Canadian", "canada")
        stems = {w[:5] for w in _words(original)}
        if any(w in details and w[:5] not in stems for w in _words(c)):
            return "copied from an example"
    return None


def paraphrase_texts(lm, texts: Sequence[str], *, max_new_tokens: int = 96, temperature: float = 0.0,
                     batch_size: int | None = None, prompt: str = PARAPHRASE_PROMPT,
                     system: str | None = PARAPHRASE_SYSTEM,
                     examples: Sequence[tuple[str, str]] = PARAPHRASE_EXAMPLES, progress: bool = True,
                     **chat_kwargs) -> tuple[list[str | None], "dict[str, int]"]:
    """Ask a chat model (an :class:`helpers.lm.generation.LM`) to reword each text; check each answer.

    Each request is sent as a conversation: ``system`` (the instruction), then the worked
    ``examples`` as earlier turns (few-shot), then ``prompt`` filled with the text. The prompt
    is kept short on purpose: on a CPU, reading the prompt costs more than writing the reply. Returns ``(paraphrases, rejected)``:
    a cleaned paraphrase per text, or ``None`` where :func:`check_paraphrase` rejected it (or
    the reply hit ``max_new_tokens``: ``"cut off"``), and the count of each rejection reason.
    Nothing is dropped silently. With custom ``examples``, the words a rewording must not copy from
    them are :func:`example_details` of those examples.
    """
    from collections import Counter

    details = EXAMPLE_DETAILS if tuple(examples) == tuple(PARAPHRASE_EXAMPLES) else example_details(examples)

    shots: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for q, a in examples:
        shots += [{"role": "user", "content": prompt.replace("{text}", q)}, {"role": "assistant", "content": a}]
    convs = [shots + [{"role": "user", "content": prompt.replace("{text}", t)}] for t in texts]
    gens = lm.chat(convs, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
                   progress=progress, **chat_kwargs)
    out: list[str | None] = []
    rejected: Counter = Counter()
    for t, g in zip(texts, gens):
        why = "cut off" if g.finish_reason == "length" else check_paraphrase(t, g.text, details=details)
        if why:
            rejected[why] += 1
            out.append(None)
        else:
            out.append(clean_paraphrase(g.text))
    return out, dict(rejected)
