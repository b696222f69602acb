"""Images as terminal text: half blocks in colour, or an ASCII shade ramp where colour is off or scarce."""

from __future__ import annotations

import functools
import itertools
import os

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.geometry import Size
from textual.widget import Widget

HALF = "▀"
"""Upper half block: its foreground is the upper pixel, its background the lower one."""
RAMP = " .:-=+*#%@"
"""Shades from dark to bright, for terminals without (enough) colour."""
COLOR, ASCII = "color", "ascii"


def to_pixels(image, downscale: int = 1, zoom: int = 1) -> np.ndarray:
    """(C, H, W) or (H, W) uint8 tensor/array -> (H', W', 3) uint8 RGB, block-averaged or repeated."""
    if hasattr(image, "detach"):  # a torch tensor, possibly on the GPU; torch itself is never imported here
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    a = a[None] if a.ndim == 2 else a
    if a.shape[0] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels (C, H, W), got shape {a.shape}")
    if downscale > 1:
        c, h, w = a.shape
        h, w = max(h // downscale, 1) * downscale, max(w // downscale, 1) * downscale
        a = a[:, :h, :w].reshape(c, h // downscale, downscale, w // downscale, downscale).mean((2, 4))
    if zoom > 1:
        a = a.repeat(zoom, axis=1).repeat(zoom, axis=2)
    rgb = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).transpose(1, 2, 0)


@functools.lru_cache(maxsize=1 << 16)
def _style(top: tuple[int, int, int], bottom: tuple[int, int, int] | None) -> Style:
    """Cached: a 28x28 image needs ~400 styles per frame, mostly the same few hundred pairs."""
    return Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom) if bottom else None)


def _color_line(top: np.ndarray, bottom: np.ndarray | None) -> Text:
    """One text row from two pixel rows; a missing bottom row (odd height) keeps the terminal background."""
    lowers = [tuple(p) for p in bottom.tolist()] if bottom is not None else [None] * len(top)
    styles = [_style(tuple(upper), lower) for upper, lower in zip(top.tolist(), lowers)]
    line = Text(no_wrap=True, overflow="crop")
    for style, run in itertools.groupby(styles):  # one span per run of equal cells keeps frames small
        line.append(HALF * len(list(run)), style)
    return line


def _ascii_line(top: np.ndarray, bottom: np.ndarray | None) -> Text:
    """One text row of shade characters, each the averaged brightness of a vertical pixel pair."""
    luma = top @ np.array([0.299, 0.587, 0.114])
    if bottom is not None:
        luma = (luma + bottom @ np.array([0.299, 0.587, 0.114])) / 2
    index = np.rint(luma * (len(RAMP) - 1) / 255).astype(int)
    return Text("".join(RAMP[i] for i in index), no_wrap=True, overflow="crop")


def image_lines(image, mode: str = COLOR, downscale: int = 1, zoom: int = 1) -> list[Text]:
    """The image as text rows (two pixel rows per text row), for laying several images side by side."""
    px = to_pixels(image, downscale, zoom)
    make = _ascii_line if mode == ASCII else _color_line
    return [make(px[y], px[y + 1] if y + 1 < len(px) else None) for y in range(0, len(px), 2)]


def render_image(image, mode: str = COLOR, downscale: int = 1, zoom: int = 1) -> Text:
    """One image as a rich Text: `color` half blocks or the `ascii` shade ramp; W x ceil(H/2) cells."""
    return Text("\n", no_wrap=True).join(image_lines(image, mode, downscale, zoom))


def image_mode(app) -> str:
    """ASCII when NO_COLOR is set or the console has at most 16 colours (gray ramps would collapse)."""
    if getattr(app, "no_color", False) or os.environ.get("NO_COLOR"):
        return ASCII
    return ASCII if app.console.color_system in (None, "standard", "windows") else COLOR


def fit_scale(height: int, width: int, rows: int, cols: int) -> tuple[int, int]:
    """(downscale, zoom) that makes an H x W image as large as fits in rows x cols cells."""
    zoom = min(cols // max(width, 1), (2 * rows) // max(height, 1))
    if zoom >= 1:
        return 1, zoom
    down = 2
    while (width // down > cols or -(-(height // down) // 2) > rows) and down < max(height, width):
        down += 1
    return down, 1


def short_names(classes: list[str], width: int = 5) -> list[str]:
    """Class names cut to `width` characters (first word first), kept distinct, for 80-column tables."""
    names = []
    for i, name in enumerate(classes):
        word = name.replace("/", " ").split()[0] if name.strip() else str(i)
        short = word[:width] if word[:width] not in names else name.replace(" ", "")[:width]
        names.append(short if short not in names else f"{i}{short}"[:width])
    return names


class ImageView(Widget):
    """One image, drawn in the best mode the app's console supports; `fit` scales it to the widget."""

    DEFAULT_CSS = """
    ImageView { width: auto; height: auto; }
    ImageView.-fit { width: 1fr; height: 1fr; }
    """

    def __init__(self, image=None, *, downscale: int = 1, fit: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.downscale = downscale
        self.set_class(fit, "-fit")
        self._cache: tuple[tuple, Text] | None = None

    def set_image(self, image) -> None:
        """Show another image (None clears); redraws without relayout when the size is unchanged."""
        same_shape = self.image is not None and image is not None and self.image.shape == image.shape
        self.image, self._cache = image, None
        self.refresh(layout=not same_shape)

    def _scale(self) -> tuple[int, int]:
        h, w = self.image.shape[-2:]
        if self.has_class("-fit") and self.size.width and self.size.height:
            return fit_scale(h, w, self.size.height, self.size.width)
        return self.downscale, 1

    def render(self) -> RenderResult:
        if self.image is None:
            return Text("")
        mode, (down, zoom) = image_mode(self.app), self._scale()
        key = (mode, down, zoom)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, render_image(self.image, mode, down, zoom))
        return self._cache[1]

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return 0 if self.image is None else self.image.shape[-1] // max(self.downscale, 1)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 0 if self.image is None else -(-(self.image.shape[-2] // max(self.downscale, 1)) // 2)
