"""Training health (fmtui.health): the states and hints from hand-made epoch histories, then on small
synthetic runs (one made to explode, one that ends at chance, a healthy one) and in what they leave behind."""

import json
import math

import pytest

from fmtui import engine, health
from fmtui.config import RunConfig
from fmtui.errors import RunError
from fmtui.events import EpochEnd, Finished, Health
from fmtui.health import Inputs, assess
from fmtui.recorder import RunRecorder
from fmtui.report import closing_line, epoch_line, event_json, health_line, run_status, sweep_line
from fmtui.runfolder.read import read_run
from fmtui.sweep import Tally

pytestmark = pytest.mark.engine

RAW = Inputs("none", 72.94, 90.02)
"""Fashion-MNIST's training pixels as the model sees them without normalization."""
ZSCORE = Inputs("zscore", 0.0, 1.0)


def epochs(*rows: tuple[float, float]) -> list[EpochEnd]:
    """EpochEnds from (train loss, test accuracy) pairs, one per epoch."""
    n = len(rows)
    return [EpochEnd(i, n, loss, acc, loss, acc, 1.0, 0.1, 1000.0, 0.01) for i, (loss, acc) in enumerate(rows, 1)]


def judge(*rows, inputs=ZSCORE, lr=0.01, classes=10) -> Health:
    return assess(epochs(*rows), classes, lr, lambda: inputs)


def test_a_learning_run_is_ok_and_its_inputs_are_never_measured():
    def measure():
        raise AssertionError("a healthy run needs no input statistics")

    assert assess(epochs((0.79, 79.2), (0.52, 82.0), (0.47, 83.5)), 10, 0.01, measure) == Health("ok", "")
    assert assess([], 10, 0.01, measure).ok  # nothing to judge before the first epoch


def test_exploding_above_ten_times_chance_level():
    assert math.log(10) * health.EXPLODING_X_CHANCE == pytest.approx(23.03, abs=0.01)
    assert judge((23.0, 70.0)).ok
    found = judge((1878.65, 65.6), inputs=RAW)
    assert found.state == "exploding" and found.severity == "error"
    assert found.hint.startswith("train loss 1879 is 816x chance level (ln 10 = 2.30); inputs unnormalized")


def test_exploding_when_the_loss_rises_tenfold_above_an_earlier_epoch():
    assert judge((0.5, 80.0), (0.3, 82.0), (2.9, 75.0)).state == "unstable"  # 9.7x: not exploding
    found = judge((0.5, 80.0), (0.3, 82.0), (3.1, 75.0))
    assert found.state == "exploding"
    assert found.hint.startswith("train loss rose 10.3x, from 0.30 (epoch 2) to 3.10 (epoch 3)")


def test_at_chance_within_two_points_of_a_blind_guess():
    assert judge((2.30, 12.0)).state == "at chance" and judge((2.30, 8.0)).state == "at chance"
    assert judge((2.30, 12.1)).ok
    assert judge((0.69, 51.5), classes=2).state == "at chance" and judge((0.69, 53.0), classes=2).ok
    assert judge((2.30, 10.0)).severity == "warning"


def test_unstable_when_test_accuracy_falls_while_the_loss_does_not_settle():
    found = judge((0.60, 80.0), (0.58, 74.0))
    assert found.state == "unstable"
    assert found.hint.startswith("test accuracy fell 6.0 points in epoch 2 (80.00% -> 74.00%)")
    assert judge((0.60, 80.0), (0.53, 74.0)).ok  # the loss still falls by more than 10%: finding its way
    assert judge((0.60, 74.0), (0.58, 80.0)).ok  # a rise is learning
    assert judge((0.60, 80.0), (0.58, 75.5)).ok  # 4.5 points: within SWING_POINTS
    assert judge((0.60, 80.0), (0.58, 74.0), (0.57, 74.5)).state == "unstable"
    assert judge((0.60, 80.0), (0.58, 74.0), (0.57, 74.5), (0.56, 75.0)).ok  # calmed down since


def test_the_worst_state_wins():
    assert judge((100.0, 10.0)).state == "exploding"  # and at chance
    history = epochs((0.5, 80.0))
    history[0].test_loss = math.inf
    assert assess(history, 10, 0.01, lambda: ZSCORE).state == "diverged"
    found = assess(epochs((100.0, 10.0)), 10, 0.01, lambda: RAW, diverged="diverged at epoch 2, batch 7: boom")
    assert found.state == "diverged" and found.hint.startswith("diverged at epoch 2, batch 7: boom; inputs unnorm")


def test_hints_come_from_the_runs_own_facts():
    raw = judge((1878.65, 65.6), inputs=RAW).hint
    assert "inputs unnormalized (pixel mean 72.9, std 90.0) -> try --norm zscore" in raw
    high = judge((50.0, 60.0), lr=0.5).hint
    assert "learning rate 0.5 too high for this input scale (zscore: mean 0.00, std 1.00)" in high
    assert "try --lr 0.05 (10x lower), or fmtui lr-find" in high
    slow = judge((2.32, 10.9), lr=1e-5, inputs=Inputs("unit", 0.29, 0.35)).hint
    assert "the weights barely move at lr 1e-05 -> try a higher --lr" in slow
    dead = judge((1.2e22, 9.5), (2.37, 10.0), lr=5.0).hint  # exploded, then every ReLU died
    assert "exploded in epoch 1 (1.2e+22)" in dead and "barely" not in dead and "too high" in dead
    overshoot = judge((8.0, 11.0), lr=2.0).hint  # at chance, loss well above ln C: the steps overshoot
    assert "too high" in overshoot


def test_numbers_stay_short_at_any_scale():
    assert [health.number(x) for x in (0.4812, 10.65, 1878.65, 1.0443e18, math.nan)] == [
        "0.48",
        "10.7",
        "1879",
        "1.0e+18",
        "nan",
    ]


# --- what health looks like in the lines and files of a run ------------------------------------------------

SICK = Health("exploding", "train loss 1879 is 816x chance level (ln 10 = 2.30); inputs unnormalized -> try it")


def test_lines_say_the_state_and_the_hint():
    ok, sick = epochs((0.79, 79.2))[0], epochs((1878.65, 65.6))[0]
    sick.health = SICK
    assert epoch_line(ok).endswith("Time: 1.00s")
    assert epoch_line(sick).endswith("Time: 1.00s, Health: exploding")
    assert health_line(SICK) == f"Health: exploding: {SICK.hint}"
    done = Finished("completed", "finished 1 epoch in 1.0s of training", [sick], None, 1.0, None, SICK)
    assert closing_line(done, "runs/x") == (
        f"Done (exploding): Finished 1 epoch in 1.0s of training; {SICK.hint}. Run saved in runs/x"
    )
    diverged = Health("diverged", "diverged at epoch 1, batch 3: no; inputs unnormalized -> try --norm zscore")
    line = closing_line(Finished("diverged", "diverged at epoch 1, batch 3: no", [], None, 1.0, None, diverged), "r")
    assert line == "Diverged at epoch 1, batch 3: no; inputs unnormalized -> try --norm zscore. Run saved in r"
    assert json.loads(event_json(sick, None))["health"] == {"state": "exploding", "hint": SICK.hint}
    assert json.loads(event_json(done, None))["health"]["state"] == "exploding"


def test_a_sweep_line_names_an_unhealthy_run():
    row = dict(run="r", varying="norm=none", test_accuracy=77.4, test_loss=1524.0, seconds=21.8, status="completed")
    assert sweep_line(1, 8, {**row, "health": "ok"}).endswith("21.8s")
    assert sweep_line(1, 8, {**row, "health": "exploding"}).endswith("21.8s [exploding]")
    assert sweep_line(1, 8, {**row, "status": "diverged", "health": "diverged"}).endswith("21.8s [diverged]")
    assert sweep_line(1, 8, {**row, "status": "error", "message": "boom", "health": None}).endswith("[error: boom]")


# --- small synthetic runs -------------------------------------------------------------------------------------


def tiny(tiny_data, **kw) -> RunConfig:
    return RunConfig(data_dir=str(tiny_data), epochs=2, batch_size=32, lr=0.05, device="cpu").replace(**kw)


def train_recorded(cfg: RunConfig, tmp_path) -> tuple[list, dict]:
    """Train cfg, recording its run folder; return the events and the folder's summary.json."""
    recorder = RunRecorder(lambda c: tmp_path / "run")
    events = []
    for ev in engine.train(cfg):
        recorder.handle(ev)
        events.append(ev)
    return events, json.loads((tmp_path / "run" / "summary.json").read_text())


def test_a_healthy_run_is_ok_throughout(tiny_data, tmp_path):
    events, summary = train_recorded(tiny(tiny_data), tmp_path)
    assert [e.health for e in events if isinstance(e, EpochEnd)] == [Health(), Health()]
    assert events[-1].health == Health() and summary["health"] == {"state": "ok", "hint": ""}
    record = read_run(tmp_path / "run")
    assert record.health.ok and run_status(record) == "completed"


def test_a_run_made_to_explode_says_so_everywhere(tiny_data, tmp_path):
    """Softmax regression on raw pixels at lr 0.01, the lecture's case: the loss sits in the hundreds."""
    events, summary = train_recorded(tiny(tiny_data, model="softmax", norm="none", lr=0.01), tmp_path)
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.health.state for e in ends] == ["exploding", "exploding"]
    assert ends[-1].health == events[-1].health and events[-1].status == "completed"
    hint = events[-1].health.hint
    assert "x chance level (ln 10 = 2.30)" in hint and "inputs unnormalized (pixel mean 46.8, std 57.2)" in hint
    assert summary["health"] == {"state": "exploding", "hint": hint}
    record = read_run(tmp_path / "run")
    assert record.health == events[-1].health and run_status(record) == "exploding"


def test_a_run_whose_network_died_ends_at_chance(tiny_data, tmp_path):
    """Raw pixels at lr 50: the first steps blow the loss up to ~1e30 and kill every ReLU; then it guesses."""
    events, summary = train_recorded(tiny(tiny_data, norm="none", lr=50.0, epochs=3), tmp_path)
    states = [e.health.state for e in events if isinstance(e, EpochEnd)]
    assert states[0] == "exploding" and states[-1] == "at chance"
    assert summary["health"]["state"] == "at chance" and "exploded in epoch 1" in summary["health"]["hint"]
    assert "try --norm zscore" in summary["health"]["hint"]


def test_a_diverged_run_is_diverged_with_a_hint(tiny_data, tmp_path):
    cfg = tiny(tiny_data, norm="none", lr=100.0, hidden=(256, 256, 256), activation="gelu", epochs=3, batch_size=16)
    events, summary = train_recorded(cfg, tmp_path)
    done = events[-1]
    assert done.status == "diverged" and done.health.state == "diverged"
    assert done.health.hint.startswith(done.message + "; inputs unnormalized (pixel mean 46.8")
    assert summary["status"] == "diverged" and summary["health"] == done.health.to_dict()


def test_a_sweep_run_keeps_its_health(tiny_data, tmp_path):
    cfg = tiny(tiny_data)
    tally = Tally([cfg])
    run = engine.train(cfg)
    tally.add(0, tmp_path, next(run))  # Started
    run.close()
    run = tally.add(0, tmp_path, Finished("completed", "m", epochs((100.0, 60.0)), None, 1.0, None, SICK))
    assert run.health == SICK and run.summary_row([])["health"] == "exploding"


def test_summary_health_of_the_wrong_type_is_named(tmp_path, tiny_data):
    train_recorded(tiny(tiny_data, epochs=1), tmp_path)
    summary = tmp_path / "run" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "health": "exploding"}))
    with pytest.raises(RunError, match=r"health is a string \('exploding'\), expected an object"):
        read_run(tmp_path / "run")
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "health": {"state": 3}}))
    assert read_run(tmp_path / "run").health.ok  # a state that is no text: nothing to show
