"""Digits rendered from fonts as 8x8 images in the format of scikit-learn's handwritten digits, plain or
domain-randomised: a small simulator for a sim-to-real experiment.

scikit-learn's ``load_digits`` (the UCI "optdigits" set) was made from 32x32 black-and-white bitmaps of
handwritten digits, each cut into 4x4 blocks whose "on" pixels were counted, giving 8x8 images with
values 0-16. :func:`render_digit` draws a digit from a TrueType font onto a 32x32 bitmap the same way
(the glyph scaled to fill the box, centred) and :func:`to_8x8` does the block count, so the rendered and
the real digits share one format. :class:`Randomisation` is **domain randomisation** (Tobin et al., 2017,
https://arxiv.org/abs/1703.06907): instead of making the simulator realistic, vary what it does not
control (rotation, slant, scale, aspect, stroke width, blur, pixel noise) so widely that the real data
looks like one more variation.

>>> fonts = bundled_fonts()                              # matplotlib's DejaVu, STIX and Computer Modern faces
>>> X, y, font_ids = render_set(100, fonts=fonts, seed=0)                        # plain: 1,000 images, 64 features
>>> X, y, font_ids = render_set(100, fonts=fonts, randomise=Randomisation(), seed=0)   # randomised

Written by hand on Pillow and SciPy: no library renders fonts into the optdigits format, and the
point of the chapter is to see each randomisation knob.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["Randomisation", "bundled_fonts", "font_name", "render_digit", "to_8x8", "render_set", "real_digits"]

GRID = 32  # the bitmap side, as in optdigits
_CANVAS = 160  # glyphs are drawn large, then transformed and shrunk
_FONT_SIZE = 110

#: matplotlib's bundled faces used by default (all ship with matplotlib, so every install has them)
BUNDLED = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
           "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
           "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
           "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
           "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")


@dataclass(frozen=True)
class Randomisation:
    """Ranges the randomised renderer draws from, uniformly, per image (zero or equal ends switch one off).

    Attributes:
        rotation: degrees, drawn from ``[-rotation, rotation]``.
        shear: horizontal slant (x += shear * y), from ``[-shear, shear]``.
        scale: the glyph's size relative to filling the 32x32 box.
        aspect: width multiplier (below 1 narrower, above 1 wider).
        stroke: extra stroke width in pixels of the 32x32 bitmap (negative thins the glyph).
        shift: pixels the glyph moves off centre, each axis, from ``[-shift, shift]``.
        blur: Gaussian blur sigma in pixels of the 32x32 bitmap, before it is thresholded.
        threshold: grey level (0-1) above which a pixel is "on".
        noise: probability that a pixel of the bitmap flips.
        elastic: strength of an elastic distortion in pixels of the 32x32 bitmap (a smooth random
            displacement field, as Simard et al., 2003, used to imitate handwriting), from ``[0, elastic]``;
            off by default: it made no clear difference on the real digits and is the slowest step.
        elastic_sigma: smoothness of that field, in bitmap pixels.
    """

    rotation: float = 15.0
    shear: float = 0.35
    scale: tuple[float, float] = (0.7, 1.0)
    aspect: tuple[float, float] = (0.6, 1.3)
    stroke: tuple[float, float] = (-0.8, 2.0)
    shift: float = 2.0
    blur: tuple[float, float] = (0.0, 1.2)
    threshold: tuple[float, float] = (0.35, 0.65)
    noise: float = 0.02
    elastic: float = 0.0
    elastic_sigma: float = 3.0

    def __post_init__(self) -> None:
        for name in ("scale", "aspect", "blur", "threshold", "stroke"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: the low end {lo} is above the high end {hi}")
        if self.scale[0] <= 0 or self.aspect[0] <= 0:
            raise ValueError("scale and aspect must be positive")
        if self.blur[0] < 0 or not 0 < self.threshold[0] <= self.threshold[1] < 1:
            raise ValueError("blur must be >= 0 and the threshold inside (0, 1)")
        if not 0 <= self.noise < 0.5 or self.rotation < 0 or self.shear < 0 or self.shift < 0:
            raise ValueError("noise must be in [0, 0.5); rotation, shear and shift >= 0")
        if self.elastic < 0 or self.elastic_sigma <= 0:
            raise ValueError("elastic must be >= 0 and elastic_sigma > 0")

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One set of rendering parameters for :func:`render_digit`."""
        u = rng.uniform
        return {"rotation": u(-self.rotation, self.rotation), "shear": u(-self.shear, self.shear),
                "scale": u(*self.scale), "aspect": u(*self.aspect), "stroke": u(*self.stroke),
                "dx": u(-self.shift, self.shift), "dy": u(-self.shift, self.shift), "blur": u(*self.blur),
                "threshold": u(*self.threshold), "noise": self.noise, "elastic": u(0, self.elastic),
                "elastic_sigma": self.elastic_sigma}

    def to_dict(self) -> dict:
        return asdict(self)


PLAIN = {"rotation": 0.0, "shear": 0.0, "scale": 1.0, "aspect": 1.0, "stroke": 0.0, "dx": 0.0, "dy": 0.0,
         "blur": 0.0, "threshold": 0.5, "noise": 0.0, "elastic": 0.0, "elastic_sigma": 3.0}


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def bundled_fonts(names: Sequence[str] = BUNDLED) -> list[Path]:
    """Paths of the named font files in matplotlib's font folder; raises ``FileNotFoundError`` if one is missing."""
    folder = _font_dir()
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"fonts missing from {folder}: {missing}")
    return paths


def font_name(path: str | Path) -> str:
    """The family and style a font file declares (``"DejaVu Sans Bold"``)."""
    f = _font(str(path))
    family, style = f.getname()
    return family if style in ("Book", "Regular", "Roman", "Medium") else f"{family} {style}"


@lru_cache(maxsize=64)
def _font(path: str):
    from PIL import ImageFont

    return ImageFont.truetype(path, _FONT_SIZE)


@lru_cache(maxsize=1024)
def _glyph(path: str, digit: int, stroke_px: int) -> np.ndarray:
    """The digit drawn large (grey 0-1), cropped to its ink; ``stroke_px`` widens (or, negative, thins) it."""
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(img).text((_CANVAS // 2, _CANVAS // 2), str(digit), fill=255, font=_font(path), anchor="mm",
                             stroke_width=max(stroke_px, 0), stroke_fill=255)
    if stroke_px < 0:
        img = img.filter(ImageFilter.MinFilter(2 * (-stroke_px) + 1))
    a = np.asarray(img, dtype=np.float32) / 255.0
    rows, cols = np.flatnonzero(a.max(1) > 0.5), np.flatnonzero(a.max(0) > 0.5)
    if rows.size == 0:
        raise ValueError(f"font {Path(path).name} drew nothing for {digit}")
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def render_digit(digit: int, font: str | Path, params: dict[str, float] | None = None,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """A 32x32 bitmap (0/1 ``uint8``) of ``digit`` in ``font``; ``params`` from :meth:`Randomisation.draw`
    (default: plain, the glyph filling the box's height, centred, as optdigits normalised its scans).

    ``rng`` draws the pixel noise and the elastic field (needed only when those are on).
    """
    from scipy import ndimage

    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0-9, got {digit}")
    p = {**PLAIN, **(params or {})}
    unknown = set(p) - set(PLAIN)
    if unknown:
        raise ValueError(f"unknown rendering parameters: {sorted(unknown)}")
    px = _FONT_SIZE / GRID  # large-canvas pixels per bitmap pixel (about the glyph height ratio)
    glyph = _glyph(str(font), int(digit), int(round(p["stroke"] * px * 0.5)))
    # affine map on the glyph: aspect, shear, rotation (about its centre), then fit into the box
    h, w = glyph.shape
    th = np.deg2rad(p["rotation"])
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    m = rot @ np.array([[1.0, p["shear"]], [0.0, 1.0]]) @ np.diag([p["aspect"], 1.0])  # acts on (x, y)
    corners = np.array([[x, y] for x in (-w / 2, w / 2) for y in (-h / 2, h / 2)]) @ m.T
    span_x, span_y = np.ptp(corners[:, 0]), np.ptp(corners[:, 1])
    fit = p["scale"] * GRID / max(span_y, span_x * 1.0)  # the larger side fills the box (times scale)
    full = fit * m  # glyph (x, y) about its centre -> bitmap (x, y) about the bitmap centre
    inv = np.linalg.inv(full)
    # ndimage.affine_transform maps output (row, col) to input (row, col): swap x/y into row/col order
    inv_rc = inv[::-1, ::-1]
    out_centre = np.array([GRID / 2 - 0.5 + p["dy"], GRID / 2 - 0.5 + p["dx"]])
    in_centre = np.array([(h - 1) / 2, (w - 1) / 2])
    # supersample: render at 4x then average down, for smooth edges before thresholding
    ss = 4
    inv_ss = inv_rc / ss
    offset = in_centre - inv_ss @ (out_centre * ss + (ss - 1) / 2)
    big = ndimage.affine_transform(glyph, inv_ss, offset=offset, output_shape=(GRID * ss, GRID * ss), order=1,
                                   mode="constant", cval=0.0)
    if p["elastic"] > 0:
        if rng is None:
            raise ValueError("an elastic distortion needs an rng")
        n = GRID * ss
        # the field is smoothed at bitmap resolution and then enlarged to the supersampled grid (cheap)
        field = [ndimage.gaussian_filter(rng.uniform(-1, 1, (GRID, GRID)), p["elastic_sigma"]) for _ in range(2)]
        field = [ndimage.zoom(f / (np.abs(f).max() + 1e-12) * p["elastic"] * ss, ss, order=1) for f in field]
        rr, cc = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        big = ndimage.map_coordinates(big, [rr + field[0], cc + field[1]], order=1, mode="constant", cval=0.0)
    grey = big.reshape(GRID, ss, GRID, ss).mean(axis=(1, 3))
    if p["blur"] > 0:
        grey = ndimage.gaussian_filter(grey, p["blur"])
        peak = grey.max()
        grey = grey / peak if peak > 0 else grey
    bitmap = (grey > p["threshold"]).astype(np.uint8)
    if p["noise"] > 0:
        if rng is None:
            raise ValueError("pixel noise needs an rng")
        bitmap ^= (rng.random(bitmap.shape) < p["noise"]).astype(np.uint8)
    return bitmap


def to_8x8(bitmap: np.ndarray) -> np.ndarray:
    """Count the "on" pixels in each 4x4 block of a 32x32 bitmap: an 8x8 image with values 0-16, as in optdigits."""
    b = np.asarray(bitmap)
    if b.shape != (GRID, GRID):
        raise ValueError(f"expected a {GRID}x{GRID} bitmap, got shape {b.shape}")
    if not np.isin(b, (0, 1)).all():
        raise ValueError("the bitmap must hold only 0 and 1")
    return b.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.float64)


def render_set(n_per_class: int, *, fonts: Sequence[str | Path] | None = None,
               randomise: Randomisation | None = None, seed: int = 0,
               digits: Sequence[int] = tuple(range(10))) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_per_class`` rendered images of each digit: features ``(n, 64)`` (values 0-16, like
    ``load_digits().data``), labels and the index of the font each came from (fonts are cycled so each
    is used equally). Plain when ``randomise`` is ``None`` (then images repeat once every font is used).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    fonts = [str(f) for f in (fonts if fonts is not None else bundled_fonts())]
    if not fonts:
        raise ValueError("no fonts given")
    rng = np.random.default_rng(seed)
    X, y, fid = [], [], []
    for d in digits:
        start = int(rng.integers(len(fonts)))
        for i in range(n_per_class):
            k = (start + i) % len(fonts)
            params = randomise.draw(rng) if randomise is not None else None
            X.append(to_8x8(render_digit(d, fonts[k], params, rng)).ravel())
            y.append(int(d))
            fid.append(k)
    return np.asarray(X), np.asarray(y), np.asarray(fid)


def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real handwritten digits: features ``(n, 64)`` with values 0-16, and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(int)
