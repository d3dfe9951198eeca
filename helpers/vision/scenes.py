"""Pictures rendered by code, with the metadata that makes every answer known by construction.

A :class:`Scene` is a 2x2 grid; each cell is empty or holds one object: a circle, a square or a
triangle, or a handwritten digit from scikit-learn's bundled ``load_digits`` (8x8 scans of 0-9),
each in one of four colours, with a little random size and offset. :func:`random_scene` draws a
scene from a seed, :func:`render` draws it with Pillow (4x supersampled, then shrunk, so edges are
smooth) and :func:`describe` writes what a text-only model is given instead of the picture: the
objects, their cells and their pixel boxes, as LLaVA gave GPT-4 captions and boxes (Liu et al., 2023).

Written by hand because the point is the metadata: no library renders a scene and returns the
ground truth of every question about it. The digits are real scans, so one question type needs
the model to read handwriting rather than a clean glyph.

>>> scene = random_scene(seed=3)
>>> image = render(scene)            # a PIL RGB image, IMAGE_SIZE x IMAGE_SIZE
>>> print(describe(scene))
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["SHAPES", "KINDS", "COLOURS", "POSITIONS", "IMAGE_SIZE", "SceneObject", "Scene", "random_scene",
           "render", "render_array", "describe", "digit_glyphs"]

SHAPES = ("circle", "square", "triangle")
KINDS = SHAPES + ("digit",)
#: colour name -> RGB
COLOURS: dict[str, tuple[int, int, int]] = {"red": (225, 45, 45), "green": (40, 185, 70), "blue": (60, 100, 240),
                                             "yellow": (235, 215, 40)}
#: the 2x2 grid's cells, in reading order: (row, column)
POSITIONS: dict[str, tuple[int, int]] = {"top left": (0, 0), "top right": (0, 1), "bottom left": (1, 0),
                                         "bottom right": (1, 1)}
IMAGE_SIZE = 32  # pixels per side of a rendered picture
_SUPER = 4  # supersampling factor for smooth edges
_BACKGROUND = (18, 18, 24)


@dataclass
class SceneObject:
    """One object: its kind (a shape or ``"digit"``), colour, cell, box and, for digits, value and glyph."""

    kind: str
    colour: str
    position: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the IMAGE_SIZE picture (x1, y1 exclusive)
    digit: int | None = None
    glyph: int | None = None  # index into sklearn's load_digits images

    @property
    def name(self) -> str:
        """``"red circle"`` or ``"blue digit 7"``."""
        return f"{self.colour} {self.kind}" + (f" {self.digit}" if self.kind == "digit" else "")


@dataclass
class Scene:
    """A picture's ground truth: its objects (at most one per cell) and the seed that drew it."""

    objects: list[SceneObject] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        for o in self.objects:
            if o.kind not in KINDS:
                raise ValueError(f"unknown kind {o.kind!r}; expected one of {KINDS}")
            if o.colour not in COLOURS:
                raise ValueError(f"unknown colour {o.colour!r}; expected one of {tuple(COLOURS)}")
            if o.position not in POSITIONS:
                raise ValueError(f"unknown position {o.position!r}; expected one of {tuple(POSITIONS)}")
            if (o.kind == "digit") != (o.digit is not None):
                raise ValueError(f"{o.kind} object with digit={o.digit!r}: only digits carry a value")
            if o.digit is not None and not 0 <= o.digit <= 9:
                raise ValueError(f"digit must be 0-9, got {o.digit}")
        cells = [o.position for o in self.objects]
        if len(set(cells)) != len(cells):
            raise ValueError(f"two objects in one cell: {cells}")

    def at(self, position: str) -> SceneObject | None:
        """The object in a cell, or ``None`` when the cell is empty."""
        return next((o for o in self.objects if o.position == position), None)

    def matching(self, kind: str | None = None, colour: str | None = None) -> list[SceneObject]:
        """Objects of that kind and/or colour (``None`` matches any)."""
        return [o for o in self.objects if (kind is None or o.kind == kind) and (colour is None or o.colour == colour)]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for a dataset column."""
        return {"seed": self.seed, "objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Scene":
        return cls([SceneObject(**{**o, "box": tuple(o["box"])}) for o in d["objects"]], d.get("seed"))


@lru_cache(maxsize=1)
def digit_glyphs() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: images (n, 8, 8) scaled to 0-1, and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(int)


def random_scene(seed: int, *, min_objects: int = 1, max_objects: int = 4, digit_share: float = 0.3,
                 glyph_pool: np.ndarray | None = None) -> Scene:
    """A scene drawn from ``seed``: ``min_objects`` to ``max_objects`` objects in distinct cells.

    Each object is a digit with probability ``digit_share`` (its glyph drawn from ``glyph_pool``,
    indices into :func:`digit_glyphs`, e.g. to keep test glyphs apart from training glyphs),
    otherwise one of :data:`SHAPES`; colour uniform. Same seed, same scene.
    """
    if not 1 <= min_objects <= max_objects <= len(POSITIONS):
        raise ValueError(f"need 1 <= min_objects <= max_objects <= {len(POSITIONS)}, got {min_objects}, {max_objects}")
    if not 0 <= digit_share <= 1:
        raise ValueError(f"digit_share must be in [0, 1], got {digit_share}")
    rng = np.random.default_rng(seed)
    _, labels = digit_glyphs()
    pool = np.arange(len(labels)) if glyph_pool is None else np.asarray(glyph_pool, dtype=int)
    if digit_share > 0 and pool.size == 0:
        raise ValueError("glyph_pool is empty but digit_share > 0")
    n = int(rng.integers(min_objects, max_objects + 1))
    cells = rng.choice(len(POSITIONS), size=n, replace=False)
    half = IMAGE_SIZE // 2
    objects = []
    for c in sorted(cells):
        pos = list(POSITIONS)[c]
        r, col = POSITIONS[pos]
        size = int(rng.integers(10, 14))
        x0 = col * half + int(rng.integers(1, half - size)) if half - size > 1 else col * half
        y0 = r * half + int(rng.integers(1, half - size)) if half - size > 1 else r * half
        colour = str(rng.choice(list(COLOURS)))
        if rng.random() < digit_share:
            g = int(rng.choice(pool))
            objects.append(SceneObject("digit", colour, pos, (x0, y0, x0 + size, y0 + size), int(labels[g]), g))
        else:
            objects.append(SceneObject(str(rng.choice(SHAPES)), colour, pos, (x0, y0, x0 + size, y0 + size)))
    return Scene(objects, seed)


def render(scene: Scene, *, size: int = IMAGE_SIZE):
    """The scene as a PIL RGB image of ``size`` x ``size`` pixels (boxes scale with ``size``)."""
    from PIL import Image, ImageDraw

    k = _SUPER * size / IMAGE_SIZE
    big = Image.new("RGB", (_SUPER * size,) * 2, _BACKGROUND)
    draw = ImageDraw.Draw(big)
    images, _ = digit_glyphs()
    for o in scene.objects:
        x0, y0, x1, y1 = (int(round(v * k)) for v in o.box)
        rgb = COLOURS[o.colour]
        if o.kind == "circle":
            draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=rgb)
        elif o.kind == "square":
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=rgb)
        elif o.kind == "triangle":
            draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=rgb)
        else:
            glyph = Image.fromarray((images[o.glyph] * 255).astype(np.uint8)).resize((x1 - x0, y1 - y0),
                                                                                     Image.BILINEAR)
            big.paste(Image.new("RGB", glyph.size, rgb), (x0, y0), glyph)
    return big.resize((size, size), Image.LANCZOS)


def render_array(scenes: list[Scene]) -> np.ndarray:
    """Many scenes as one float32 array (n, 3, IMAGE_SIZE, IMAGE_SIZE) in 0-1, ready for a CNN."""
    out = np.zeros((len(scenes), 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for i, s in enumerate(scenes):
        out[i] = np.asarray(render(s), np.float32).transpose(2, 0, 1) / 255.0
    return out


def describe(scene: Scene, *, boxes: bool = True) -> str:
    """What a text-only model is told about the picture: every cell, in reading order, and the boxes.

    ``boxes=True`` adds each object's pixel box, the way LLaVA gave GPT-4 bounding boxes.
    """
    lines = [f"A {IMAGE_SIZE}x{IMAGE_SIZE} picture divided into four cells (2 by 2)."]
    for pos in POSITIONS:
        o = scene.at(pos)
        if o is None:
            lines.append(f"- {pos}: empty")
        else:
            what = f"a {o.colour} handwritten digit {o.digit}" if o.kind == "digit" else f"a {o.colour} {o.kind}"
            lines.append(f"- {pos}: {what}" + (f", box {list(o.box)}" if boxes else ""))
    return "\n".join(lines)
