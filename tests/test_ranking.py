"""Which run is the best (fmtui.ranking): never an unhealthy one, by validation when every run has it, else by
test and saying so; a line when the top score is an unhealthy run's. Then where the verdict shows: the sweep's
table, its --json summary and summary.json, the dashboard's lecture experiment."""

import json
from pathlib import Path

import pytest

from fmtui.ranking import BY_TEST, BY_VAL, healthy, not_ranked_line, rank, verdict
from fmtui.report import format_table, summary_json
from fmtui.workers import experiment_choice

pytestmark = pytest.mark.engine


def row(norm: str, lr: float, test: float | None, health: str | None = "ok", val=None, status="completed") -> dict:
    """A sweep row (fmtui.sweep.SweepRun.summary_row) with the fields ranking and the table read."""
    return {
        "run": f"run-{norm}-{lr:g}",
        "norm": norm,
        "lr": lr,
        "test_accuracy": test,
        "best_test_accuracy": test,
        "best_test_epoch": 5 if test is not None else None,
        "best_val_accuracy": val,
        "health": health,
        "status": status,
        "diverged": status == "diverged",
        "seconds": 1.0,
        "varying": f"norm={norm} lr={lr:g}",
    }


LECTURE = [  # the sweep: softmax, batch 1024, 5 epochs, on the real Fashion-MNIST (test accuracy, health)
    row("none", 0.01, 79.53, "exploding"),
    row("none", 1e-5, 74.10),
    row("unit", 0.01, 77.40),
    row("unit", 1e-5, 41.20),
    row("symmetric", 0.01, 78.80),
    row("symmetric", 1e-5, 64.30),
    row("zscore", 0.01, 79.12),
    row("zscore", 1e-5, 67.00),
]


def test_an_exploding_run_is_never_the_best_and_one_line_says_why():
    v = verdict(LECTURE)
    assert v.by == BY_TEST and v.on_test
    assert v.best["norm"] == "zscore" and v.passed_over["norm"] == "none"
    assert [r["norm"] for r in v.ranked][:2] == ["zscore", "symmetric"] and v.ranked[-1]["health"] == "exploding"
    line = not_ranked_line(v.passed_over, v.by, "none lr 0.01")
    assert line == "none lr 0.01 scored 79.53% (test) but its loss exploded: not ranked"


def test_every_unhealthy_state_is_ruled_out_and_the_input_scale_note_is_not():
    for state, why in [
        ("unstable", "its accuracy fell back"),
        ("at chance", "it ended at chance level"),
        ("diverged", "its loss diverged"),
    ]:
        rows = [row("none", 0.01, 90.0, state, status="diverged" if state == "diverged" else "completed")]
        v = verdict(rows + [row("zscore", 0.01, 80.0)])
        assert v.best["norm"] == "zscore" and not healthy(rows[0])
        assert not_ranked_line(v.passed_over, v.by, "x").endswith(f"but {why}: not ranked")
    assert verdict([row("none", 1e-5, 90.0, "input scale"), row("zscore", 0.01, 80.0)]).best["norm"] == "none"


def test_an_unhealthy_run_below_the_best_needs_no_line():
    v = verdict([row("none", 0.01, 60.0, "exploding"), row("zscore", 0.01, 80.0)])
    assert v.best["norm"] == "zscore" and v.passed_over is None


def test_no_healthy_run_means_no_best():
    v = verdict([row("none", 0.01, 79.5, "exploding"), row("none", 0.1, 81.0, "exploding")])
    assert v.best is None and v.passed_over["lr"] == 0.1
    assert verdict([]).best is None and verdict([]).passed_over is None


def test_validation_ranks_when_every_run_has_it():
    rows = [
        row("unit", 0.01, 85.0, val=80.0),
        row("zscore", 0.01, 80.0, val=84.0),
        row("none", 0.01, 90, "exploding", val=88),
    ]
    v = verdict(rows)
    assert v.by == BY_VAL and not v.on_test and v.best["norm"] == "zscore"  # not the higher test accuracy
    assert not_ranked_line(v.passed_over, v.by, "none").startswith("none scored 88.00% (validation) but")
    assert verdict(rows + [row("symmetric", 0.01, 70.0)]).by == BY_TEST  # one run without: all on test


def test_failed_and_resultless_runs_come_last():
    rows = [row("a", 1, None, status="stopped"), row("b", 1, 50.0, None, status="error"), row("c", 1, 40.0)]
    rows.append(row("d", 1, 60.0, "at chance"))
    assert [r["norm"] for r in rank(rows)[0]] == ["c", "d", "a", "b"]
    assert verdict(rows).best["norm"] == "c" and verdict(rows).passed_over["norm"] == "d"  # not the failed b


# --- where the verdict shows -------------------------------------------------------------------------------


def test_the_sweep_table_names_the_healthy_best_and_the_run_it_passed_over():
    ranked, by = rank(LECTURE)
    lines = format_table(ranked, by, ["norm", "lr"]).splitlines()
    assert lines[2].startswith("zscore") and lines[-3].startswith("none  ")  # healthy first, the exploding run last
    assert lines[-2] == "Best: norm=zscore lr=0.01 (ranked on the test set; use --val-split for an honest choice)"
    assert lines[-1] == "norm=none lr=0.01 scored 79.53% (test) but its loss exploded: not ranked"
    sick = [row("none", 0.01, 79.5, "exploding")]
    assert format_table(*rank(sick), ["norm"]).splitlines()[-2:] == [
        "Best: none (no run with a result is healthy; see the health column)",
        "norm=none lr=0.01 scored 79.50% (test) but its loss exploded: not ranked",
    ]


def test_the_json_summary_and_summary_json_name_the_best(tmp_path):
    from fmtui.sweep import write_summary

    ranked, by = rank(LECTURE)
    line = json.loads(summary_json(ranked, by, Path("sweep")))
    assert line["best"] == "run-zscore-0.01"
    assert line["not_ranked"] == "norm=none lr=0.01 scored 79.53% (test) but its loss exploded: not ranked"
    write_summary(tmp_path, LECTURE)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["best"] == "run-zscore-0.01" and saved["not_ranked"] == line["not_ranked"]
    assert saved["runs"][0]["run"] == "run-zscore-0.01"
    assert json.loads(summary_json(*rank(LECTURE[1:]), Path("s")))["not_ranked"] is None


def test_the_lecture_experiments_summary_says_the_same():
    assert experiment_choice(LECTURE) == (
        "; best: zscore lr 0.01, 79.12% test (ranked on the test set: no validation split); "
        "none lr 0.01 scored 79.53% (test) but its loss exploded: not ranked"
    )
    with_val = [dict(r, best_val_accuracy=r["best_test_accuracy"] - 1) for r in LECTURE]
    assert experiment_choice(with_val).startswith("; best: zscore lr 0.01, 78.12% validation -> 79.12% test; none")
    assert experiment_choice([row("none", 0.01, 79.5, "exploding")]).startswith("; best: none (no run is healthy); ")
    assert experiment_choice([]) == ""
