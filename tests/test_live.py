"""The live run folder, in process: metrics appended, every epoch checkpointed, resume = the run never stopped,
the writer's lock and heartbeat, file modes from the umask, provenance (see fmtui.recorder)."""

import json
import os
import re
import socket
import stat
import time
from itertools import count
from pathlib import Path

import pytest
import torch
from test_report import STARTED

from fmtui import engine, recorder
from fmtui.config import RunConfig
from fmtui.errors import RunFolderRefused
from fmtui.events import EpochEnd, Finished
from fmtui.recorder import RunRecorder, RunWriter
from fmtui.resume import load_checkpoint, open_resume
from fmtui.runfolder.export import export_runs
from fmtui.runfolder.read import read_run
from fmtui.sweep import run_sweep
from fmtui.workers import run_training

pytestmark = pytest.mark.engine

TIMING = ("seconds", "eval_seconds", "samples_per_s")
"""The metrics that measure the clock, not the model."""


def config(tiny_data: Path, **kw) -> RunConfig:
    base = dict(data_dir=str(tiny_data), epochs=3, batch_size=100, lr=0.05, hidden=(32,), threads=1)
    return RunConfig(**{**base, **kw})


def stop_at(batch: int):
    """A stop check that says stop from the given batch on (counting the checks, one per batch)."""
    calls = count(1)
    return lambda: next(calls) >= batch


def record(cfg: RunConfig, out: Path, should_stop=lambda: False, on_epoch=None) -> Finished:
    """Train cfg into the folder out as the headless mode does; on_epoch(recorder, event) after each epoch."""
    with RunRecorder(lambda c: out) as rec:
        for ev in engine.train(cfg, should_stop=should_stop):
            rec.handle(ev)
            if isinstance(ev, EpochEnd) and on_epoch:
                on_epoch(rec, ev)
    return ev


def resume(path: Path, epochs: int | None = None) -> list:
    """Resume through the function the dashboard calls; return the messages it posted."""
    posted = []
    run_training(None, path.parent, posted.append, lambda: False, resume=path, epochs=epochs)
    return posted


def rows(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_run(path).metrics]


def weights(path: Path) -> dict:
    return torch.load(path / "model.pt", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def same(a, b) -> bool:
    """Nested state dicts equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_metrics_jsonl_is_only_appended_to(tiny_data, tmp_path):
    """A reader that holds metrics.jsonl open sees each epoch's line appended, never the file rewritten."""
    out, seen, held = tmp_path / "run", [], {}

    def read_new(rec, ev):
        rec.flush()
        if not held:
            held["file"] = open(out / "metrics.jsonl")  # noqa: SIM115 - held across epochs on purpose
            held["inode"] = os.stat(out / "metrics.jsonl").st_ino
        new = held["file"].read()
        seen.append(new)
        assert os.stat(out / "metrics.jsonl").st_ino == held["inode"]
        assert new.endswith("\n") and new.count("\n") == 1 and json.loads(new)["epoch"] == ev.epoch

    record(config(tiny_data, epochs=4), out, on_epoch=read_new)
    held["file"].close()
    assert "".join(seen) == (out / "metrics.jsonl").read_text() and len(seen) == 4


def test_every_epoch_leaves_its_checkpoint_model_and_predictions(tiny_data, tmp_path):
    out = tmp_path / "run"

    def check(rec, ev):
        rec.flush()
        checkpoint = load_checkpoint(out / "checkpoint.pt")
        assert checkpoint["epoch"] == ev.epoch and [r["epoch"] for r in checkpoint["metrics"]] == [
            *range(1, ev.epoch + 1)
        ]
        assert_same_weights(weights(out), checkpoint["model"])
        assert_same_weights(checkpoint["model"], ev.checkpoint()["model"])  # the model as it is right now
        saved = torch.load(out / "predictions.pt", weights_only=True)
        accuracy = 100.0 * float((saved["probs"].argmax(1) == saved["labels"]).sum()) / len(saved["labels"])
        assert accuracy == ev.test_accuracy == read_run(out).metrics[-1]["test_accuracy"]
        assert read_run(out).summary["epochs_done"] == ev.epoch

    record(config(tiny_data), out, on_epoch=check)


CONFIGS = {
    "sgd momentum, cosine, dropout, validation split": dict(
        optimizer="sgd", momentum=0.9, schedule="cosine", dropout=0.3, val_split=0.1
    ),
    "adamw, batch norm": dict(optimizer="adamw", lr=1e-3, batch_norm=True, weight_decay=0.01),
}


@pytest.mark.parametrize("changes", CONFIGS.values(), ids=CONFIGS.keys())
def test_a_run_stopped_mid_epoch_and_resumed_equals_the_uninterrupted_run(tiny_data, tmp_path, changes):
    cfg = config(tiny_data, **changes)
    record(cfg, tmp_path / "whole")
    # 540 or 600 training images in batches of 100: batch 8 is the second or third of epoch 2
    ended = record(cfg, tmp_path / "resumed", should_stop=stop_at(8))
    assert ended.status == "stopped" and len(ended.history) == 1
    posted = resume(tmp_path / "resumed")
    assert type(posted[-1]).__name__ == "TrainingFinished" and posted[-1].event.status == "completed"
    assert rows(tmp_path / "resumed") == rows(tmp_path / "whole")
    assert_same_weights(weights(tmp_path / "resumed"), weights(tmp_path / "whole"))
    a, b = (
        load_checkpoint(tmp_path / "resumed" / "checkpoint.pt"),
        load_checkpoint(tmp_path / "whole" / "checkpoint.pt"),
    )
    assert same(a["optimizer"], b["optimizer"]) and a["optimizer"]["state"] and same(a["scheduler"], b["scheduler"])
    summary = read_run(tmp_path / "resumed").summary
    assert summary["status"] == "completed" and summary["resumed_from"] == [1]


def test_a_completed_run_extended_by_more_epochs_equals_the_longer_run(tiny_data, tmp_path):
    record(config(tiny_data, epochs=3), tmp_path / "long")
    record(config(tiny_data, epochs=2), tmp_path / "extended")
    resume(tmp_path / "extended", epochs=3)
    assert rows(tmp_path / "extended") == [
        {**r, "epochs": 2 if r["epoch"] <= 2 else 3} for r in rows(tmp_path / "long")
    ]
    assert_same_weights(weights(tmp_path / "extended"), weights(tmp_path / "long"))
    assert read_run(tmp_path / "extended").config.epochs == 3


def test_an_extended_cosine_schedule_goes_on_along_the_longer_one(tiny_data, tmp_path):
    """Its next learning rates are those a run planned for the new length has at those steps."""
    record(config(tiny_data, epochs=4, schedule="cosine"), tmp_path / "long")
    record(config(tiny_data, epochs=2, schedule="cosine"), tmp_path / "extended")
    resume(tmp_path / "extended", epochs=4)
    lrs = [r["lr"] for r in read_run(tmp_path / "extended").metrics]
    long = [r["lr"] for r in read_run(tmp_path / "long").metrics]
    assert lrs[1] < 1e-9 and lrs[2:] == pytest.approx(long[2:], rel=1e-9, abs=1e-12)


def test_a_checkpoint_one_epoch_ahead_of_the_metrics_is_repaired_at_resume(tiny_data, tmp_path):
    """Killed between checkpoint.pt and the metrics line: the checkpoint's own rows fill the gap."""
    cfg, out = config(tiny_data), tmp_path / "killed"
    record(cfg, tmp_path / "whole")
    record(cfg, out, should_stop=stop_at(14))  # 6 batches an epoch: stopped in epoch 3 after 2
    lines = (out / "metrics.jsonl").read_text().splitlines(keepends=True)
    (out / "metrics.jsonl").write_text(lines[0])
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
    resume(out)
    assert rows(out) == rows(tmp_path / "whole")
    assert_same_weights(weights(out), weights(tmp_path / "whole"))


def test_a_second_writer_is_refused_while_the_first_lives(tmp_path):
    first = RunWriter(tmp_path / "run", STARTED.config)
    with pytest.raises(RunFolderRefused, match=rf"is being written by pid {os.getpid()} on {socket.gethostname()}$"):
        RunWriter(tmp_path / "run", STARTED.config)
    first.close()
    RunWriter(tmp_path / "run", STARTED.config).close()


def test_the_heartbeat_goes_on_without_progress_and_stops_with_the_run(tmp_path, monkeypatch):
    """live.json is rewritten while the writer lives (a long evaluation sends no progress), then says how it ended."""
    monkeypatch.setattr(recorder, "HEARTBEAT", 0.05)
    monkeypatch.setattr(recorder, "LIVE_INTERVAL", 0.01)
    rec = RunRecorder(lambda c: tmp_path / "run")
    rec.handle(STARTED)
    beats = {json.loads((tmp_path / "run" / "live.json").read_text())["heartbeat"]}
    for _ in range(6000):  # a guard against a hang, not a speed limit
        if len(beats) >= 3:
            break
        time.sleep(0.01)
        beats.add(json.loads((tmp_path / "run" / "live.json").read_text())["heartbeat"])
    assert len(beats) >= 3
    rec.handle(Finished("stopped", "stopped during epoch 1 after 0 complete epochs", [], None, 0.0, None))
    live = json.loads((tmp_path / "run" / "live.json").read_text())
    assert live["status"] == "stopped" and live["pid"] == os.getpid() and live["host"] == socket.gethostname()
    time.sleep(0.2)
    assert json.loads((tmp_path / "run" / "live.json").read_text()) == live  # nobody beats for a finished run


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def test_config_json_says_how_the_run_was_made_and_times_are_iso_8601(tiny_data, tmp_path):
    record(config(tiny_data, epochs=1), tmp_path / "run")
    made = json.loads((tmp_path / "run" / "config.json").read_text())["resolved"]["provenance"]
    assert made["torch"] == torch.__version__ and made["host"] == socket.gethostname()
    assert made["python"].count(".") == 2 and made["fmtui"] and "torchvision" in made
    summary = read_run(tmp_path / "run").summary
    live = json.loads((tmp_path / "run" / "live.json").read_text())
    assert all(ISO.match(t) for t in (summary["started_at"], summary["updated_at"], live["updated_at"]))


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_run_files_and_exports_respect_the_umask(tiny_data, tmp_path, umask):
    old = os.umask(umask)
    try:
        record(config(tiny_data, epochs=1), tmp_path / "runs" / "run")
        made = export_runs([read_run(tmp_path / "runs" / "run")], tmp_path / "runs" / "exports")
    finally:
        os.umask(old)
    files = [*(tmp_path / "runs" / "run").iterdir(), *made]
    assert {".lock", "checkpoint.pt", "live.json", "metrics.jsonl", "mislabeled.csv"} <= {f.name for f in files}
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: oct(0o666 & ~umask) for f in files}


def test_a_stacked_sweep_records_checkpoints_that_resume_refuses(tiny_data, tmp_path):
    base = config(tiny_data, epochs=1, model="softmax", momentum=0.9)
    configs = [base.replace(lr=0.05), base.replace(lr=0.01)]
    paths = {i: p for i, p, _ in run_sweep(configs, tmp_path / "sweep", should_stop=lambda: False, stacked=True)}
    checkpoint = torch.load(paths[1] / "checkpoint.pt", weights_only=True)
    assert set(checkpoint["stacked"]["momentum"]) == {"1.weight", "1.bias"}
    assert_same_weights(checkpoint["model"], weights(paths[1]))
    with pytest.raises(RunFolderRefused, match="stacked sweep"):
        open_resume(paths[1], epochs=2)
