"""Watching a run while `fmtui --no-ui train --resume` extends it in its folder: the follower (fmtui.watch) and the
dashboard that `fmtui watch RUN` opens see the finished epochs once, then the resumed ones go on after them, with
no restart at epoch 1 and no epoch twice; the run ends completed with its whole history.

The resuming process is real; it waits at chosen training batches until the test lets it go on, so each look at
the folder happens at a known point of the run (never after a sleep)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pilot import HANG, sync, text_of, wait_for
from test_cli import read_until
from test_live import config, record, stop_at

from fmtui.app import make_app
from fmtui.events import BatchProgress, EpochEnd, Finished, Started
from fmtui.runfolder.read import read_run
from fmtui.watch import RunFollower
from fmtui.widgets.train_pane import EpochLog

# `fmtui` whose training batches numbered in argv[1] (counted from the process's first) each wait for a line on
# stdin, after saying so on stderr.
GATED = """
import sys
import torch
import torch.nn.functional as F
from fmtui.cli import main

gates, real, calls = {int(n) for n in sys.argv[1].split(",")}, F.cross_entropy, [0]

def cross_entropy(*args, **kw):
    if torch.is_grad_enabled() and kw.get("reduction", "mean") == "mean":
        calls[0] += 1
        if calls[0] in gates:
            print(f"test: waiting in training batch {calls[0]}", file=sys.stderr, flush=True)
            sys.stdin.readline()
    return real(*args, **kw)

F.cross_entropy = cross_entropy
main(sys.argv[2:])
"""
EPOCHS, DONE, BATCHES = 4, 2, 6  # 600 tiny images in batches of 100; stopped in epoch 3, resumed to the end


class Resuming:
    """`fmtui --no-ui train --resume RUN`, held at the first batch of each epoch it trains until `go_on()`."""

    def __init__(self, run: Path):
        gates = ",".join(str(1 + BATCHES * k) for k in range(EPOCHS - DONE))
        cmd = [sys.executable, "-c", GATED, gates, "--no-ui", "train", "--resume", str(run)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)  # fmt: skip
        self.err: list[str] = []

    def held_in_epoch(self, epoch: int) -> None:
        """Wait until the process waits in the first batch of `epoch` (the epochs before it are trained)."""
        read_until(self.proc.stderr, f"test: waiting in training batch {1 + BATCHES * (epoch - DONE - 1)}", self.err)

    def go_on(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def close(self) -> int:
        """Let it end (stdin's end lets every gate go), then its exit code; killed if it hangs."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=HANG)  # a guard against a hang, not a speed limit
        finally:
            self.proc.kill()
            if not self.proc.stderr.closed:
                self.err.append(self.proc.stderr.read())
                self.proc.stderr.close()


@pytest.fixture
def stopped(tiny_data, tmp_path) -> Path:
    """A run of 4 epochs stopped in its third: 2 complete epochs, a checkpoint to go on from."""
    out = tmp_path / "runs" / "run"
    record(config(tiny_data, epochs=EPOCHS), out, should_stop=stop_at(BATCHES * DONE + 3))
    assert read_run(out).status == "stopped" and len(read_run(out).metrics) == DONE
    return out


def poll_until(follower: RunFollower, seen: list, condition) -> None:
    """Look at the folder until condition(seen) holds (the writer thread writes an epoch's files after it)."""
    for _ in range(int(HANG / 0.02)):  # a guard against a hang: the condition decides
        seen.extend(follower.poll())
        if condition(seen):
            return
        time.sleep(0.02)
    raise AssertionError(f"the follower never saw it: {[type(e).__name__ for e in seen]}")


def ended(events: list, epoch: int) -> bool:
    """live.json's progress has come to the end of `epoch` (the recorder writes it with the epoch's files)."""
    return any(isinstance(e, BatchProgress) and (e.epoch, e.batch) == (epoch, BATCHES) for e in events)


def epochs_of(events: list) -> list[int]:
    return [e.epoch for e in events if isinstance(e, EpochEnd)]


@pytest.mark.engine
def test_a_follower_sees_a_resumed_run_go_on_from_its_last_epoch(stopped):
    before = read_run(stopped).metrics
    resuming = Resuming(stopped)
    try:
        resuming.held_in_epoch(DONE + 1)  # config.json and summary.json say it runs again
        follower, seen = RunFollower(stopped), []
        poll_until(follower, seen, lambda s: epochs_of(s) == [1, 2])
        assert isinstance(seen[0], Started) and seen[0].config.epochs == EPOCHS
        numbers = [(e.epoch, e.train_loss, e.test_accuracy) for e in seen if isinstance(e, EpochEnd)]
        assert numbers == [(r["epoch"], r["train_loss"], r["test_accuracy"]) for r in before]
        for epoch in range(DONE + 1, EPOCHS):
            resuming.go_on()
            resuming.held_in_epoch(epoch + 1)  # the epoch's end is written (the writer thread goes on meanwhile)
            poll_until(follower, seen, lambda s, epoch=epoch: epoch in epochs_of(s) and ended(s, epoch))
        resuming.go_on()
        assert resuming.close() == 0, "".join(resuming.err)
        poll_until(follower, seen, lambda s: isinstance(s[-1], Finished))
    finally:
        resuming.close()
    assert epochs_of(seen) == [1, 2, 3, 4]  # the resumed epochs after the old ones: none again, none from 1
    assert [type(e).__name__ for e in seen].count("Started") == 1 and follower.poll() == []
    progress = [e for e in seen if isinstance(e, BatchProgress)]
    assert all(p.step == (p.epoch - 1) * BATCHES + p.batch for p in progress)  # the step count goes on, too
    assert all(p.epoch > DONE for p in progress) and [p.step for p in progress] == sorted(p.step for p in progress)
    end = seen[-1]
    assert end.status == "completed" and [e.epoch for e in end.history] == [1, 2, 3, 4]
    assert follower.record.summary["epochs_done"] == EPOCHS  # what summary.json says agrees with metrics.jsonl


def log_lines(app) -> list[str]:
    return [line for line in app.query_one(EpochLog).lines if line.startswith("Epoch [")]


@pytest.mark.app
@sync
async def test_fmtui_watch_shows_a_resumed_run_go_on_from_its_last_epoch(stopped):
    resuming = Resuming(stopped)
    try:
        resuming.held_in_epoch(DONE + 1)
        app = make_app(runs_dir=stopped.parent, watch=stopped)  # what `fmtui watch RUN` opens
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: len(log_lines(app)) == DONE and app.train_pane.phase == "running")
            for epoch in range(DONE + 1, EPOCHS + 1):
                resuming.go_on()
                if epoch < EPOCHS:
                    resuming.held_in_epoch(epoch + 1)
                await wait_for(pilot, lambda epoch=epoch: f"Epoch [{epoch}/{EPOCHS}]" in "\n".join(log_lines(app)))
            await wait_for(pilot, lambda: app.train_pane.phase == "finished")
            assert [line[: len("Epoch [1/4]")] for line in log_lines(app)] == [f"Epoch [{k}/4]" for k in (1, 2, 3, 4)]
            assert text_of(app, "#train-message").startswith("Done")
        assert resuming.close() == 0, "".join(resuming.err)
    finally:
        resuming.close()
