"""The benchmark scripts run end to end on the tiny synthetic data (no timing is asserted, only their output)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import step_variants  # noqa: E402
import threads  # noqa: E402
import train_speed  # noqa: E402

pytestmark = pytest.mark.engine


def run_main(main, argv: list[str]) -> tuple[object, str]:
    lines: list[str] = []
    result = main(argv, log=lines.append)
    return result, "\n".join(lines)


def test_lecture_and_fmtui_alternate_and_report_ratios(tiny_data, tmp_path):
    out = tmp_path / "bench.json"
    bench, text = run_main(
        train_speed.main,
        [
            "--data-dir",
            str(tiny_data),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--repeats",
            "1",
            "--batch-sizes",
            "64,1024",
            "--threads",
            "1",
            "--json",
            str(out),
        ],
    )
    assert "not the official Fashion-MNIST files" in text  # synthetic data: extracted, not md5-verified
    assert train_speed.HEADER in text
    for bs in (64, 1024):
        assert [r.pipeline for r in bench.runs if r.batch_size == bs] == ["lecture", "fmtui"]
        assert f"batch {bs}: speed ratio fmtui/lecture per pair" in text
    assert text.count("-> median") == 2
    assert all(r.n_train == 600 and len(r.epoch_seconds) == 1 and 0 <= r.test_accuracy <= 100 for r in bench.runs)
    saved = json.loads(out.read_text())
    assert len(saved["runs"]) == 4 and saved["machine"]["threads"] == 1
    assert str(tiny_data) not in out.read_text()  # no local data path in the saved figures


def test_both_pipelines_start_from_the_same_weights(tiny_data):
    import torch

    from fmtui.engine import prepare

    p = prepare(train_speed.lecture_config(tiny_data, "cpu", 64, 1, 3, 1))
    torch.manual_seed(3)
    lecture = train_speed.lecture_model()
    assert all(torch.equal(a, b) for a, b in zip(p.model.state_dict().values(), lecture.state_dict().values()))


def test_pairs_alternate_their_order(tiny_data):
    bench = train_speed.Bench({})
    train_speed.compare(bench, tiny_data, "cpu", [64], 1, 2, 1, log=lambda _: None)
    assert [r.pipeline for r in bench.runs] == ["lecture", "fmtui", "fmtui", "lecture"]
    assert len(train_speed.pair_ratios(bench.runs, 64)) == 2


def test_help_time_reports_the_heavy_modules():
    h = train_speed.help_time(repeats=1)
    assert set(h) >= {"median_s", "python_startup_s", "heavy_modules_imported"}


def test_thread_table_covers_every_setting(tiny_data):
    points, text = run_main(
        threads.main,
        [
            "--data-dir",
            str(tiny_data),
            "--threads",
            "1,2",
            "--batch-sizes",
            "64",
            "--loads",
            "0,1",
            "--repeats",
            "1",
            "--quiet-wait",
            "0",
        ],
    )
    assert {(p.load, p.threads) for p in points} == {(0, 1), (0, 2), (1, 1), (1, 2)}
    assert "vs 1 thread" in text and "1.00x" in text


def test_spinners_are_always_stopped():
    with pytest.raises(RuntimeError):
        with threads.spinners(2) as pids:
            assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
            raise RuntimeError("boom")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_step_variants_reproduce_the_engine_bitwise(tiny_data):
    _, text = run_main(
        step_variants.main,
        [
            "--data-dir",
            str(tiny_data),
            "--batch-sizes",
            "64",
            "--repeats",
            "1",
            "--variants",
            "engine,index_select,prenorm,fused,no_first_bad",
        ],
    )
    rows = [line for line in text.splitlines() if line.startswith("batch 64")]
    assert len(rows) == 5 and all(line.endswith("bitwise") for line in rows)


def test_sweep_section_times_stacked_one_and_sequential(tiny_data):
    bench, text = run_main(
        train_speed.main,
        [
            "--data-dir",
            str(tiny_data),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--skip-compare",
            "--sweep",
            "--sweep-repeats",
            "2",
        ],
    )
    assert len(bench.sweep) == 2 and text.count("sweep of 8 runs, 1 epochs, repeat") == 2
    for r in bench.sweep:
        assert r["one_s"] > 0 and r["stacked_s"] > 0 and r["sequential_s"] > r["one_s"]
        assert r["stacked_over_one"] == pytest.approx(r["stacked_s"] / r["one_s"])
    assert "8-run sweep, median over 2 repeats: stacked" in text
