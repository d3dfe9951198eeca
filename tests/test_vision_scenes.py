"""helpers.vision.scenes: scenes drawn from seeds, rendered pixels that match the metadata, descriptions."""
import numpy as np
import pytest

from helpers.vision.scenes import (COLOURS, IMAGE_SIZE, POSITIONS, Scene, SceneObject, describe, digit_glyphs,
                                   random_scene, render, render_array)


def test_same_seed_same_scene_and_cells_are_distinct():
    a, b = random_scene(7), random_scene(7)
    assert a.to_dict() == b.to_dict()
    assert any(random_scene(s).to_dict() != a.to_dict() for s in range(8, 12))
    for s in range(50):
        sc = random_scene(s, min_objects=2, max_objects=4)
        assert 2 <= len(sc.objects) <= 4
        assert len({o.position for o in sc.objects}) == len(sc.objects)


def test_objects_stay_inside_their_cell():
    half = IMAGE_SIZE // 2
    for s in range(100):
        for o in random_scene(s).objects:
            r, c = POSITIONS[o.position]
            x0, y0, x1, y1 = o.box
            assert c * half <= x0 < x1 <= (c + 1) * half and r * half <= y0 < y1 <= (r + 1) * half, (o, s)


def test_rendered_colour_sits_in_the_box_and_nowhere_else():
    scene = Scene([SceneObject("square", "red", "top left", (2, 2, 14, 14)),
                   SceneObject("circle", "blue", "bottom right", (18, 18, 30, 30))])
    img = np.asarray(render(scene)).astype(int)
    assert img.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert np.abs(img[8, 8] - COLOURS["red"]).max() < 10
    assert np.abs(img[24, 24] - COLOURS["blue"]).max() < 10
    assert img[8, 24].max() < 40 and img[24, 8].max() < 40  # empty cells stay background
    arr = render_array([scene])
    assert arr.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and arr.dtype == np.float32 and 0 <= arr.min() <= arr.max() <= 1


def test_digits_come_from_the_given_glyph_pool_with_their_labels():
    _, labels = digit_glyphs()
    pool = np.flatnonzero(labels == 3)[:5]
    digits = [o for s in range(40) for o in random_scene(s, digit_share=1.0, glyph_pool=pool).objects]
    assert digits and all(o.kind == "digit" and o.digit == 3 and o.glyph in pool for o in digits)
    assert all(o.kind != "digit" for s in range(40) for o in random_scene(s, digit_share=0.0).objects)


def test_describe_names_every_cell_and_object():
    scene = Scene([SceneObject("digit", "green", "bottom left", (1, 17, 13, 29), digit=7, glyph=0)])
    text = describe(scene)
    assert "bottom left: a green handwritten digit 7, box [1, 17, 13, 29]" in text
    assert text.count("empty") == 3
    assert "box" not in describe(scene, boxes=False)


def test_round_trip_through_plain_data():
    scene = random_scene(3)
    assert Scene.from_dict(scene.to_dict()).to_dict() == scene.to_dict()


@pytest.mark.parametrize("bad", [
    dict(kind="hexagon", colour="red", position="top left", box=(0, 0, 5, 5)),
    dict(kind="circle", colour="purple", position="top left", box=(0, 0, 5, 5)),
    dict(kind="circle", colour="red", position="middle", box=(0, 0, 5, 5)),
    dict(kind="circle", colour="red", position="top left", box=(0, 0, 5, 5), digit=3),
    dict(kind="digit", colour="red", position="top left", box=(0, 0, 5, 5)),
])
def test_bad_objects_are_refused(bad):
    with pytest.raises(ValueError):
        Scene([SceneObject(**bad)])


def test_two_objects_in_one_cell_and_bad_counts_are_refused():
    o = SceneObject("circle", "red", "top left", (0, 0, 5, 5))
    with pytest.raises(ValueError, match="one cell"):
        Scene([o, SceneObject("square", "blue", "top left", (6, 6, 9, 9))])
    with pytest.raises(ValueError):
        random_scene(0, min_objects=0)
    with pytest.raises(ValueError):
        random_scene(0, digit_share=1.0, glyph_pool=[])
