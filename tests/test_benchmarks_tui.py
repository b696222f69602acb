"""The benchmark's TUI section (the app tier): the real app trains the same run as the headless engine."""

import pytest
from test_benchmarks import run_main, train_speed

pytestmark = pytest.mark.app


def test_tui_section_trains_the_same_run_as_headless(tiny_data):
    bench, text = run_main(
        train_speed.main,
        [
            "--data-dir",
            str(tiny_data),
            "--device",
            "cpu",
            "--epochs",
            "2",
            "--skip-compare",
            "--tui",
            "--tui-repeats",
            "1",
            "--threads",
            "1",
        ],
    )
    (result,) = bench.tui
    assert len(result["tui"]["epoch_seconds"]) == len(result["headless"]["epoch_seconds"]) == 2
    assert result["tui"]["test_accuracy"] == result["headless"]["test_accuracy"]  # same seed, same data, same steps
    assert "TUI/headless" in text and "-> median" in text and "ratio_after_epoch_1" in result
