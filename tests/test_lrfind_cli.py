"""`fmtui lr-find`: the suggestion, the curve as CSV (and JSON with --json), bad input, on tiny data."""

import csv
import json

import pytest
from test_cli import fmtui

from fmtui import lrfind

pytestmark = pytest.mark.cli


def lr_find(tiny_data, *extra):
    return fmtui("--no-ui", "lr-find", "--data-dir", tiny_data, "--batch-size", 32, "--device", "cpu", *extra)


def test_lr_find_prints_the_suggestion_and_writes_the_curve(tiny_data, tmp_path):
    out = tmp_path / "curve.csv"
    result = lr_find(tiny_data, "--out", out)
    assert result.exit_code == 0, result.output
    header, suggestion, status = result.stdout.splitlines()
    assert header.startswith("lr finder on Fashion-MNIST, cpu") and "lr 1e-07 to 10 in at most 300 steps" in header
    assert suggestion.startswith("Suggested learning rate: ") and "minimum / 10: " in suggestion
    assert status.startswith("The smoothed loss blew up at lr ") and status.endswith(f"Curve: {out}")
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["step", "lr", "loss", "smoothed"] and rows[0]["step"] == "1"
    assert float(rows[0]["lr"]) == pytest.approx(1e-7) and len(rows) < 300
    steepest = float(suggestion.split()[3])
    assert any(float(r["lr"]) == pytest.approx(steepest, rel=0.05) for r in rows)
    assert not (tmp_path / "runs").exists()  # no run folder is made


def test_json_has_the_suggestion_and_the_curve_and_the_csv_goes_to_the_runs_folder(tiny_data, tmp_path):
    result = lr_find(tiny_data, "--json", "--steps", 100, "--start-lr", 1e-5, "--end-lr", 100)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["event"] == "lr_find" and found["status"] == "completed"
    assert found["min_loss_lr"] > found["suggested_lr"] > 1e-5
    assert found["min_loss_lr_over_10"] == pytest.approx(found["min_loss_lr"] / 10)
    assert found["curve"][0] == {**found["curve"][0], "step": 1, "lr": pytest.approx(1e-5)}
    assert len(found["curve"]) == found["steps"] <= 100
    path = tmp_path / "runs" / "lr-find"
    (written,) = path.iterdir()
    assert str(written) == found["csv"] and written.name.endswith("-fashion-mnist-mlp-symmetric.csv")
    assert len(list(csv.DictReader(written.open()))) == found["steps"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--start-lr", 1, "--end-lr", 0.1], "--start-lr 1 must be below --end-lr 0.1"),
        (["--steps", 5], "Invalid value for '--steps'"),
        (["--lr", 0], "--lr"),
        (["--hidden", "x"], "--hidden"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_data, args, needle):
    result = lr_find(tiny_data, *args)
    assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.output


def test_an_out_that_is_a_folder_is_refused(tiny_data, tmp_path):
    result = lr_find(tiny_data, "--out", tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.stderr and "Traceback" not in result.output


def test_help_states_the_finders_defaults():
    text = fmtui("lr-find", "--help").stdout
    for value in (lrfind.START_LR, lrfind.END_LR, lrfind.STEPS):
        assert f"[{value:g}]" in text


def test_fmtuis_own_runs_dir_and_data_dir_reach_lr_find_which_accepts_no_ui(tiny_data, tmp_path, monkeypatch):
    """As for every command: `fmtui --runs-dir R --data-dir D lr-find --no-ui ...`; --no-batch-norm folds to no."""
    monkeypatch.chdir(tmp_path)
    search = ["--steps", 100, "--start-lr", 1e-5, "--end-lr", 100, "--batch-size", 32, "--device", "cpu"]
    args = ["--runs-dir", tmp_path / "elsewhere", "--data-dir", tiny_data, "lr-find", "--no-ui", *search]
    result = fmtui(*args, "--no-batch-norm", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["config"]["batch_norm"] is False and found["config"]["data_dir"] == str(tiny_data)
    (written,) = (tmp_path / "elsewhere" / "lr-find").iterdir()
    assert found["csv"] == str(written) and not (tmp_path / "runs").exists()
