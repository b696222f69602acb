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


def judge(*rows, inputs=ZSCORE, lr=0.01, classes=10, initial=None) -> Health:
    return assess(epochs(*rows), classes, lr, lambda: inputs, initial_loss=initial)


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


def test_unstable_when_test_accuracy_falls_by_several_points_whatever_the_loss_does():
    found = judge((0.60, 80.0), (0.58, 74.0))
    assert found.state == "unstable"
    assert found.hint.startswith(
        "test accuracy fell 6.0 points in epoch 2 (80.00% -> 74.00%) while the train loss fell"
    )
    assert judge((0.60, 80.0), (0.53, 74.0)).state == "unstable"  # a loss falling fast does not excuse it
    assert "did not fall (0.60 -> 0.65)" in judge((0.60, 80.0), (0.65, 74.0)).hint
    assert judge((0.60, 74.0), (0.58, 80.0)).ok  # a rise is learning
    assert judge((0.60, 80.0), (0.58, 75.5)).ok  # 4.5 points: within SWING_POINTS
    assert judge((0.60, 80.0), (0.58, 74.0), (0.57, 74.5)).state == "unstable"
    assert judge((0.60, 80.0), (0.58, 74.0), (0.57, 74.5), (0.56, 75.0)).ok  # calmed down since


def test_a_fall_over_two_epochs_counts():
    found = judge((0.60, 80.0), (0.58, 77.0), (0.57, 74.5))  # 3 then 2.5 points: 5.5 below epoch 1
    assert found.state == "unstable" and found.hint.startswith("test accuracy fell 5.5 points from epoch 1 to 3")


def test_the_lecture_mlp_at_lr_1_is_unstable():
    """The issue's run (27.4% -> 17.8% -> 21.2%, train loss falling 10%) and the same run measured here on a CPU
    (20.77% -> 17.48% -> 19.22%): a fall of 3.3 points is a third of the 10.8 it had above chance."""
    issue = judge((2.25, 27.4), (2.02, 17.8), (1.95, 21.2), lr=1.0)
    assert issue.state == "unstable" and "fell 9.6 points in epoch 2 (27.40% -> 17.80%)" in issue.hint
    assert "-> try --lr 0.1 (10x lower)" in issue.hint
    here = judge((2.3534, 20.77), (2.1282, 17.48), (2.0764, 19.22), lr=1.0)
    assert here.state == "unstable" and "fell 3.3 points in epoch 2" in here.hint
    assert judge((2.2, 20.77), (2.1, 18.5)).ok  # 2.3 points: within a quarter of 10.8
    assert judge((2.2, 15.0), (2.1, 13.5)).ok  # 1.5 points: below CHANCE_POINTS however little it had


def test_a_high_loss_below_its_start_is_the_inputs_scale_not_an_explosion():
    """Raw pixels at lr 1e-6, batch 64 (measured): the first batch's loss is ~100, the first epoch's mean 26.5
    (11x chance level) and falling. The lecture's lr 0.01 run: 1879 against a start near 100 stays exploding."""
    found = judge((26.46, 45.66), inputs=RAW, lr=1e-6, initial=101.2)
    assert found.state == "input scale" and found.severity == "information" and not found.ok
    assert found.hint == (
        "train loss 26.5 is 11.5x chance level (ln 10 = 2.30) but below its 101 before the first step: the initial "
        "weights' answers on these inputs are confidently wrong, and it is coming down; inputs unnormalized (pixel "
        "mean 72.9, std 90.0) -> --norm zscore starts near 2.30"
    )
    assert judge((26.46, 45.66), (13.46, 54.16), inputs=RAW, initial=101.2).ok  # below 10x chance: nothing to say
    lecture = judge((1878.65, 65.6), inputs=RAW, initial=101.2)
    assert lecture.state == "exploding" and lecture.hint.startswith(
        "train loss 1879 is 816x chance level (ln 10 = 2.30), above its 101 before the first step; inputs unnorm"
    )
    assert judge((26.46, 45.66), inputs=RAW).state == "exploding"  # the start unknown (a resumed run): as before
    assert judge((26.46, 45.66), (30.0, 30.0), inputs=RAW, initial=101.2).state == "unstable"  # worse states win
    assert "exploded" not in judge((26.46, 10.5), inputs=RAW, initial=101.2).hint  # at chance, not after a blow-up


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


def test_a_raw_pixel_run_at_a_tiny_lr_starts_as_input_scale_then_ok(tiny_data, tmp_path):
    """The engine hands health the first batch's loss: softmax on raw pixels at lr 1e-5 ends epoch 1 far above
    chance level (~32) but below where it began (~60), then learns; at lr 0.01 it climbs above its start."""
    events, summary = train_recorded(tiny(tiny_data, model="softmax", norm="none", lr=1e-5, batch_size=64), tmp_path)
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.health.state for e in ends] == ["input scale", "ok"]
    assert "before the first step" in ends[0].health.hint and "-> --norm zscore starts near 2.30" in ends[0].health.hint
    assert summary["health"] == {"state": "ok", "hint": ""}
    hot = [e for e in engine.train(tiny(tiny_data, model="softmax", norm="none", lr=0.01)) if isinstance(e, EpochEnd)]
    assert hot[0].health.state == "exploding" and "before the first step; inputs unnormalized" in hot[0].health.hint


# --- on the real Fashion-MNIST ------------------------------------------------------------------------------


def real(real_data, **kw) -> RunConfig:
    return RunConfig(data_dir=str(real_data), device="cpu").replace(**kw)


@pytest.mark.real_data
def test_real_lecture_mlp_at_lr_1_is_not_ok(real_data):
    """The issue's run: the lecture's MLP at lr 1, batch 64, 3 epochs (here 20.8% -> 17.5% -> 19.2% test)."""
    done = list(engine.train(real(real_data, lr=1.0, epochs=3)))[-1]
    assert done.status == "completed" and done.health.state in ("unstable", "at chance"), done.health
    assert "-> try --lr 0.1 (10x lower)" in done.health.hint


@pytest.mark.real_data
def test_real_raw_pixels_at_lr_1e6_are_input_scale_and_at_lr_001_exploding(real_data):
    """Softmax on raw pixels, batch 64, one epoch: at lr 1e-6 the mean train loss (26.5, 11x chance) is the inputs'
    scale at initialisation; at the lecture's lr 0.01 (~1870, 812x) it is an explosion."""
    base = real(real_data, model="softmax", norm="none", epochs=1)
    slow, hot = (list(engine.train(base.replace(lr=lr)))[-1].health for lr in (1e-6, 0.01))
    assert slow.state == "input scale" and "inputs unnormalized (pixel mean 72.9, std 90.0)" in slow.hint
    assert hot.state == "exploding" and "before the first step" in hot.hint
