"""The image renderer: half-block cells and colours, the ASCII fallback, mode choice, and ImageView in an app."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from rich.console import Console
from textual.app import App

from fmtui.widgets.image import ASCII, COLOR, HALF, ImageView, fit_scale, image_mode, render_image, short_names

pytestmark = pytest.mark.app


def colors(text, index: int) -> tuple[str | None, str | None]:
    """(fg, bg) hex of the character at `index` of a rendered Text."""
    style = text.get_style_at_offset(Console(), index)
    hex_of = lambda c: None if c is None else c.get_truecolor().hex  # noqa: E731
    return hex_of(style.color), hex_of(style.bgcolor)


def test_half_blocks_put_upper_pixel_in_foreground_and_lower_in_background():
    text = render_image(np.array([[0, 255], [128, 64]], dtype=np.uint8))
    assert text.plain == HALF * 2
    assert colors(text, 0) == ("#000000", "#808080")
    assert colors(text, 1) == ("#ffffff", "#404040")


def test_odd_height_leaves_the_last_background_empty_and_channels_first_rgb_works():
    rgb = np.zeros((3, 3, 1), dtype=np.uint8)
    rgb[:, 0, 0], rgb[:, 1, 0], rgb[:, 2, 0] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    text = render_image(torch.from_numpy(rgb))
    assert text.plain == f"{HALF}\n{HALF}"
    assert colors(text, 0) == ("#ff0000", "#00ff00")
    assert colors(text, 2) == ("#0000ff", None)


def test_downscale_averages_blocks_and_zoom_repeats_pixels():
    image = np.array([[0, 100, 200, 200], [100, 200, 200, 200], [0, 0, 50, 50], [0, 0, 50, 50]], dtype=np.uint8)
    small = render_image(image, downscale=2)
    assert small.plain == HALF * 2
    assert colors(small, 0) == ("#646464", "#000000")  # mean(0, 100, 100, 200) = 100 = 0x64
    assert colors(small, 1) == ("#c8c8c8", "#323232")
    big = render_image(np.array([[10, 20]], dtype=np.uint8), zoom=2)
    assert big.plain == HALF * 4
    assert [colors(big, i)[0] for i in range(4)] == ["#0a0a0a", "#0a0a0a", "#141414", "#141414"]


def test_ascii_ramp_averages_each_pixel_pair_and_has_no_colour():
    image = np.array([[0, 255, 0, 255], [0, 255, 255, 100]], dtype=np.uint8)
    text = render_image(image, ASCII)
    assert text.plain == " @=*"  # pairs average 0, 255, 127.5 and 177.5 on the ramp " .:-=+*#%@"
    assert not text.spans


def test_gray_ramp_stays_distinguishable_at_256_colours():
    """rich downgrades truecolor to xterm's 256 colours; 16 gray levels must not collapse."""
    levels = np.arange(0, 256, 17, dtype=np.uint8)  # 0, 17, ..., 255
    console = Console(color_system="256", force_terminal=True, width=40)
    with console.capture() as capture:
        console.print(render_image(np.stack([levels, levels])))
    numbers = [int(n) for n in re.findall(r"38;5;(\d+)", capture.get())]
    brightness = [-1 if n == 16 else 256 if n == 231 else n for n in numbers]  # 16 = black, 231 = white
    assert len(numbers) == len(levels)
    assert brightness == sorted(brightness) and len(set(numbers)) >= 14


@pytest.mark.parametrize(
    ("system", "no_color", "mode"),
    [
        ("truecolor", False, COLOR),
        ("256", False, COLOR),
        ("standard", False, ASCII),
        ("windows", False, ASCII),
        (None, False, ASCII),
        ("truecolor", True, ASCII),
    ],
)
def test_mode_follows_the_console_colours_and_no_color(monkeypatch, system, no_color, mode):
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = SimpleNamespace(no_color=no_color, console=SimpleNamespace(color_system=system))
    assert image_mode(app) == mode


def test_no_color_environment_forces_ascii(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert image_mode(SimpleNamespace(no_color=False, console=SimpleNamespace(color_system="truecolor"))) == ASCII


def test_fit_scale_zooms_into_space_and_shrinks_when_short():
    assert fit_scale(28, 28, rows=14, cols=30) == (1, 1)
    assert fit_scale(28, 28, rows=30, cols=60) == (1, 2)
    assert fit_scale(28, 28, rows=10, cols=30) == (2, 1)


def test_short_names_are_distinct_and_short():
    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    names = short_names(fashion, 4)
    assert names[:3] == ["T-sh", "Trou", "Pull"] and len(set(names)) == 10
    assert all(len(n) <= 4 for n in names)
    assert len(set(short_names(["cat", "cattle", "cats"], 3))) == 3


def test_rejects_images_with_other_channel_counts():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        render_image(np.zeros((2, 4, 4), dtype=np.uint8))


class ImageApp(App):
    def compose(self):
        yield ImageView(np.array([[0, 255], [255, 0]], dtype=np.uint8).repeat(2, 0).repeat(2, 1))


def screen_text(app: App) -> str:
    return "\n".join("".join(s.text for s in strip) for strip in app.screen._compositor.render_strips())


@pytest.mark.parametrize(("env", "expected"), [({"COLORTERM": "truecolor"}, HALF * 4), ({"NO_COLOR": "1"}, "  @@")])
def test_image_view_picks_its_mode_from_the_app(monkeypatch, env, expected):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = ImageApp()

    async def check():
        async with app.run_test(size=(10, 4)) as pilot:
            await pilot.pause()
            view = app.query_one(ImageView)
            assert (view.size.width, view.size.height) == (4, 2)
            assert screen_text(app).splitlines()[0][:4] == expected

    asyncio.run(check())


def test_widget_modules_do_not_import_torch():
    """The first frame must not wait for torch: it is imported inside the loading worker only."""
    code = (
        "import sys, fmtui.widgets.image, fmtui.widgets.data_pane, fmtui.widgets.errors_pane;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
