"""Stacked or sequential: the measured rule, what a sweep does by default, and the flags that override it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fmtui import stacking
from fmtui.config import RunConfig
from fmtui.sweep import lecture_experiment

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def lecture(batch_size: int, model: str = "softmax", device: str = "cpu") -> list[RunConfig]:
    """The lecture's 8 runs (4 normalizations x 2 learning rates) with this model, batch size and device."""
    return [c.replace(model=model) for c in lecture_experiment(RunConfig(batch_size=batch_size, device=device))]


@pytest.mark.engine
@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_on_this_cpu_the_lecture_sweep_at_batch_1024_trains_one_run_after_another(model):
    """Measured (BENCHMARKS.md, "Stacked or sequential"): stacked was slower than sequential there."""
    assert not stacking.pays("cpu", 1024, model, 8)
    assert stacking.groups(lecture(1024, model), None, device_type=lambda _: "cpu") == [[i] for i in range(8)]


@pytest.mark.engine
@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_every_batch_on_a_gpu_trains_stacked_and_on_a_cpu_only_small_softmax_batches(model):
    assert all(stacking.pays("cuda", b, model, 8) for b in (32, 64, 1024, 4096))
    assert stacking.groups(lecture(1024, model), None, device_type=lambda _: "cuda") == [list(range(8))]
    on_cpu = stacking.groups(lecture(64, model), None, device_type=lambda _: "cpu")
    assert on_cpu == ([list(range(8))] if model == "softmax" else [[i] for i in range(8)])  # measured
    assert not stacking.pays("cpu", 128, model, 8)


@pytest.mark.engine
def test_the_flags_override_the_rule_and_what_cannot_stack_never_does():
    assert stacking.groups(lecture(1024), True, device_type=lambda _: "cpu") == [list(range(8))]
    assert stacking.groups(lecture(32), False, device_type=lambda _: "cpu") == [[i] for i in range(8)]
    cnn = lecture(64, "cnn")
    assert stacking.groups(cnn, True, device_type=lambda _: "cuda") == [[i] for i in range(8)]
    assert not stacking.pays("cuda", 64, "softmax", 1) and not stacking.pays("mps", 64, "softmax", 8)


@pytest.mark.cli
def test_the_sweep_command_follows_the_rule_unless_told(tiny_data, tmp_path):
    from click.testing import CliRunner

    from fmtui.cli import cli

    def header(*extra) -> str:
        args = ["--no-ui", "sweep", "--data-dir", str(tiny_data), "--model", "softmax", "--device", "cpu"]
        args += [
            "--lr",
            "0.1,0.2",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / str(len(list(tmp_path.iterdir())))),
            *extra,
        ]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()[0]

    assert "stacked" not in header("--batch-size", "1024")
    assert "2 of them train together as stacked models" in header("--batch-size", "1024", "--stacked")
    assert "2 of them train together as stacked models" in header("--batch-size", "64")
    assert "stacked" not in header("--batch-size", "64", "--sequential")


@pytest.mark.engine
def test_the_stacking_benchmark_reports_each_point_and_the_rules_choice(tiny_data, tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    import stacking as bench

    out = tmp_path / "stacking.json"
    args = ["--data-dir", str(tiny_data), "--models", "softmax", "--batch-sizes", "32,1024", "--repeats", "2"]
    result = bench.main([*args, "--json", str(out)], log=lambda _: None)
    assert [(p["model"], p["batch_size"], p["rule_stacks"]) for p in result["points"]] == [
        ("softmax", 32, True),
        ("softmax", 1024, False),
    ]
    for point in result["points"]:
        assert len(point["repeats"]) == 2 and point["rule_right"] == (point["rule_stacks"] == (point["ratio"] < 1))
    assert out.is_file() and "| softmax | 1024 |" in bench.table(result["points"])
