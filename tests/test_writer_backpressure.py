"""A slow disk holds training back (fmtui.recorder): the run writer's thread may fall PENDING_EPOCHS epochs behind,
then the training thread waits for it, so the epochs kept in memory for the disk stay bounded."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
import torch
from pilot import HANG
from test_report import STARTED

import fmtui
from fmtui import recorder
from fmtui.events import EpochEnd, Finished
from fmtui.recorder import RunWriter
from fmtui.runfolder.read import read_run

pytestmark = pytest.mark.engine

PACKAGE = str(Path(fmtui.__file__).parent) + os.sep


def waiting_in_fmtui(thread: threading.Thread) -> bool:
    """The thread sleeps in a threading wait (a Condition's: a semaphore's, a bounded queue's) that fmtui's code
    called, which is where a training thread held back by its writer sleeps."""
    frame = sys._current_frames().get(thread.ident)
    codes = []
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    return (
        bool(codes)
        and (codes[0].co_name, codes[0].co_filename) == ("wait", threading.__file__)
        and any(code.co_filename.startswith(PACKAGE) for code in codes)
    )


def test_a_slow_disk_holds_training_back_after_pending_epochs(tmp_path, monkeypatch):
    epochs = 8  # more than a small bound lets wait for the disk (not derived from it: a mutated bound stays out)
    disk = threading.Event()  # set: the disk answers again
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:  # every write of the writer's own thread waits until the disk answers
        if threading.current_thread().name.startswith("fmtui-writer"):
            disk.wait()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    writer = RunWriter(tmp_path / "run", STARTED.config)
    writer.handle(STARTED)  # written by this thread at once; it starts the writer thread
    built: list[int] = []  # the epochs whose checkpoint the training thread copied into memory

    def checkpoint_of(epoch: int):
        def build() -> dict:
            built.append(epoch)
            return {"model": {"w": torch.full((1000,), float(epoch))}}

        return build

    def train() -> None:
        for k in range(1, epochs + 1):
            writer.handle(EpochEnd(k, epochs, 0.5, 80.0, 0.6, 79.0, 1.0, 0.1, 500.0, 0.01, checkpoint=checkpoint_of(k)))

    trainer = threading.Thread(target=train, name="test-trainer", daemon=True)
    trainer.start()
    try:
        deadline = HANG  # a guard against a hang, never a speed check: the condition below decides
        while trainer.is_alive() and not waiting_in_fmtui(trainer):
            trainer.join(0.01)
            deadline -= 0.01
            assert deadline > 0, f"the training thread neither waited nor ended: {built}"
        assert trainer.is_alive(), f"training went on through {len(built)} epochs while the disk wrote none"
        # the one being written, PENDING_EPOCHS queued behind it, and the one the training thread waits to hand in
        assert built == list(range(1, recorder.PENDING_EPOCHS + 2))
        assert not (tmp_path / "run" / "metrics.jsonl").exists()
    finally:
        disk.set()
        trainer.join(HANG)
    writer.handle(Finished("completed", f"finished {epochs} epochs", [], None, 1.0, None))
    assert built == list(range(1, epochs + 1))
    assert [row["epoch"] for row in read_run(tmp_path / "run").metrics] == list(range(1, epochs + 1))
