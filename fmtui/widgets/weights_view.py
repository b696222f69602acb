"""The weights view: what a softmax regression or an MLP learned, drawn as images (the Errors pane's `w`).

Softmax regression: each class's 784 weights as a 28x28 picture, a template of the class (red where a
bright pixel raises the class's score, blue where it lowers it). MLP: for one class (c / C to change it),
the first-layer units with the largest weight into it, each drawn as its own 28x28 input weights.
Colour at 256 colours and more (a blue-white-red diverging palette); under NO_COLOR and with at most 16
colours, signed shade characters (widgets/image.py's rule).
"""

from __future__ import annotations

import math

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.binding import Binding
from textual.widget import Widget

from fmtui.weights import LearnedWeights, diverging_scale
from fmtui.widgets.image import ASCII, _color_line, image_mode, short_names

NEGATIVE, ZERO, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
"""The diverging palette's ends and middle (ColorBrewer's RdBu): blue below zero, white at zero, red above."""
SHADES = {-3: "=", -2: "-", -1: ".", 0: " ", 1: ":", 2: "+", 3: "#"}
"""Signed shades where colour is off or scarce: . - = for ever more negative weights, : + # for positive."""
SHADE_STEPS = (0.25, 0.5, 0.75)
"""|weight| / scale from which a shade is 1, 2, 3 marks strong: below a quarter of the scale, a blank (a fresh
model's random weights are about a sixth of a trained one's: without a dead zone they drown the template)."""
UNITS = 10
"""An MLP's units shown for the chosen class."""
MIN_SIZE, MAX_SIZE = 7, 56
"""Pixels (columns) of one drawn image: a quarter of 28x28 at least, twice it at most."""


def resample(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W) image as (size, size) by area averaging (any size: 28 -> 14, 21, 28, 42 ...)."""

    def weights(n_in: int) -> np.ndarray:
        edges = np.linspace(0, n_in, size + 1)
        m = np.zeros((size, n_in))
        for i in range(size):
            for j in range(int(edges[i]), min(math.ceil(edges[i + 1]), n_in)):
                m[i, j] = min(edges[i + 1], j + 1) - max(edges[i], j)
        return m / m.sum(1, keepdims=True)

    return weights(image.shape[0]) @ image @ weights(image.shape[1]).T


def diverging_rgb(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> (..., 3) uint8: white at 0, blue towards -1, red towards +1."""
    v = np.clip(np.nan_to_num(values), -1.0, 1.0)[..., None]
    zero, neg, pos = np.array(ZERO, float), np.array(NEGATIVE, float), np.array(POSITIVE, float)
    rgb = np.where(v < 0, zero + (neg - zero) * -v, zero + (pos - zero) * v)
    return np.rint(rgb).astype(np.uint8)


def _shade_line(top: np.ndarray, bottom: np.ndarray | None) -> Text:
    """One row of signed shade characters from two pixel rows of values in [-1, 1]."""
    v = top if bottom is None else (top + bottom) / 2
    v = np.nan_to_num(v)
    levels = np.sign(v).astype(int) * np.searchsorted(SHADE_STEPS, np.abs(v), side="right")
    return Text("".join(SHADES[int(level)] for level in levels), no_wrap=True, overflow="crop")


def weight_lines(image: np.ndarray, scale: float, size: int, mode: str) -> list[Text]:
    """An (H, W) weight image as text rows, size pixels wide: two pixel rows per text row."""
    values = resample(np.nan_to_num(image.astype(np.float64)), size) / scale
    if mode == ASCII:
        return [_shade_line(values[y], values[y + 1] if y + 1 < size else None) for y in range(0, size, 2)]
    px = diverging_rgb(values)
    return [_color_line(px[y], px[y + 1] if y + 1 < size else None) for y in range(0, size, 2)]


def grid_layout(n: int, width: int, height: int) -> tuple[int, int]:
    """(images per row, image size in pixels) that draws n square images with a label row each as large as
    fits in width x height cells (one blank column between images); MIN_SIZE when nothing larger fits."""
    per_row, size = n, MIN_SIZE - 1
    for cols in range(1, n + 1):
        fits = min(MAX_SIZE, width // cols - 1, 2 * (height // math.ceil(n / cols) - 1))
        if fits >= size:  # ties go to more images per row: the same size in fewer rows
            per_row, size = cols, fits
    if size < MIN_SIZE:
        return max(1, min(n, width // (MIN_SIZE + 1))), MIN_SIZE
    return per_row, size


class WeightsView(Widget, can_focus=True):
    """Draws a LearnedWeights as a grid of images, as large as the widget allows; c / C choose an MLP's class."""

    DEFAULT_CSS = """
    WeightsView { height: 1fr; padding: 0 1; }
    """

    BINDINGS = [
        Binding("c", "cycle_class(1)", "class"),
        Binding("C", "cycle_class(-1)", "previous class", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.weights: LearnedWeights | None = None
        self.class_names: list[str] = []
        self.note = "train a softmax regression or an MLP (or open a run in the Runs pane) to see what it learned"
        """What is shown instead of images (none yet, or why there are none)."""
        self.chosen = 0
        """The class whose units an MLP shows."""

    def show(self, weights: LearnedWeights | None, note: str = "") -> None:
        """Draw these weights (None: show the note instead)."""
        picked_class = self.picks_class
        self.weights = weights
        if note or weights is None:
            self.note = note
        if weights is not None:
            self.chosen = min(self.chosen, weights.classes - 1)
        self.refresh()
        if self.picks_class != picked_class:  # only then can c appear or go: a refresh rebuilds the footer's keys
            self.refresh_bindings()

    @property
    def picks_class(self) -> bool:
        """c / C choose a class: an MLP's weights are shown."""
        return self.weights is not None and not self.weights.per_class

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_class":
            return self.picks_class
        return True

    def action_cycle_class(self, step: int) -> None:
        if self.weights is not None:
            self.chosen = (self.chosen + step) % self.weights.classes
            self.refresh()

    def class_name(self, k: int) -> str:
        return self.class_names[k] if k < len(self.class_names) else str(k)

    def render(self) -> RenderResult:
        if self.weights is None:
            return Text(self.note, style="dim")
        w, mode = self.weights, image_mode(self.app)
        if w.per_class:
            units = list(range(w.classes))
            names = short_names([self.class_name(k) for k in units], 12)
            head, target = "softmax regression: each class's weights on the pixels, a template of the class", "score"
        else:
            top = w.top_units(self.chosen, UNITS)
            units, names = [u for u, _ in top], [f"#{u} {v:+.2f}" for u, v in top]
            head = (
                f"class {self.chosen} {self.class_name(self.chosen)}: the {len(units)} first-layer units with the"
                " largest weight into it (c/C: class), each drawn as its weights on the pixels"
            )
            target = "unit"
        images = np.stack([w.image(u) for u in units])
        scale = diverging_scale(images)
        legend = (
            f"red: a bright pixel raises the {target}, blue: lowers it, white: no effect; full colour at ±{scale:.2g}"
            if mode != ASCII
            else f"# + : a bright pixel raises the {target}, = - . lowers it; full at ±{scale:.2g}"
        )
        return self._grid(images, names, scale, mode, [head, legend])

    def _grid(self, images: np.ndarray, names: list[str], scale: float, mode: str, head: list[str]) -> Text:
        header = [Text(line, style="bold" if i == 0 else "dim", no_wrap=False) for i, line in enumerate(head)]
        header_rows = sum(math.ceil(max(len(line), 1) / max(self.size.width, 1)) for line in head)
        per_row, size = grid_layout(len(images), self.size.width, self.size.height - header_rows)
        rows: list[Text] = [*header]
        for start in range(0, len(images), per_row):
            chunk = range(start, min(start + per_row, len(images)))
            label = Text(no_wrap=True, overflow="crop")
            for i in chunk:
                label.append(names[i][:size].center(size) + " ", Style(bold=True))
            rows.append(label)
            drawn = [weight_lines(images[i], scale, size, mode) for i in chunk]
            for y in range(len(drawn[0])):
                rows.append(Text(" ", no_wrap=True, overflow="crop").join(lines[y] for lines in drawn))
        return Text("\n").join(rows)
