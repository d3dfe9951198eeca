"""helpers.vision.fontdigits: digits rendered from fonts in the optdigits 8x8 format."""
import numpy as np
import pytest

from helpers.vision import fontdigits as F


@pytest.fixture(scope="module")
def fonts():
    return F.bundled_fonts()[:4]


def test_bundled_fonts_exist_and_have_names(fonts):
    assert all(p.exists() for p in F.bundled_fonts())
    assert F.font_name(fonts[0]) == "DejaVu Sans"
    assert F.font_name(fonts[1]).endswith("Bold")
    with pytest.raises(FileNotFoundError, match="missing"):
        F.bundled_fonts(["NoSuchFont.ttf"])


def test_plain_render_fills_the_box_and_is_deterministic(fonts):
    b = F.render_digit(1, fonts[0])
    assert b.shape == (32, 32) and b.dtype == np.uint8 and set(np.unique(b)) <= {0, 1}
    rows = np.flatnonzero(b.any(1))
    assert rows[0] <= 1 and rows[-1] >= 30  # the glyph's height fills the bitmap, as optdigits normalised
    assert np.array_equal(b, F.render_digit(1, fonts[0]))
    assert not np.array_equal(F.render_digit(1, fonts[0]), F.render_digit(7, fonts[0]))


def test_to_8x8_counts_on_pixels_per_4x4_block():
    b = np.zeros((32, 32), np.uint8)
    b[:4, :4] = 1
    b[4:6, 28:32] = 1
    img = F.to_8x8(b)
    assert img.shape == (8, 8) and img[0, 0] == 16 and img[1, 7] == 8 and img.sum() == 24
    with pytest.raises(ValueError, match="32x32"):
        F.to_8x8(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        F.to_8x8(np.full((32, 32), 2))


def test_each_knob_changes_the_image(fonts):
    plain = F.render_digit(4, fonts[0])
    rng = np.random.default_rng(0)
    for knob, value in [("rotation", 20.0), ("shear", 0.4), ("scale", 0.6), ("aspect", 0.6), ("stroke", 2.0),
                        ("dx", 3.0), ("blur", 1.5), ("noise", 0.05), ("elastic", 3.0)]:
        assert not np.array_equal(F.render_digit(4, fonts[0], {knob: value}, rng), plain), knob
    thick = F.render_digit(4, fonts[0], {"stroke": 2.0}).sum()
    thin = F.render_digit(4, fonts[0], {"stroke": -0.8}).sum()
    assert thin < plain.sum() < thick
    small = F.render_digit(4, fonts[0], {"scale": 0.5})
    assert small.sum() < plain.sum() / 2
    shifted = F.render_digit(4, fonts[0], {"dx": 3.0, "scale": 0.8})
    assert np.flatnonzero(shifted.any(0)).mean() > np.flatnonzero(F.render_digit(4, fonts[0], {"scale": 0.8}).any(0)).mean()


def test_render_set_shapes_labels_fonts_and_seeds(fonts):
    X, y, fid = F.render_set(6, fonts=fonts, seed=0)
    assert X.shape == (60, 64) and X.min() >= 0 and X.max() <= 16
    assert np.array_equal(np.bincount(y), np.full(10, 6))
    assert set(fid) == set(range(4))
    R = F.Randomisation()
    Xa, _, _ = F.render_set(6, fonts=fonts, randomise=R, seed=1)
    Xb, _, _ = F.render_set(6, fonts=fonts, randomise=R, seed=1)
    Xc, _, _ = F.render_set(6, fonts=fonts, randomise=R, seed=2)
    assert np.array_equal(Xa, Xb) and not np.array_equal(Xa, Xc)
    # plain images repeat once every font is used; randomised ones do not
    assert len({r.tobytes() for r in X[y == 3]}) <= len(fonts)
    assert len({r.tobytes() for r in Xa}) > 50


def test_real_digits_share_the_format():
    X, y = F.real_digits()
    assert X.shape == (1797, 64) and X.max() == 16 and set(y) == set(range(10))


def test_rendered_digits_can_be_read_by_a_classifier_trained_on_other_fonts():
    from sklearn.svm import SVC

    all_fonts = F.bundled_fonts()
    Xtr, ytr, _ = F.render_set(len(all_fonts) - 5, fonts=all_fonts[5:], randomise=F.Randomisation(), seed=0)
    Xte, yte, _ = F.render_set(5, fonts=all_fonts[:5], seed=0)
    acc = (SVC().fit(Xtr / 16, ytr).predict(Xte / 16) == yte).mean()
    assert acc > 0.6  # chance is 0.1: the renders carry the digit's identity across fonts


@pytest.mark.parametrize("kwargs, message", [
    ({"scale": (1.0, 0.5)}, "low end"), ({"aspect": (0.0, 1.0)}, "positive"), ({"noise": 0.6}, "noise"),
    ({"threshold": (0.0, 0.5)}, "threshold"), ({"elastic_sigma": 0.0}, "elastic"),
])
def test_bad_randomisation_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.Randomisation(**kwargs)


def test_bad_render_input_is_refused(fonts):
    with pytest.raises(ValueError, match="0-9"):
        F.render_digit(12, fonts[0])
    with pytest.raises(ValueError, match="unknown"):
        F.render_digit(1, fonts[0], {"spin": 3})
    with pytest.raises(ValueError, match="rng"):
        F.render_digit(1, fonts[0], {"noise": 0.1})
    with pytest.raises(ValueError, match="at least 1"):
        F.render_set(0, fonts=fonts)
