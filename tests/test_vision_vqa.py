"""helpers.vision.vqa: template QA known by construction, paraphrases back to wordings, answer checking, the VQA model."""
import numpy as np
import pytest

from helpers.vision import vqa as V
from helpers.vision.scenes import Scene, SceneObject, random_scene, render_array

SCENE = Scene([SceneObject("circle", "red", "top left", (2, 2, 14, 14)),
               SceneObject("circle", "blue", "top right", (18, 2, 30, 14)),
               SceneObject("digit", "green", "bottom left", (2, 18, 14, 30), digit=7, glyph=0),
               SceneObject("square", "yellow", "bottom right", (18, 18, 30, 30))])


def test_template_answers_are_true_of_the_scene():
    rng = np.random.default_rng(0)
    seen = set()
    for s in range(200):
        scene = random_scene(s)
        for qtype in V.QTYPES:
            qa = V.template_qa(scene, qtype, rng)
            if qa is None:
                continue
            seen.add(qtype)
            assert qa.answer in V.ANSWERS
            truth, why = V.true_answer(scene, qtype, qa.question)  # the checker reads the question back
            assert why is None and truth == qa.answer, (qa, truth, why)
    assert seen == set(V.QTYPES)


def test_questions_that_do_not_fit_are_skipped():
    rng = np.random.default_rng(0)
    no_digit = Scene([SceneObject("circle", "red", "top left", (2, 2, 14, 14))])
    assert V.template_qa(no_digit, "digit", rng) is None
    two_reds = Scene([SceneObject("circle", "red", "top left", (2, 2, 14, 14)),
                      SceneObject("circle", "red", "top right", (18, 2, 30, 14))])
    assert V.template_qa(two_reds, "position", rng) is None and V.template_qa(two_reds, "colour", rng) is None
    assert V.template_qa(two_reds, "count", np.random.default_rng(1)) is not None


def test_exists_questions_are_balanced():
    rng = np.random.default_rng(0)
    answers = [V.template_qa(random_scene(s), "exists", rng).answer for s in range(400)]
    assert 0.4 < answers.count("yes") / len(answers) < 0.6


def test_make_questions_mixes_types_and_uses_the_given_wordings():
    scenes = [random_scene(s) for s in range(100)]
    pairs = V.make_questions(scenes, V.HELD_OUT_WORDINGS, seed=0, per_scene=2)
    assert len(pairs) == 200
    counts = {q: sum(qa.qtype == q for _, qa in pairs) for q in V.QTYPES}
    assert min(counts.values()) >= 20, counts
    assert all(qa.wording in V.HELD_OUT_WORDINGS[qa.qtype] for _, qa in pairs)
    assert all(V.fill(qa.wording, qa.slots) == qa.question for _, qa in pairs)
    with pytest.raises(ValueError, match="no wordings"):
        V.make_questions(scenes, {"count": ["How many {shapes}?"]}, seed=0)


def test_to_template_recovers_slots_and_rejects_with_reasons():
    slots = {"colour": "red", "shape": "circle"}
    assert V.to_template("Can you spot a Red circle in the image?", slots) == (
        "Can you spot a {colour} {shape} in the image?", None)
    assert V.to_template("Is there a crimson circle?", slots) == (None, "lost colour")
    assert V.to_template("Is the red circle next to another red one?", slots) == (None, "repeated colour")
    assert V.to_template("Is there a red circle or a blue square?", slots) == (None, "extra attribute")
    assert V.to_template("There is a red circle", slots) == (None, "not a question")
    assert V.to_template("Count the {x} red circle", slots) == (None, "braces")
    assert V.to_template("Count the circles", {"shapes": "circles"}) == ("Count the {shapes}", None)
    # a plural is not the singular slot
    assert V.to_template("Are there red circles?", slots) == (None, "lost shape")


@pytest.mark.parametrize("qtype, text, want", [
    ("count", "Two.", "2"), ("count", "There are 3 circles", "3"), ("count", "None", "0"),
    ("count", "one or two", None), ("digit", "It is the digit 7", "7"), ("digit", "seven", "7"),
    ("exists", "Yes, there is.", "yes"), ("exists", "No", "no"), ("exists", "Maybe", None),
    ("colour", "It is red.", "red"), ("colour", "red and blue", None), ("colour", "purple", None),
    ("position", "upper-left corner", "top left"), ("position", "Bottom right", "bottom right"),
    ("position", "left", None), ("position", None, None),
])
def test_normalize_answer(qtype, text, want):
    assert V.normalize_answer(text, qtype) == want


def test_check_qa_right_wrong_and_unverifiable():
    ok = V.check_qa(SCENE, "count", "How many circles are in the picture?", "2")
    assert ok["status"] == "correct" and ok["truth"] == "2"
    wrong = V.check_qa(SCENE, "colour", "What colour is the square?", "blue")
    assert wrong["status"] == "wrong" and wrong["truth"] == "yellow" and wrong["given"] == "blue"
    assert V.check_qa(SCENE, "position", "Where is the digit?", "bottom left")["status"] == "correct"
    assert V.check_qa(SCENE, "digit", "Which digit is in the lower left cell?", "7")["status"] == "correct"
    assert V.check_qa(SCENE, "exists", "Is there a green triangle?", "yes")["truth"] == "no"
    assert V.check_qa(SCENE, "colour", "What colour is the circle?", "red")["reason"] == "ambiguous"
    assert V.check_qa(SCENE, "position", "Where is the triangle?", "top left")["reason"] == "object not in scene"
    assert V.check_qa(SCENE, "colour", "What is it?", "red")["reason"] == "no object named"
    assert V.check_qa(SCENE, "count", "", "2")["reason"] == "no question"
    assert V.check_qa(SCENE, "count", "How many squares?", "lots")["reason"] == "answer not a count value"


def test_qa_prompts_hold_the_description_and_refuse_unknown_types():
    conv = V.qa_prompts("a red circle", "digit")
    assert conv[0]["role"] == "system" and "JSON" in conv[0]["content"]
    assert "a red circle" in conv[1]["content"] and "digit" in conv[1]["content"]
    with pytest.raises(ValueError):
        V.qa_prompts("x", "size")


def test_vocab_marks_unseen_words():
    voc = V.Vocab(["How many circles are there?"])
    ids = voc.encode(["How many squares?"], max_len=5)
    assert ids.shape == (1, 5) and ids[0, 2] == 1 and ids[0, 3] == 0 and ids[0, 0] > 1
    assert voc.unknown_share(["how many squares"]) == pytest.approx(1 / 3)


def test_the_model_learns_a_question_that_needs_the_image_and_the_words():
    # colour questions about single-object scenes: chance is 1/4, the words alone cannot answer
    scenes = [random_scene(s, max_objects=1, digit_share=0.0) for s in range(400)]
    pairs = V.make_questions(scenes, {q: [V.TEMPLATES[q]] for q in V.QTYPES}, seed=0,
                             qtypes=("colour", "exists"))
    x = render_array(scenes)[[i for i, _ in pairs]]
    qs, ans = [qa.question for _, qa in pairs], [qa.answer for _, qa in pairs]
    model, vocab, losses = V.train_vqa(x[:300], qs[:300], ans[:300], seed=0, epochs=12, width=8)
    assert losses[-1] < losses[0]
    acc = V.accuracy(V.predict(model, vocab, x[300:], qs[300:]), ans[300:])
    assert acc.mean() > 0.6, acc.mean()


def test_bad_training_input_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        V.train_vqa(np.zeros((2, 3, 32, 32), np.float32), ["a"], ["yes"], seed=0)
    with pytest.raises(ValueError, match="outside ANSWERS"):
        V.train_vqa(np.zeros((1, 3, 32, 32), np.float32), ["a"], ["maybe"], seed=0)
    with pytest.raises(ValueError):
        V.accuracy(["yes"], [])


def test_to_template_accepts_spelling_variants_and_allowed_stem_words():
    assert V.to_template("What digit is in the bottom-left corner?", {"position": "bottom left"},
                         allowed=["which", "digit"]) == ("What digit is in the {position} corner?", None)
    assert V.to_template("What digit is in the bottom-left corner?", {"position": "bottom left"}) == (
        None, "extra attribute")
    assert V.to_template("What colour is that blue circle?", {"shape": "circle"},
                         allowed=["what", "colour"]) == (None, "extra attribute")  # gives the answer away
    assert V.to_template("How many digits are in the number?", {"shapes": "digits"}) == (None, "extra attribute")
    assert V.to_template("Which digit is top left, not bottom left?", {"position": "top left"}) == (
        None, "extra attribute")


def test_reword_keeps_everything_but_the_wording():
    pairs = V.make_questions([random_scene(s) for s in range(30)], {q: [V.TEMPLATES[q]] for q in V.QTYPES}, seed=0)
    new = V.reword(pairs, V.HELD_OUT_WORDINGS, seed=1)
    assert [(i, qa.qtype, qa.slots, qa.answer) for i, qa in pairs] == [(i, qa.qtype, qa.slots, qa.answer)
                                                                       for i, qa in new]
    assert all(qa.wording in V.HELD_OUT_WORDINGS[qa.qtype] and qa.question == V.fill(qa.wording, qa.slots)
               for _, qa in new)
    with pytest.raises(ValueError, match="no wordings"):
        V.reword(pairs, {"count": ["How many {shapes}?"]}, seed=0)


def test_to_template_rejects_numbers_and_questions_moved_out_of_the_picture():
    circle = {"shape": "circle"}
    assert V.to_template("What is the color of the circle 4?", circle) == (None, "extra attribute")
    assert V.to_template("What colour is the circle with two corners?", circle) == (None, "extra attribute")
    assert V.to_template("How many circles are there in the world?", {"shapes": "circles"}) == (None, "other setting")
    assert V.to_template("Is there a red circle on the wall?", {"colour": "red", "shape": "circle"}) == (
        None, "other setting")
    assert V.to_template("Which digit is in the top left of the tower?", {"position": "top left"},
                         allowed=["which", "digit"]) == (None, "other setting")
    # the picture, a part of it or a slot may follow "in the" / "of the"
    assert V.to_template("What is the colour of the circle in the picture?", circle) == (
        "What is the colour of the {shape} in the picture?", None)
    assert V.to_template("Is there a red circle in this image?", {"colour": "red", "shape": "circle"}) == (
        "Is there a {colour} {shape} in this image?", None)
    # "number" asks for the same thing as "digit" where the original said "digit", and nowhere else
    assert V.to_template("What number is in the top-left corner?", {"position": "top left"},
                         allowed=["which", "digit"]) == ("What number is in the {position} corner?", None)
    assert V.to_template("What number is the circle?", circle, allowed=["what", "colour"]) == (None, "extra attribute")
