"""Produce screenshots/*.svg from the real app: train on real Fashion-MNIST, then photograph each pane.

    python scripts/screenshots.py --data-dir DIR          (or set FMTUI_DATA_DIR)

Runs the app headless through `make_app` and `run_test`, trains the step-by-step MLP for a few
epochs on the CPU, runs the lecture's normalization x learning-rate experiment from the Runs pane,
and saves data.svg, model.svg, lr-finder.svg, train.svg, errors.svg, weights.svg, runs.svg and hparams.svg.

Each SVG is then "gridded": every character is placed at its own cell (Rich places a whole run of text
and trusts the font's advance widths). Viewers that lack Fira Code (GitHub shows SVGs without web fonts)
fall back to another font whose braille and block glyphs are wider or narrower, and the charts drifted
out of their boxes; placed per cell, they line up in any font. The font list ends in `monospace`.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmtui.app import FmtuiApp, make_app  # noqa: E402
from fmtui.config import RunConfig  # noqa: E402
from fmtui.widgets.charts import ThrottledPlot  # noqa: E402
from fmtui.widgets.runs_pane import RunsChart  # noqa: E402

TEXT_RUN = re.compile(r'<text (class="[^"]*") x="([0-9.]+)" y="([0-9.]+)" textLength="([0-9.]+)"([^>]*)>(.*?)</text>')
FONTS = 'font-family: "Fira Code", "DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", monospace;'


def gridded(svg: str) -> str:
    """The SVG with each character of each text run placed at its own cell (a <tspan> per glyph, spaces left
    out), and a font list with fallbacks, so that it renders aligned whatever monospace font a viewer has."""

    def place(m: re.Match) -> str:
        cls, x, y, length, rest, body = m.groups()
        chars = html.unescape(body)
        cell = float(length) / max(len(chars), 1)
        spans = "".join(
            f'<tspan x="{float(x) + i * cell:.1f}">{html.escape(c, quote=False)}</tspan>'
            for i, c in enumerate(chars)
            if not c.isspace()
        )
        return f'<text {cls} y="{y}"{rest}>{spans}</text>'

    return TEXT_RUN.sub(place, svg).replace("font-family: Fira Code, monospace;", FONTS)


def save(app: FmtuiApp, name: str, out: Path) -> None:
    app.save_screenshot(name, str(out))
    (out / name).write_text(gridded((out / name).read_text()))


async def settle(pilot, app: FmtuiApp, timeout: float) -> None:
    """Wait until training and every background worker (data loading, parameter count) are done."""
    deadline = time.monotonic() + timeout
    while app.activity.busy or any(w.is_running for w in app.workers):
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the app to settle")
        await pilot.pause(0.2)
    await pilot.pause(0.5)


async def shoot(app: FmtuiApp, size: tuple[int, int], out: Path, timeout: float) -> None:
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app, 120)
        for key, name in (("1", "data"), ("2", "model")):
            await pilot.press(key)
            await settle(pilot, app, 120)
            save(app, f"{name}.svg", out)
        await pilot.press("l")  # the learning-rate finder, under the Model pane's form
        await pilot.pause(0.5)
        await settle(pilot, app, timeout)
        save(app, "lr-finder.svg", out)
        await pilot.press("s")
        await settle(pilot, app, timeout)
        if "Done" not in str(app.query_one("#train-message").render()):
            raise SystemExit(f"training did not complete: {app.query_one('#train-message').render()}")
        app.train_pane.replot()
        await pilot.pause(0.5)
        save(app, "train.svg", out)
        await pilot.press("4")
        await settle(pilot, app, 120)
        save(app, "errors.svg", out)
        await pilot.press("w")  # what the model learned: the MLP's first-layer units
        await pilot.pause(0.5)
        save(app, "weights.svg", out)
        await pilot.press("w")
        await pilot.press("5", "L")  # the lecture's normalization x learning-rate experiment
        await pilot.pause(0.5)
        await settle(pilot, app, timeout)
        for chart in app.query(RunsChart):
            chart.replot()
        await pilot.pause(0.5)
        save(app, "runs.svg", out)
        await pilot.press("h")  # the hyperparameter view of the experiment's runs
        await pilot.pause(0.5)
        for chart in app.screen.query(ThrottledPlot):
            chart.replot()
        await pilot.pause(0.5)
        save(app, "hparams.svg", out)
        await pilot.press("escape")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("FMTUI_DATA_DIR"),
        help="folder with the Fashion-MNIST files (default: $FMTUI_DATA_DIR)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--size", default="120x36", help="terminal size, COLSxROWS")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="where the run folders go (default: a fresh temporary folder, shown as 'runs')",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for the training run")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set FMTUI_DATA_DIR")
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    # Photograph what most users see over SSH: a 256-colour terminal (not truecolor), colours on.
    os.environ["TERM"] = "xterm-256color"
    for name in ("COLORTERM", "NO_COLOR"):
        os.environ.pop(name, None)
    args.out, args.data_dir = args.out.resolve(), str(Path(args.data_dir).resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    # Work in a fresh folder: only this script's runs in the Runs pane, under a short relative name, and the
    # data under "data" (the Model pane shows where the data is: a short name, not this machine's path).
    args.runs_dir = args.runs_dir.resolve() if args.runs_dir else Path("runs")
    os.chdir(tempfile.mkdtemp(prefix="fmtui-shots-"))
    Path("data").symlink_to(args.data_dir)
    cfg = RunConfig(data_dir="data", epochs=args.epochs, device=args.device)
    asyncio.run(shoot(make_app(cfg, runs_dir=args.runs_dir), (cols, rows), args.out, args.timeout))
    print(
        f"wrote {', '.join(f'{n}.svg' for n in ('data', 'model', 'lr-finder', 'train', 'errors', 'weights', 'runs', 'hparams'))} to {args.out}"
    )


if __name__ == "__main__":
    main()
