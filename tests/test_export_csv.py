"""`fmtui export --csv FILE RUN...`: real runs (a sweep folder and a run with a validation split, trained on tiny
IDX files) as one CSV table with the Runs pane's columns, read back with pandas where it is installed and with
the csv module and typed checks always; `--csv -`, both formats at once, and the targets it refuses."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from test_cli import fmtui

from fmtui.runfolder.export import csv_columns, export_runs
from fmtui.runfolder.read import read_run
from fmtui.runfolder.schema import TABLE_FIELDS

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A folder holding a sweep of two runs (softmax, lr 0.1 and 0.05, 2 epochs) and a run of 3 epochs with a
    validation split."""
    from conftest import write_idx_dataset

    base = tmp_path_factory.mktemp("export")
    data = write_idx_dataset(base / "tiny")
    common = ["--data-dir", data, "--batch-size", 100, "--model", "softmax"]
    sweep = fmtui("--no-ui", "sweep", *common, "--epochs", 2, "--lr", "0.1,0.05", "--out", base / "runs" / "sweep")
    run = fmtui("--no-ui", "train", *common, "--epochs", 3, "--val-split", 0.2, "--out", base / "runs" / "run")
    assert sweep.exit_code == 0 and run.exit_code == 0, (sweep.output, run.output)
    return base / "runs"


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_holds_every_epoch_of_every_run_with_the_runs_panes_columns(runs, tmp_path):
    target = tmp_path / "new" / "all.csv"  # its folder is made
    result = fmtui("--no-ui", "export", "--csv", target, runs / "sweep", runs / "run")
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert result.stdout == f"CSV: {target} (7 rows: 3 runs, one row per epoch)\n"
    text = target.read_text()
    header = text.splitlines()[0].split(",")
    pane_csv, _ = export_runs([read_run(runs / "run")], tmp_path / "pane")  # what the Runs pane's e writes
    assert header == csv_columns() == pane_csv.read_text().splitlines()[0].split(",")
    rows = rows_of(text)
    sweep_runs = sorted(p.name for p in (runs / "sweep").iterdir() if p.is_dir())
    assert sorted({r["run"] for r in rows}) == ["run", *(f"sweep/{name}" for name in sweep_runs)]
    for name, folder in [("run", runs / "run")] + [(f"sweep/{n}", runs / "sweep" / n) for n in sweep_runs]:
        config = json.loads((folder / "config.json").read_text())
        saved = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        mine = [r for r in rows if r["run"] == name]
        assert [int(r["epoch"]) for r in mine] == [m["epoch"] for m in saved]
        for cells, metrics in zip(mine, saved):
            assert cells["status"] == "completed" and float(cells["lr"]) == config["lr"]
            assert cells["model"] == "softmax" and cells["optimizer"] == "sgd"
            assert cells["batch_norm"] == cells["hidden"] == ""  # options a softmax regression does not have
            for field in TABLE_FIELDS:
                column, value = {"lr": "epoch_lr"}.get(field, field), metrics.get(field)
                assert (cells[column] == "") if value is None else (float(cells[column]) == value), (column, cells)
    assert {r["val_accuracy"] == "" for r in rows if r["run"] != "run"} == {True}
    assert all(0 < float(r["val_accuracy"]) <= 100 for r in rows if r["run"] == "run")
    # the pane's CSV for the same run is the same row for row, but for the run's name
    assert [{**r, "run": "run"} for r in rows if r["run"] == "run"] == rows_of(pane_csv.read_text())


def test_the_csv_reads_with_pandas_as_typed_columns(runs, tmp_path):
    pd = pytest.importorskip("pandas")
    target = tmp_path / "all.csv"
    assert fmtui("--no-ui", "export", "--csv", target, runs).exit_code == 0
    frame = pd.read_csv(target)
    assert list(frame.columns) == csv_columns() and len(frame) == 7
    assert frame["test_accuracy"].dtype == "float64" and frame["epoch"].dtype == "int64"
    assert frame["nesterov"].dtype == "bool" and frame["val_accuracy"].isna().sum() == 4
    assert frame["hidden"].isna().all()  # a softmax regression has no hidden layers: empty cells


def test_csv_to_stdout_and_tensorboard_at_once(runs, tmp_path):
    """`--csv -` puts the table alone on stdout; the lines that name the TensorBoard files go to stderr."""
    pytest.importorskip("tensorboardX")
    result = fmtui("--no-ui", "export", "--csv", "-", "--tensorboard", tmp_path / "tb", runs / "run")
    assert result.exit_code == 0, result.output
    pane_csv, _ = export_runs([read_run(runs / "run")], tmp_path / "pane")
    assert result.stdout == pane_csv.read_text() and len(rows_of(result.stdout)) == 3
    assert result.stderr == f"{runs / 'run'} -> {tmp_path / 'tb' / 'run'} (3 epochs)\n"
    assert [p.name for p in (tmp_path / "tb" / "run").iterdir()][0].startswith("events.out.tfevents")


def test_export_needs_a_format_and_follow_needs_tensorboard(runs, tmp_path):
    for args, words in (
        ([], "export needs a format: --csv FILE, --tensorboard DIR, or both"),
        (["--csv", tmp_path / "a.csv", "--follow"], "--follow needs --tensorboard"),
    ):
        result = fmtui("--no-ui", "export", *args, runs / "run")
        assert result.exit_code == 2 and words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "a.csv").exists()


def test_csv_targets_that_cannot_be_written_are_one_line(runs, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "kept.csv").write_text("keep me\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "kept.csv")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    os.mkfifo(tmp_path / "fifo")
    for target, words in (
        (tmp_path / "folder", "is a folder; name a file in it"),
        (tmp_path / "link.csv", "is a symbolic link"),
        (tmp_path / "dangling.csv", "is a symbolic link"),
        (tmp_path / "fifo", "is not a regular file"),
        (tmp_path / "file" / "sub.csv", "is not a folder"),
        (Path("/proc/fmtui.csv"), "cannot write in /proc"),
    ):
        result = fmtui("--no-ui", "export", "--csv", target, runs / "run")
        assert result.exit_code == 2 and "--csv" in result.stderr and words in result.stderr, (target, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert (tmp_path / "kept.csv").read_text() == "keep me\n" and not (tmp_path / "nowhere.csv").exists()
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == []
