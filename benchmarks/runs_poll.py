"""What following a runs folder costs the UI thread: one Runs pane tick (fmtui.runfolder.read.RunsFolder.scan plus the
table update) with N run folders, when nothing changed and when a running run appended an epoch.

    .venv/bin/python benchmarks/runs_poll.py [--runs 100] [--epochs 50] [--running 5] [--ticks 200]

Made-up run folders in a temporary folder (no data, no torch); `running` of them are held by this process's
flock the way a live writer holds them, so every tick asks each of them whether its writer lives.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from textual.app import App, ComposeResult

from fmtui.config import RunConfig
from fmtui.widgets.runs_pane import RunsPane


def make_runs(base: Path, runs: int, epochs: int, running: int) -> tuple[list, list[Path]]:
    locks, live = [], []
    for i in range(runs):
        path = base / f"20260101-{i:06d}-fashion-mnist-mlp-symmetric-lr0.01"
        path.mkdir(parents=True)
        (path / "config.json").write_text(json.dumps(RunConfig(epochs=epochs * 2).to_dict()))
        rows = [{"epoch": e, "train_loss": 0.5, "train_accuracy": 80.0, "test_loss": 0.6, "test_accuracy": 80.0}
                for e in range(1, epochs + 1)]  # fmt: skip
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        status = "running" if i < running else "completed"
        (path / "summary.json").write_text(json.dumps({"status": status, "message": ""}))
        if i < running:
            lock = open(path / ".lock", "w")
            fcntl.flock(lock, fcntl.LOCK_EX)
            locks.append(lock)
            live.append(path)
    old = time.time() - 10  # settled: as folders are a few seconds after their last write
    for path in base.iterdir():
        for file in [path, *path.iterdir()]:
            os.utime(file, (old, old))
    return locks, live


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1e3:.2f} ms, max {max(samples) * 1e3:.2f} ms"


class Host(App):
    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir

    def compose(self) -> ComposeResult:
        yield RunsPane(self.runs_dir)


async def pane_ticks(base: Path, live: list[Path], ticks: int, epochs: int) -> tuple[list[float], list[float]]:
    app = Host(base)
    idle, advancing = [], []
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(RunsPane)
        await pilot.pause()
        for _ in range(ticks):
            t0 = time.perf_counter()
            pane.refresh_runs()
            idle.append(time.perf_counter() - t0)
        for i in range(ticks):
            with open(live[0] / "metrics.jsonl", "a") as f:
                epoch = epochs + 1 + i
                f.write(json.dumps({"epoch": epoch, "train_loss": 0.5, "train_accuracy": 80.0, "test_loss": 0.6,
                                    "test_accuracy": 80.0}) + "\n")  # fmt: skip
            t0 = time.perf_counter()
            pane.refresh_runs()
            advancing.append(time.perf_counter() - t0)
            await pilot.pause()  # let the table redraw between ticks, as the real timer does
    return idle, advancing


def pane_rows(base: Path, run: Path) -> int:
    from fmtui.runfolder.read import read_run

    return read_run(run).epochs_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--running", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "runs"
        locks, live = make_runs(base, args.runs, args.epochs, args.running)
        from fmtui.runfolder.read import RunsFolder

        folder = RunsFolder(base)
        t0 = time.perf_counter()
        folder.scan()
        first = time.perf_counter() - t0
        scans = []
        for _ in range(args.ticks):
            t0 = time.perf_counter()
            folder.scan()
            scans.append(time.perf_counter() - t0)
        idle, advancing = asyncio.run(pane_ticks(base, live, args.ticks, args.epochs))
        print(f"{args.runs} run folders ({args.running} running, {args.epochs} epochs each), {args.ticks} ticks")
        print(f"first scan (reads every file):          {first * 1e3:.1f} ms")
        print(f"RunsFolder.scan, nothing changed:       {ms(scans)}")
        print(f"pane tick, nothing changed:             {ms(idle)}")
        print(f"pane tick, a running run added an epoch: {ms(advancing)}")
        assert pane_rows(base, live[0]) == args.epochs + args.ticks, "the running run was not followed"
        for lock in locks:
            lock.close()


if __name__ == "__main__":
    main()
