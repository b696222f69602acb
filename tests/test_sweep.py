"""Sweeps end to end on small synthetic data: grid expansion, run folders, summary.csv, honest ranking."""

import csv
import json

import pytest
from test_cli import fmtui, fmtui_process, interrupt

from fmtui.config import ConfigError, RunConfig
from fmtui.events import Finished, Started
from fmtui.runfolder.read import read_run
from fmtui.sweep import RunFailed, Tally, expand_grid, lecture_base, lecture_experiment, run_sweep, split_list

pytestmark = pytest.mark.cli


def test_grid_is_the_cartesian_product_of_typed_lists():
    configs = expand_grid(RunConfig(), {"norm": ["none", "unit"], "lr": ["0.01", "1e-5"], "hidden": ["256", "512,256"]})
    assert len(configs) == 8
    assert {(c.norm, c.lr, c.hidden) for c in configs} == {
        (n, lr, h) for n in ("none", "unit") for lr in (0.01, 1e-5) for h in ((256,), (512, 256))
    }
    assert split_list("hidden", "256;512,256") == ["256", "512,256"]
    with pytest.raises(ConfigError, match="--lr"):
        expand_grid(RunConfig(), {"lr": ["0.01", "-2"]})
    with pytest.raises(ConfigError, match="listed twice"):
        expand_grid(RunConfig(), {"norm": ["unit", "UNIT"]})


def test_the_lecture_experiment_runs_as_the_lecture_ran_it():
    """Batch 1024 (inferred from the lecture's charts) and 100 epochs, unless the form holds a softmax regression,
    whose own batch size and epochs are used."""
    configs = lecture_experiment(lecture_base(RunConfig(seed=3)))  # the dashboard's default form: the MLP
    assert len(configs) == 8 and {(c.model, c.batch_size, c.epochs, c.seed) for c in configs} == {
        ("softmax", 1024, 100, 3)
    }
    mine = RunConfig(model="softmax", batch_size=256, epochs=7)
    assert {(c.batch_size, c.epochs) for c in lecture_experiment(lecture_base(mine))} == {(256, 7)}


def test_sweep_end_to_end_with_validation_ranking(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    result = fmtui(
        "--no-ui",
        "sweep",
        "--data-dir",
        tiny_data,
        "--model",
        "softmax",
        "--norm",
        "none,zscore",
        "--lr",
        "0.05,1e-5",
        "--epochs",
        2,
        "--batch-size",
        32,
        "--val-split",
        "0.2",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4 and all((out / r["run"] / "model.pt").is_file() for r in rows)
    assert {(r["norm"], r["lr"]) for r in rows} == {
        ("none", "0.05"),
        ("none", "1e-05"),
        ("zscore", "0.05"),
        ("zscore", "1e-05"),
    }
    for key in (
        "test_loss",
        "test_accuracy",
        "best_test_accuracy",
        "best_test_epoch",
        "diverged",
        "seconds",
        "batch_size",
    ):
        assert key in rows[0]
    order = [(r["health"] in ("ok", "input scale"), float(r["best_val_accuracy"])) for r in rows]
    assert order == sorted(order, reverse=True)  # healthy runs first (fmtui.ranking), by validation, not test
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranked_by"] == "best_val_accuracy"
    best = rows[0]
    assert summary["best"] == best["run"] and best["health"] == "ok"
    assert (
        f"Chosen by validation accuracy: norm={best['norm']} lr={best['lr']} -> test accuracy "
        f"{float(best['test_accuracy']):.2f}%" in result.stdout
    )
    assert result.stdout.count("\n[") == 4 and "[4/4]" in result.stdout
    assert "4 of them train together as stacked models" in result.stdout.splitlines()[0]


def test_sequential_sweep_gives_the_same_numbers(tiny_data, tmp_path):
    args = ["--no-ui", "sweep", "--data-dir", tiny_data, "--model", "softmax", "--norm", "unit,zscore", "--epochs", 2]
    stacked = fmtui(*args, "--batch-size", 32, "--out", tmp_path / "a")
    alone = fmtui(*args, "--batch-size", 32, "--out", tmp_path / "b", "--sequential")
    assert stacked.exit_code == alone.exit_code == 0, stacked.output + alone.output
    assert "2 of them train together as stacked models" in stacked.stdout.splitlines()[0]
    assert "stacked" not in alone.stdout.splitlines()[0]

    def runs(out):
        """norm -> the run's metrics.jsonl rows, for every run in the sweep's summary."""
        names = {r["norm"]: r["run"] for r in json.loads((out / "summary.json").read_text())["runs"]}
        return {
            norm: [json.loads(line) for line in (out / run / "metrics.jsonl").open()] for norm, run in names.items()
        }

    a, b = runs(tmp_path / "a"), runs(tmp_path / "b")
    assert sorted(a) == sorted(b) == ["unit", "zscore"]
    for norm in a:
        assert [r["epoch"] for r in a[norm]] == [r["epoch"] for r in b[norm]] == [1, 2]
        for ra, rb in zip(a[norm], b[norm]):
            for key in ("train_loss", "test_loss"):
                assert ra[key] == pytest.approx(rb[key], rel=1e-4), (norm, ra["epoch"], key)
            assert ra["test_accuracy"] == pytest.approx(rb["test_accuracy"], abs=0.5)  # one test image of 200


def test_sweep_without_validation_says_it_ranks_on_test(tiny_data, tmp_path):
    result = fmtui(
        "--no-ui",
        "sweep",
        "--data-dir",
        tiny_data,
        "--hidden",
        "16",
        "--hidden",
        "32,16",
        "--epochs",
        1,
        "--batch-size",
        64,
        "--out",
        tmp_path / "s",
        "--json",
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines] == ["run", "run", "summary"]
    assert lines[-1]["ranked_by"] == "best_test_accuracy"
    assert sorted(r["hidden"] for r in lines[-1]["runs"]) == [[16], [32, 16]]


def test_sweep_bad_values_and_missing_data(tiny_data, tmp_path):
    bad = fmtui("--no-ui", "sweep", "--data-dir", tiny_data, "--lr", "0.01,abc")
    assert bad.exit_code == 2 and "'abc' is not a number" in bad.stderr and bad.stderr.count("\n") == 1
    missing = fmtui("--no-ui", "sweep", "--data-dir", tmp_path / "none", "--lr", "0.1,0.01", "--out", tmp_path / "s")
    assert missing.exit_code == 2 and "files not found" in missing.stderr and not (tmp_path / "s").exists()


def sweep_process(tiny_data, out, signals):
    """Three runs of one epoch, trained one by one (3 batches of 200 each): batch 5 is inside the second run."""
    args = ["--no-ui", "sweep", "--data-dir", tiny_data, "--model", "softmax", "--lr", "0.05,0.02,0.01"]
    return fmtui_process(5, signals, *args, "--batch-size", 200, "--epochs", 1, "--sequential", "--out", out)


def test_ctrl_c_during_a_sweep_keeps_the_finished_runs_and_exits_130(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_process(tiny_data, out, 1)
    stdout, stderr = interrupt(proc, 1)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "finished runs are kept" in stderr
    runs = {r["lr"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}
    assert runs[0.05]["status"] == "completed" and (out / runs[0.05]["run"] / "model.pt").is_file()
    assert runs[0.02]["status"] == "stopped" and 0.01 not in runs  # the third run never started
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(r["run"] for r in runs.values())
    assert "[1/3] lr=0.05: test accuracy" in stdout


def test_a_second_ctrl_c_during_a_sweep_leaves_no_run_running(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    proc = sweep_process(tiny_data, out, 2)
    stdout, stderr = interrupt(proc, 2)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    statuses = {p.name: json.loads((p / "summary.json").read_text())["status"] for p in out.iterdir() if p.is_dir()}
    assert len(statuses) == 2 and "completed" in statuses.values()
    assert "running" not in statuses.values(), statuses


def softmax_grid(tiny_data, **kw):
    base = RunConfig(data_dir=str(tiny_data), model="softmax", epochs=2, batch_size=32).replace(**kw)
    return [base.replace(norm=n) for n in ("unit", "zscore")] + [base.replace(model="mlp", hidden=(16,))]


def test_run_sweep_yields_every_event_of_every_run_with_its_folder(tiny_data, tmp_path):
    configs = softmax_grid(tiny_data)
    events = list(run_sweep(configs, tmp_path / "s", should_stop=lambda: False))
    for i in range(3):
        mine = [(path, ev) for j, path, ev in events if j == i]
        assert isinstance(mine[0][1], Started) and isinstance(mine[-1][1], Finished)
        assert len({path for path, _ in mine}) == 1 and mine[0][0].parent == tmp_path / "s"
        assert read_run(mine[0][0]).status == "completed"
    tally = Tally(configs)
    finished = [run for i, path, ev in events if (run := tally.add(i, path, ev))]
    assert [r.config for r in finished] == configs and all(r.status == "completed" and r.seconds > 0 for r in finished)
    assert [len(r.rows) for r in finished] == [2, 2, 2]


def test_a_failure_in_a_sweep_is_recorded_in_the_runs_it_ended_and_the_sweep_goes_on(tiny_data, tmp_path):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        if calls["n"] == 25:  # inside the stacked pair's first epoch
            raise RuntimeError("device lost")
        return False

    events = list(run_sweep(softmax_grid(tiny_data), tmp_path / "s", should_stop=should_stop))
    failed = [(i, path, ev) for i, path, ev in events if isinstance(ev, RunFailed)]
    assert [(i, ev.message) for i, _, ev in failed] == [
        (0, "RuntimeError: device lost"),
        (1, "RuntimeError: device lost"),
    ]
    records = {p.name: read_run(p) for p in (tmp_path / "s").iterdir()}
    assert len(records) == 3
    assert [records[path.name].status for _, path, _ in failed] == ["error", "error"]
    assert [r.summary["message"] for r in records.values() if r.status == "error"] == ["RuntimeError: device lost"] * 2
    (mlp,) = [r for r in records.values() if r.status != "error"]  # the MLP trained after the failed pair
    assert mlp.status == "completed" and mlp.config.model == "mlp"
    tally = Tally(softmax_grid(tiny_data))
    finished = [run for i, path, ev in events if (run := tally.add(i, path, ev))]
    assert [r.status for r in finished] == ["error", "error", "completed"] and tally.failed == finished[:2]


def test_the_experiment_reports_each_epoch_once_from_the_events(tiny_data, tmp_path):
    from fmtui.workers import run_experiment

    posted = []
    run_experiment(softmax_grid(tiny_data), tmp_path, posted.append, lambda: False)
    texts = [m.text for m in posted]
    assert texts[:4] == [
        "lecture experiment: epoch 1/2, 0 of 3 runs done",  # the stacked pair, together
        "lecture experiment: epoch 2/2, 0 of 3 runs done",
        "lecture experiment: epoch 1/2, 2 of 3 runs done",  # then the MLP alone
        "lecture experiment: epoch 2/2, 2 of 3 runs done",
    ]
    assert len(posted) == 5 and posted[-1].done and texts[-1].startswith("lecture experiment: 3 of 3 runs in sweep-")
    assert len(posted[-1].run_dirs) == 3
