"""The learning-rate finder (fmtui.lrfind): the lr schedule, the smoothing, the suggestion on made-up curves, and
the search itself on small synthetic data."""

import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch

from fmtui import engine, lrfind
from fmtui.config import RunConfig
from fmtui.lrfind import Curve, Finished, Progress, Started, lr_at, lr_find, suggest

pytestmark = pytest.mark.engine


def test_the_learning_rate_grows_exponentially_from_start_to_end():
    lrs = [lr_at(i, 300) for i in range(300)]
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    ratios = {round(b / a, 9) for a, b in zip(lrs, lrs[1:])}
    assert len(ratios) == 1 and ratios.pop() == pytest.approx(10 ** (8 / 299))


def test_the_smoothed_loss_is_a_bias_corrected_moving_average():
    curve = Curve()
    for loss in (4.0, 4.0, 4.0):
        curve.add(1e-3, loss)
    assert curve.smoothed == pytest.approx([4.0, 4.0, 4.0])  # no pull towards the average's zero start
    curve.add(1e-3, 14.0)
    assert curve.smoothed[-1] == pytest.approx(4.0 + (14.0 - 4.0) * 0.1 / (1 - 0.9**4))
    assert curve.losses == [4.0, 4.0, 4.0, 14.0] and curve.best == 4.0


def test_the_search_blows_up_at_four_times_the_minimum_or_a_non_finite_loss():
    curve = Curve()
    for _ in range(lrfind.SKIP_START + 1):
        curve.add(1e-3, 1.0)
    assert not curve.blown_up()
    while curve.smoothed[-1] <= 4.0:
        assert not curve.blown_up()
        curve.add(1e-2, 100.0)
    assert curve.blown_up()
    nan = Curve()
    nan.add(1e-3, math.nan)
    assert nan.blown_up()


def made_up(center: float = -2.0, n: int = 300) -> tuple[list[float], list[float]]:
    """A smooth curve: flat near 2.2, its log falling fastest at lr 10**center, flat near 0.3, then blowing up."""
    lrs = [lr_at(i, n) for i in range(n)]
    losses = [0.3 * math.exp(2.0 / (1 + math.exp(3 * (math.log10(lr) - center)))) + max(0.0, math.log10(lr) - center - 1.5) ** 3
              for lr in lrs]  # fmt: skip
    return lrs, losses


def test_the_suggestion_is_the_steepest_relative_fall_and_the_minimum_is_beside_it():
    lrs, losses = made_up(-2.0)
    suggested, at_min = suggest(lrs, losses)
    assert suggested == pytest.approx(1e-2, rel=0.1)
    low = min(range(len(losses)), key=losses.__getitem__)
    assert at_min == lrs[low] and at_min > suggested
    assert suggest(*made_up(-5.0))[0] == pytest.approx(1e-5, rel=0.1)  # it follows the curve
    assert suggest(lrs, [100 * v for v in losses]) == (suggested, at_min)  # a loss 100x higher falls alike


def test_a_noisy_start_is_left_out():
    """The first SKIP_START points of the moving average have seen a few batches: a fall among them (here from 9
    to 2.3 in ten steps, far steeper than the curve's own) must not be the suggestion."""
    lrs, losses = made_up(-2.0)
    noisy = [9.0, 3.0, 7.0, 2.6, 6.0, 2.5, 5.0, 2.4, 4.0, 2.3] + losses[lrfind.SKIP_START :]
    assert suggest(lrs, noisy)[0] == pytest.approx(1e-2, rel=0.1)


def even_fall(noise_seed: int) -> tuple[list[float], list[float]]:
    """Raw pixels' kind of curve: from a loss of 100 at lr 1e-7 down by 30 a decade to 25 at 1e-4.5, then up,
    with 5% batch noise through a moving average: a fall even in loss, steeper and steeper in log(loss)."""
    rng, curve = random.Random(noise_seed), Curve()
    for i in range(130):
        x = math.log10(lr_at(i, lrfind.STEPS))
        loss = 100 - 30 * (x + 7) if x < -4.5 else 25 * 10 ** (2 * (x + 4.5))
        curve.add(lr_at(i, lrfind.STEPS), loss * rng.uniform(0.95, 1.05))
    return curve.lrs, curve.smoothed


def test_batch_noise_on_an_even_fall_does_not_decide_the_suggestion():
    """Where the loss falls by the same amount every decade, the steepest absolute fall is wherever the noise
    puts it; the steepest fall of log(loss) is near the end of the fall, whatever the noise."""
    picks = [suggest(*even_fall(seed))[0] for seed in range(8)]
    assert max(picks) / min(picks) < 2 and all(1e-5 < p < 10**-4.5 for p in picks)


def test_no_suggestion_from_a_curve_that_is_too_short_or_never_falls():
    lrs = [lr_at(i, 300) for i in range(300)]
    assert suggest(lrs[:5], [2.3] * 5) == (None, None)
    assert suggest(lrs, [2.3 + i * 1e-3 for i in range(300)])[0] is None
    curve = [2.3] * 50 + [math.nan] + [0.1] * 249  # only the finite start counts, not what follows a NaN
    assert suggest(lrs, curve) == (None, lrs[lrfind.SKIP_START])


def tiny(tiny_data, **kw) -> RunConfig:
    return RunConfig(data_dir=str(tiny_data), batch_size=32, device="cpu").replace(**kw)


def test_a_search_on_fresh_weights_blows_up_and_suggests(tiny_data, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    events = list(lr_find(tiny(tiny_data), progress_interval=0.0))
    assert isinstance(events[0], Started) and isinstance(events[-1], Finished)
    assert all(isinstance(e, Progress) for e in events[1:-1]) and len(events) > 3
    done = events[-1]
    assert done.status == "completed" and "blew up" in done.message and len(done.lrs) < lrfind.STEPS
    assert done.lrs == [lr_at(i, lrfind.STEPS) for i in range(len(done.lrs))]
    assert sum((e.lrs for e in events[1:-1]), []) == done.lrs  # the progress events carry every point once
    assert sum((e.smoothed for e in events[1:-1]), []) == done.smoothed
    assert 1e-4 < done.suggested_lr < done.min_loss_lr < 10 and done.min_over_10 == done.min_loss_lr / 10
    assert list(work.iterdir()) == [] and not (tmp_path / "runs").exists()  # no run folder, no file: it only reports


def test_the_search_starts_from_the_weights_a_run_starts_from_and_leaves_them(tiny_data):
    cfg = tiny(tiny_data, model="softmax")
    first = engine.prepare(cfg).model.state_dict()
    a = list(lr_find(cfg))[-1]
    b = list(lr_find(cfg))[-1]
    assert a.losses == b.losses  # seeded: the same fresh weights and batches every time
    assert a.losses[0] == pytest.approx(first_loss(cfg, first), rel=1e-5)
    again = engine.prepare(cfg).model.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)


def first_loss(cfg: RunConfig, state: dict) -> float:
    """The loss of the first batch the finder draws, under the run's initial weights."""
    from fmtui.data import normalize

    p = engine.prepare(cfg)
    p.model.load_state_dict(state)
    idx = next(lrfind._batches(p))
    out = p.model(normalize(p.splits.x_train[idx], p.stats))
    return torch.nn.functional.cross_entropy(out, p.splits.y_train[idx]).item()


def test_stopping_between_steps_keeps_the_curve_so_far(tiny_data):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 40

    done = list(lr_find(tiny(tiny_data), should_stop=stop))[-1]
    assert done.status == "stopped" and len(done.lrs) == 40 and done.message.startswith("stopped after 40 steps")


def test_the_range_must_grow(tiny_data):
    with pytest.raises(ValueError, match="must grow"):
        list(lr_find(tiny(tiny_data), start_lr=1.0, end_lr=0.1))


def test_the_picks_benchmark_runs_end_to_end_on_tiny_data(tiny_data, tmp_path, capsys):
    """benchmarks/lr_finder_picks.py (BENCHMARKS.md's finder table): its rows, table and checks, on tiny data."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import lr_finder_picks

    out = tmp_path / "picks.json"
    code = lr_finder_picks.main(["--data-dir", str(tiny_data), "--seeds", "0,1", "--epochs", "1", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert code in (0, 1) and len(saved["rows"]) == 6 and code == (0 if all(c["ok"] for c in saved["checks"]) else 1)
    row = saved["rows"][0]
    assert row["config"] == "softmax, raw pixels (--norm none)" and row["lr_0.01"] == 0.01
    assert row["suggested"] == float(f"{row['suggested']:.2g}") and 0 <= row["suggested_acc"] <= 100
    table = capsys.readouterr().out
    assert table.startswith("| config | seed | suggested | 1 epochs |") and "within" in table
