"""Produce screenshots/*.svg from the real app: train on real Fashion-MNIST, then photograph each pane.

    python scripts/screenshots.py --data-dir DIR          (or set FMTUI_DATA_DIR)

Runs the app headless through `make_app` and `run_test`, trains the step-by-step MLP for a few
epochs on the CPU, runs the lecture's normalization x learning-rate experiment from the Runs pane,
and saves data.svg, model.svg, train.svg, errors.svg and runs.svg.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmtui.app import FmtuiApp, make_app  # noqa: E402
from fmtui.config import RunConfig  # noqa: E402
from fmtui.widgets.runs_pane import RunsChart  # noqa: E402


async def settle(pilot, app: FmtuiApp, timeout: float) -> None:
    """Wait until training and every background worker (data loading, parameter count) are done."""
    deadline = time.monotonic() + timeout
    while app.training or any(w.is_running for w in app.workers):
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
            app.save_screenshot(f"{name}.svg", str(out))
        await pilot.press("s")
        await settle(pilot, app, timeout)
        if "Done" not in str(app.query_one("#train-message").render()):
            raise SystemExit(f"training did not complete: {app.query_one('#train-message').render()}")
        app.train_pane.replot()
        await pilot.pause(0.5)
        app.save_screenshot("train.svg", str(out))
        await pilot.press("4")
        await settle(pilot, app, 120)
        app.save_screenshot("errors.svg", str(out))
        await pilot.press("5", "L")  # the lecture's normalization x learning-rate experiment
        await pilot.pause(0.5)
        await settle(pilot, app, timeout)
        for chart in app.query(RunsChart):
            chart.replot()
        await pilot.pause(0.5)
        app.save_screenshot("runs.svg", str(out))


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
    if args.runs_dir is None:  # only this script's runs in the Runs pane, under a short relative name
        os.chdir(tempfile.mkdtemp(prefix="fmtui-shots-"))
        args.runs_dir = Path("runs")
    cfg = RunConfig(data_dir=args.data_dir, epochs=args.epochs, device=args.device)
    asyncio.run(shoot(make_app(cfg, runs_dir=args.runs_dir), (cols, rows), args.out, args.timeout))
    print(f"wrote {', '.join(f'{n}.svg' for n in ('data', 'model', 'train', 'errors', 'runs'))} to {args.out}")


if __name__ == "__main__":
    main()
