"""Question-answer pairs about rendered scenes, checked against their metadata, and a small VQA model.

Three sources of questions, as in the Llama 3 and LLaVA recipes where a text-only model wrote
questions and answers about images from what was known about them:

- **templates** (:data:`TEMPLATES`): one wording per question type; :func:`template_qa` fills the
  slots from a :class:`~helpers.vision.scenes.Scene`, so every answer is known by construction;
- **paraphrases**: a model rewords filled-in questions (the notebook uses chapter 03's
  ``paraphrase_texts``); :func:`to_template` turns a rewording back into a wording with slots, and
  rejects it, with a reason, when a slot value was lost, repeated or joined by another attribute;
- **model-written QA**: :func:`qa_prompts` asks a text-only model for a question and its answer
  from :func:`~helpers.vision.scenes.describe`'s text; :func:`check_qa` reads the question's
  shape, colour and cell words, computes the true answer from the metadata and says whether the
  model's answer is right, wrong or cannot be checked (and why).

The model (:class:`VQANet`) is a small CNN whose channels are scaled and shifted by a GRU's
reading of the question (FiLM, Perez et al., 2018), classifying over :data:`ANSWERS`;
:func:`train_vqa` trains it from scratch in a minute or so on a CPU and :func:`accuracy` scores
it. Written by hand: a few dozen lines of PyTorch teach more here than a library model would,
and no packaged VQA model is this small.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from helpers.vision.scenes import COLOURS, POSITIONS, SHAPES, KINDS, Scene

__all__ = ["QTYPES", "TEMPLATES", "HELD_OUT_WORDINGS", "ANSWERS", "PICTURE_WORDS", "REWORD_SYSTEM", "REWORD_EXAMPLES",
           "QA_INSTRUCTIONS", "QA_SYSTEM", "QA", "slot_values",
           "template_qa", "fill", "to_template", "normalize_answer", "true_answer", "check_qa", "qa_prompts",
           "make_questions", "reword", "Vocab", "VQANet", "train_vqa", "predict", "accuracy"]

QTYPES = ("count", "colour", "exists", "position", "digit")
#: the one template wording per question type; slots: {shapes} (plural), {shape}, {colour}, {position}
TEMPLATES: dict[str, str] = {
    "count": "How many {shapes} are there?",
    "colour": "What colour is the {shape}?",
    "exists": "Is there a {colour} {shape}?",
    "position": "Where is the {colour} {shape}?",
    "digit": "Which digit is in the {position}?",
}
#: wordings written for this course and never used for training: the held-out test of a VQA model
#: that only saw other wordings (written before any model paraphrase was read).
HELD_OUT_WORDINGS: dict[str, tuple[str, ...]] = {
    "count": ("Count the {shapes} in the picture.", "What is the number of {shapes} shown?",
              "Tell me how many {shapes} you can see."),
    "colour": ("Which colour does the {shape} have?", "The {shape} is painted in what colour?",
               "Name the colour of the {shape}."),
    "exists": ("Does the picture contain a {colour} {shape}?", "Can you see a {colour} {shape} anywhere?",
               "Is a {colour} {shape} present?"),
    "position": ("In which corner is the {colour} {shape}?", "Where can the {colour} {shape} be found?",
                 "Which part of the image holds the {colour} {shape}?"),
    "digit": ("What number is written in the {position}?", "Read the digit in the {position}.",
              "Which numeral appears in the {position}?"),
}
#: every answer the VQA model can give (counts and digits share "0"-"9")
ANSWERS: tuple[str, ...] = tuple(str(i) for i in range(10)) + tuple(COLOURS) + ("yes", "no") + tuple(POSITIONS)
_SLOTS = ("shapes", "shape", "colour", "position")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine".split())}
_POSITION_WORDS = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom", "left": "left", "right": "right"}
_PLURAL = {k: k + "s" for k in KINDS}


@dataclass
class QA:
    """One question with its type, answer, wording (template) and the slot values that filled it."""

    qtype: str
    question: str
    answer: str
    wording: str
    slots: dict[str, str]


def slot_values(qtype: str, scene: Scene, rng: np.random.Generator) -> tuple[dict[str, str], str] | None:
    """Slot values for a question of ``qtype`` about ``scene`` and the answer, or ``None`` if none fits.

    count: any kind (the answer may be 0); colour: a kind with exactly one object; exists: a
    colour and kind, "yes" or "no" with equal chance where both are possible; position: a
    colour-kind pair with exactly one object; digit: a cell that holds a digit.
    """
    if qtype == "count":
        kind = str(rng.choice(KINDS))
        return {"shapes": _PLURAL[kind]}, str(len(scene.matching(kind)))
    if qtype == "colour":
        unique = [k for k in KINDS if len(scene.matching(k)) == 1]
        if not unique:
            return None
        kind = str(rng.choice(unique))
        return {"shape": kind}, scene.matching(kind)[0].colour
    if qtype == "exists":
        present = sorted({(o.colour, o.kind) for o in scene.objects})
        absent = [(c, k) for c in COLOURS for k in KINDS if (c, k) not in present]
        want_yes = rng.random() < 0.5
        pool = present if (want_yes and present) or not absent else absent
        c, k = pool[int(rng.integers(len(pool)))]
        return {"colour": c, "shape": k}, "yes" if (c, k) in present else "no"
    if qtype == "position":
        pairs = Counter((o.colour, o.kind) for o in scene.objects)
        unique = sorted(p for p, n in pairs.items() if n == 1)
        if not unique:
            return None
        c, k = unique[int(rng.integers(len(unique)))]
        return {"colour": c, "shape": k}, scene.matching(k, c)[0].position
    if qtype == "digit":
        cells = [o for o in scene.objects if o.kind == "digit"]
        if not cells:
            return None
        o = cells[int(rng.integers(len(cells)))]
        return {"position": o.position}, str(o.digit)
    raise ValueError(f"unknown question type {qtype!r}; expected one of {QTYPES}")


def fill(wording: str, slots: Mapping[str, str]) -> str:
    """A wording with its ``{slot}`` fields filled; a missing slot value is a ``KeyError`` naming it."""
    needed = {f for _, f, _, _ in string.Formatter().parse(wording) if f}
    missing = needed - set(slots)
    if missing:
        raise KeyError(f"wording {wording!r} needs slot(s) {sorted(missing)}")
    return wording.format(**slots)


def template_qa(scene: Scene, qtype: str, rng: np.random.Generator,
                wordings: Sequence[str] | None = None) -> QA | None:
    """One question of ``qtype`` about ``scene`` in a wording drawn from ``wordings`` (default: the template)."""
    got = slot_values(qtype, scene, rng)
    if got is None:
        return None
    slots, answer = got
    pool = [w for w in (wordings or [TEMPLATES[qtype]]) if _wording_slots(w) == set(slots)]
    if not pool:
        raise ValueError(f"no wording for {qtype!r} uses exactly the slots {sorted(slots)}")
    wording = pool[int(rng.integers(len(pool)))]
    return QA(qtype, fill(wording, slots), answer, wording, dict(slots))


def _wording_slots(wording: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(wording) if f}


def _attribute_words() -> dict[str, str]:
    """Every word that names a kind, colour, cell part or number -> the slot family it belongs to."""
    words = {k: "kind" for k in KINDS} | {p: "kind" for p in _PLURAL.values()}
    words |= {c: "colour" for c in COLOURS} | {w: "position" for w in _POSITION_WORDS}
    words |= {w: "kind" for w in _DIGIT_SYNONYMS}
    words |= {w: "number" for w in _NUMBER_WORDS} | {str(i): "number" for i in range(10)}
    return words


#: words that ask for the same thing as "digit": allowed in a rewording of a wording that says "digit"
_DIGIT_SYNONYMS = ("number", "numbers", "numeral", "numerals")
#: what a phrase "in/on/at/of the ..." may name in a question about the picture: the picture or a part of it
PICTURE_WORDS = frozenset("""picture pictures image images drawing scene grid canvas photo frame illustration
    cell cells corner corners part parts side sides area region spot square quarter section box panel half""".split())
_PLACE_PHRASE = re.compile(r"\b(?:in|on|at|of|inside|within|across|from)\s+(?:the|a|an|this|that|our|my|your)\s+"
                           r"(\w+)(?=(?:[\s-]+(\w+))?)", re.I)


def _other_setting(wording: str) -> bool:
    """Whether a phrase such as "on the wall" names something other than the picture, a part of it or a slot.

    The one or two words after the article are read ("in the {position} corner", "of the whole picture")."""
    text = re.sub(r"\{\w+\}", "SLOT", wording)  # upper case: "slot" written in a rewording stays a word
    for m in _PLACE_PHRASE.finditer(text):
        words = [w for w in m.groups() if w]
        if "SLOT" not in words and not {w.lower() for w in words} & PICTURE_WORDS:
            return True
    return False


def to_template(paraphrase: str, slots: Mapping[str, str], *,
                allowed: Sequence[str] = ()) -> tuple[str | None, str | None]:
    """Turn a reworded question back into a wording with slots: ``(wording, None)`` or ``(None, reason)``.

    Every slot value (e.g. ``colour="red"``, ``shape="circle"``) must appear exactly once as whole
    words (case-insensitive; "bottom-left" matches "bottom left"); it is replaced by ``{colour}``, ``{shape}``. Reasons: ``"lost <slot>"``
    (the rewording dropped or changed it, e.g. "circle" became "round shape"), ``"repeated <slot>"``,
    ``"extra attribute"`` (another kind, colour, cell word or number remains, e.g. "What colour is that blue
    {shape}?" or "What colour is the {shape} 4?", which would change the question or give away the answer
    once other values are filled in; words in ``allowed``, such as "digit" in the original wording "Which
    digit is in the {position}?", do not count, and "digit" allows its synonyms "number" and "numeral"),
    ``"other setting"`` (a phrase such as "in the world", "on a map" or "on the wall" moves the question
    out of the picture: after in/on/at/of and an article, only :data:`PICTURE_WORDS` or a slot may follow),
    ``"not a question"`` (no question mark and no imperative such as "Count ..."/"Tell ..."), ``"braces"``
    (the text holds ``{`` or ``}``).
    """
    text = " ".join(paraphrase.split())
    if "{" in text or "}" in text:
        return None, "braces"
    if not text:
        return None, "empty"
    spans = []
    for slot in sorted(slots, key=lambda s: -len(slots[s])):
        value = slots[slot]
        pattern = r"[\s-]+".join(re.escape(w) for w in value.split())
        hits = [m for m in re.finditer(rf"(?<![\w-]){pattern}(?![\w-])", text, flags=re.I)
                if not any(m.start() < e and s < m.end() for s, e, _ in spans)]
        if not hits:
            return None, f"lost {slot}"
        if len(hits) > 1:
            return None, f"repeated {slot}"
        spans.append((hits[0].start(), hits[0].end(), slot))
    out = text
    for s, e, slot in sorted(spans, reverse=True):
        out = out[:s] + "{" + slot + "}" + out[e:]
    rest = re.sub(r"\{\w+\}", " ", out).lower()
    vocab = _attribute_words()
    ok = {w.lower() for w in allowed}
    if "digit" in ok or "digits" in ok:
        ok |= set(_DIGIT_SYNONYMS)
    if any(w in vocab and w not in ok for w in re.findall(r"[a-z]+|\d+", rest)):
        return None, "extra attribute"
    if _other_setting(out):
        return None, "other setting"
    if not out.rstrip().endswith("?") and not re.match(r"^(count|tell|name|say|give|list|read|identify|state|"
                                                        r"determine|find|please|describe|specify)\b", out, re.I):
        return None, "not a question"
    return out, None


def normalize_answer(text: Any, qtype: str) -> str | None:
    """A free-text answer mapped onto :data:`ANSWERS` for ``qtype``, or ``None`` when it is not one.

    "Two." -> "2", "Yes, there is." -> "yes", "upper-left corner" -> "top left", "It is red." ->
    "red". An answer naming two different values (e.g. two colours) is ``None``: it cannot be checked.
    """
    if text is None:
        return None
    t = str(text).lower().replace("-", " ")
    words = re.findall(r"[a-z]+|\d+", t)
    if not words:
        return None
    if qtype in ("count", "digit"):
        vals = {w if w.isdigit() else _NUMBER_WORDS.get(w) for w in words} - {None}
        if qtype == "count" and not vals and {"no", "none"} & set(words):
            vals = {"0"}  # "None." / "There are no circles."
        return vals.pop() if len(vals) == 1 else None
    if qtype == "exists":
        yes, no = words[0] in ("yes", "yeah", "yep", "true"), words[0] in ("no", "nope", "false")
        return "yes" if yes else "no" if no else None
    if qtype == "colour":
        found = {w for w in words if w in COLOURS}
        return found.pop() if len(found) == 1 else None
    if qtype == "position":
        parts = {_POSITION_WORDS[w] for w in words if w in _POSITION_WORDS}
        v = [p for p in ("top", "bottom") if p in parts]
        h = [p for p in ("left", "right") if p in parts]
        return f"{v[0]} {h[0]}" if len(v) == 1 and len(h) == 1 else None
    raise ValueError(f"unknown question type {qtype!r}; expected one of {QTYPES}")


def _mentions(question: str) -> tuple[set[str], set[str], str | None]:
    """The kinds, colours and the one cell (or None) a question names."""
    words = re.findall(r"[a-z]+", question.lower().replace("-", " "))
    kinds = {k for k in KINDS if k in words or _PLURAL[k] in words}
    if {"number", "numbers", "numeral", "numerals"} & set(words):
        kinds.add("digit")
    colours = {c for c in COLOURS if c in words}
    pos = normalize_answer(" ".join(w for w in words if w in _POSITION_WORDS), "position")
    return kinds, colours, pos


def true_answer(scene: Scene, qtype: str, question: str) -> tuple[str | None, str | None]:
    """The answer to a free-form ``question`` of ``qtype`` computed from the metadata: ``(answer, None)``
    or ``(None, reason)`` when the question cannot be checked.

    Reasons: ``"no object named"``, ``"several kinds named"``, ``"ambiguous"`` (more than one
    object fits), ``"object not in scene"`` (the question asks the colour or place of something
    the picture does not hold: a hallucinated object), ``"empty cell"``.
    """
    kinds, colours, pos = _mentions(question)
    if len(kinds) > 1 and qtype != "digit":
        return None, "several kinds named"
    kind = next(iter(kinds), None)
    colour = next(iter(colours), None) if len(colours) == 1 else None
    if len(colours) > 1:
        return None, "several colours named"
    if qtype == "count":
        if kind is None and colour is None and not re.search(r"\b(objects?|shapes?|things?|items?)\b", question, re.I):
            return None, "no object named"
        return str(len(scene.matching(kind, colour))), None
    if qtype == "exists":
        if kind is None:
            return None, "no object named"
        return ("yes" if scene.matching(kind, colour) else "no"), None
    if qtype == "digit":
        if pos is not None:
            o = scene.at(pos)
            if o is None:
                return None, "empty cell"
            return (str(o.digit), None) if o.kind == "digit" else (None, "object not in scene")
        digits = scene.matching("digit", colour)
        if not digits:
            return None, "object not in scene"
        return (str(digits[0].digit), None) if len(digits) == 1 else (None, "ambiguous")
    # colour and position: one object, found by cell, kind and colour
    if qtype == "colour" and pos is not None:
        o = scene.at(pos)
        if o is None:
            return None, "empty cell"
        if kind is not None and o.kind != kind:
            return None, "object not in scene"
        return o.colour, None
    if kind is None:
        return None, "no object named"
    found = scene.matching(kind, colour)
    if not found:
        return None, "object not in scene"
    if len(found) > 1:
        return None, "ambiguous"
    return (found[0].colour if qtype == "colour" else found[0].position), None


def check_qa(scene: Scene, qtype: str, question: Any, answer: Any) -> dict[str, Any]:
    """Check one model-written pair: ``{"status": "correct"|"wrong"|"unverifiable", "truth", "given", "reason"}``.

    ``given`` is the answer normalised (:func:`normalize_answer`); an answer that maps onto no
    value of the type is ``wrong`` with reason ``"answer not a <type> value"``, since the model was
    asked for exactly that.
    """
    if not isinstance(question, str) or not question.strip():
        return {"status": "unverifiable", "truth": None, "given": None, "reason": "no question"}
    truth, why = true_answer(scene, qtype, question)
    given = normalize_answer(answer, qtype)
    if truth is None:
        return {"status": "unverifiable", "truth": None, "given": given, "reason": why}
    if given is None:
        return {"status": "wrong", "truth": truth, "given": None, "reason": f"answer not a {qtype} value"}
    return {"status": "correct" if given == truth else "wrong", "truth": truth, "given": given,
            "reason": None if given == truth else "wrong value"}


QA_SYSTEM = ("You write question-answer pairs about a picture you cannot see, using only its description. "
             "Reply with one JSON object {\"question\": ..., \"answer\": ...} and nothing else.")
#: the instruction for rewording a question about a picture (used with chapter 03's ``paraphrase_texts``)
REWORD_SYSTEM = ("Reword each question about a picture: different words and sentence structure, same meaning. "
                 "Keep every object, colour and place it names, add nothing else, and never answer it. "
                 "Reply with the reworded question only.")
#: worked examples for :data:`REWORD_SYSTEM`, written for this course about other kinds of picture question (none
#: counts, names a colour, asks whether something is there, where it is or which digit), so that they show the
#: task without handing over wordings for the five types; their topic words are rejected if copied
REWORD_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Is the kitten asleep?", "Does the kitten look like it is sleeping?"),
    ("What is the woman holding?", "What has the woman got in her hands?"),
    ("How tall is the ladder?", "What height does the ladder reach?"),
)
#: what each question type asks for, as told to the model
QA_INSTRUCTIONS: dict[str, str] = {
    "count": "a question asking how many objects of one shape there are; the answer is a number",
    "colour": "a question asking the colour of one object; the answer is one colour word",
    "exists": "a question asking whether the picture contains an object of a given colour and shape; "
              "the answer is yes or no",
    "position": "a question asking in which cell one object is; the answer is top left, top right, "
                "bottom left or bottom right",
    "digit": "a question asking which handwritten digit is in one cell; the answer is the digit",
}


def qa_prompts(description: str, qtype: str) -> list[dict[str, str]]:
    """The conversation asking a text-only model for one ``qtype`` question and answer about a described picture."""
    if qtype not in QA_INSTRUCTIONS:
        raise ValueError(f"unknown question type {qtype!r}; expected one of {QTYPES}")
    return [{"role": "system", "content": QA_SYSTEM},
            {"role": "user", "content": f"Picture:\n{description}\n\nWrite {QA_INSTRUCTIONS[qtype]}."}]


def make_questions(scenes: Sequence[Scene], wordings: Mapping[str, Sequence[str]], *, seed: int,
                   per_scene: int = 1, qtypes: Sequence[str] = QTYPES) -> list[tuple[int, QA]]:
    """``(scene index, QA)`` pairs: ``per_scene`` questions per scene, types cycling through ``qtypes``.

    A type that does not fit a scene (no digit for a digit question) moves on to the next type,
    so the mix stays close to even. Wordings for each type come from ``wordings[type]``.
    """
    missing = [q for q in qtypes if not wordings.get(q)]
    if missing:
        raise ValueError(f"no wordings for question type(s) {missing}")
    rng = np.random.default_rng(seed)
    out, k = [], 0
    for i, scene in enumerate(scenes):
        for _ in range(per_scene):
            for step in range(len(qtypes)):
                qa = template_qa(scene, qtypes[(k + step) % len(qtypes)], rng, wordings[qtypes[(k + step) % len(qtypes)]])
                if qa is not None:
                    out.append((i, qa))
                    k += step + 1
                    break
    return out


def reword(pairs: Sequence[tuple[int, QA]], wordings: Mapping[str, Sequence[str]], *,
           seed: int) -> list[tuple[int, QA]]:
    """The same questions (scene, type, slot values, answer) in wordings drawn from ``wordings[type]``.

    Two training sets built this way differ only in their wording, which is what an experiment
    on wording needs. A type without wordings is a ``ValueError``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, qa in pairs:
        pool = list(wordings.get(qa.qtype) or ())
        if not pool:
            raise ValueError(f"no wordings for question type {qa.qtype!r}")
        w = pool[int(rng.integers(len(pool)))]
        out.append((i, QA(qa.qtype, fill(w, qa.slots), qa.answer, w, dict(qa.slots))))
    return out


# ----------------------------------------------------------------------------------- the VQA model
class Vocab:
    """Lower-cased word ids from the training questions; 0 pads, 1 is every word not seen in training."""

    def __init__(self, questions: Sequence[str]):
        counts = Counter(w for q in questions for w in self.words(q))
        self.itos = ["<pad>", "<unk>"] + sorted(counts)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z]+|\d+", text.lower())

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, questions: Sequence[str], max_len: int = 16) -> np.ndarray:
        """(n, max_len) int64 ids, padded with 0 at the end; longer questions are cut at ``max_len``."""
        out = np.zeros((len(questions), max_len), np.int64)
        for i, q in enumerate(questions):
            ids = [self.stoi.get(w, 1) for w in self.words(q)][:max_len]
            out[i, :len(ids)] = ids
        return out

    def unknown_share(self, questions: Sequence[str]) -> float:
        """Share of the words in ``questions`` that this vocabulary has never seen."""
        words = [w for q in questions for w in self.words(q)]
        return float(np.mean([w not in self.stoi for w in words])) if words else float("nan")


def _torch():
    import torch

    return torch


def VQANet(vocab_size: int, n_answers: int = len(ANSWERS), *, width: int = 16, embed: int = 64):
    """A FiLM VQA model: the question's mean word vector scales and shifts the channels of a 3-layer CNN.

    The question encoder is a bag of words (the mean embedding of the known words; unknown words
    are left out rather than read as noise): these questions are told apart by which words they
    hold, and it costs a fifth of a GRU. Channels grow ``width``, ``2 * width``, ``2 * width``.
    Built on call (so importing this module does not load torch). Input: images (n, 3, H, W) in
    0-1 and word ids (n, L) padded with 0; output: logits over ``n_answers``.
    """
    torch = _torch()
    nn = torch.nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab_size, embed, padding_idx=0)
            self.q = nn.Sequential(nn.Linear(embed, embed), nn.ReLU())
            chans = (3, width, 2 * width, 2 * width)
            self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans, chans[1:])])
            self.norms = nn.ModuleList([nn.BatchNorm2d(c, affine=False) for c in chans[1:]])
            self.film = nn.Linear(embed, 2 * sum(chans[1:]))
            self.splits = [2 * c for c in chans[1:]]
            self.fc = nn.Sequential(nn.Linear(chans[-1] * 16 + embed, 128), nn.ReLU(), nn.Linear(128, n_answers))

        def forward(self, images, ids):
            known = (ids > 1).float().unsqueeze(-1)  # 0 pads, 1 is an unknown word: both left out
            q = self.q((self.emb(ids) * known).sum(1) / known.sum(1).clamp(min=1))
            x = images
            for j, (conv, norm, f) in enumerate(zip(self.convs, self.norms, self.film(q).split(self.splits, 1))):
                gamma, beta = f.chunk(2, 1)
                x = torch.relu(norm(conv(x)) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None])
                x = nn.functional.max_pool2d(x, 2) if j < 2 else nn.functional.adaptive_max_pool2d(x, 4)
            return self.fc(torch.cat([x.flatten(1), q], 1))

    return _Net()


def _answer_ids(answers: Sequence[str]) -> np.ndarray:
    index = {a: i for i, a in enumerate(ANSWERS)}
    bad = sorted({a for a in answers if a not in index})
    if bad:
        raise ValueError(f"answers outside ANSWERS: {bad[:5]}")
    return np.array([index[a] for a in answers], np.int64)


def train_vqa(images: np.ndarray, questions: Sequence[str], answers: Sequence[str], *, seed: int, epochs: int = 8,
              batch_size: int = 64, lr: float = 3e-3, width: int = 16, threads: int | None = 1,
              progress: bool = False):
    """Train :func:`VQANet` from scratch; returns ``(model, vocab, losses)`` (mean loss per epoch).

    ``images`` is (n, 3, H, W) float32 in 0-1 with one row per question (index it by scene first).
    The vocabulary comes from ``questions`` only, so words first met at test time are unknown.
    ``threads``: PyTorch threads while training (restored after). One by default: for a model this
    small, two threads were 10x slower than one on a busy 2-core machine (0.16 s against 1.6 s per
    batch of 64), since each operation waits for both threads; ``None`` keeps the current setting.
    """
    torch = _torch()
    if len(images) != len(questions) or len(questions) != len(answers):
        raise ValueError(f"images, questions and answers differ in length: {len(images)}, {len(questions)}, "
                         f"{len(answers)}")
    if not len(questions):
        raise ValueError("no training questions")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(torch, images, questions, answers, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr,
                      width=width, progress=progress)
    finally:
        torch.set_num_threads(old_threads)


def _train(torch, images, questions, answers, *, seed, epochs, batch_size, lr, width, progress):
    torch.manual_seed(seed)
    vocab = Vocab(questions)
    x = torch.as_tensor(images)
    q = torch.as_tensor(vocab.encode(questions))
    y = torch.as_tensor(_answer_ids(answers))
    model = VQANet(len(vocab), width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    from tqdm.auto import tqdm

    for _ in tqdm(range(epochs), desc="epochs", disable=not progress, leave=False):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for s in range(0, len(y), batch_size):
            b = perm[s:s + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[b], q[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(b)
        losses.append(total / len(y))
    model.eval()
    return model, vocab, losses


def predict(model, vocab: Vocab, images: np.ndarray, questions: Sequence[str], *, batch_size: int = 256) -> list[str]:
    """The model's answer (one of :data:`ANSWERS`) to each question about its image."""
    torch = _torch()
    if len(images) != len(questions):
        raise ValueError(f"{len(images)} images for {len(questions)} questions")
    out = []
    with torch.inference_mode():
        ids = torch.as_tensor(vocab.encode(questions))
        for s in range(0, len(questions), batch_size):
            logits = model(torch.as_tensor(images[s:s + batch_size]), ids[s:s + batch_size])
            out += [ANSWERS[i] for i in logits.argmax(1).tolist()]
    return out


def accuracy(predictions: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """Per-item correctness (1.0 or 0.0), for :func:`helpers.core.stats.bootstrap_ci`."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} answers")
    return np.array([p == a for p, a in zip(predictions, answers)], float)
