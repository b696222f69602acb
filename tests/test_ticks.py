"""Chart axes (fmtui.ticks): round, evenly spaced 1-2-5 ticks, compact labels, log decades; no UI needed."""

import math

import pytest

from fmtui.ticks import linear_axis, log_axis, nice_step, spans_decades, tick_label

pytestmark = pytest.mark.engine


def evenly_spaced(ticks: list[float]) -> bool:
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    return all(math.isclose(g, gaps[0], rel_tol=1e-9) for g in gaps)


def is_1_2_5(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(math.isclose(mantissa, m) for m in (1, 2, 5))


@pytest.mark.parametrize("span,most,step", [(10, 5, 2), (1, 5, 0.2), (0.2, 4, 0.05), (4690, 5, 1000), (7, 7, 1)])
def test_steps_are_one_two_or_five_times_a_power_of_ten(span, most, step):
    assert nice_step(span, most) == step


@pytest.mark.parametrize(
    "lo,hi",
    [(0.35, 1.25), (9.828, 10.027), (84.04, 86.2), (0, 1044393395889274752), (0, 12345), (-3.2, 7.7), (1e-6, 3e-6)],
)
def test_linear_ticks_are_round_even_and_cover_the_values(lo, hi):
    axis = linear_axis(lo, hi, most=5)
    step = axis.ticks[1] - axis.ticks[0]
    assert evenly_spaced(axis.ticks) and is_1_2_5(step) and 3 <= len(axis.ticks) <= 6
    assert axis.lo <= lo and axis.hi >= hi and axis.ticks[0] == axis.lo and axis.ticks[-1] == axis.hi
    assert all(math.isclose(t / step, round(t / step), abs_tol=1e-9) for t in axis.ticks)  # multiples of the step
    assert len(set(axis.labels)) == len(axis.labels) and max(map(len, axis.labels)) <= 7


def test_the_issues_axes_read_well():
    """The axes a new user found unreadable: a 22-character loss label, uneven accuracy ticks, fractional epochs."""
    assert linear_axis(0, 1044393395889274752).labels == ["0", "5e17", "1.0e18", "1.5e18"]
    assert linear_axis(84.04, 86.2).labels == ["84.0", "84.5", "85.0", "85.5", "86.0", "86.5"]
    assert linear_axis(1, 3, integer=True, extend=False).labels == ["1", "2", "3"]
    assert linear_axis(1, 100, most=5, integer=True, extend=False).labels == ["20", "40", "60", "80", "100"]
    assert linear_axis(0, 12345, most=3).labels == ["0", "5k", "10k", "15k"]


@pytest.mark.parametrize(
    "value,step,label",
    [
        (0, 0.5, "0"),
        (0.5, 0.5, "0.5"),
        (1.0, 0.5, "1.0"),
        (0.05, 0.05, "0.05"),
        (20, 20, "20"),
        (12000, 2000, "12k"),
        (1500, 500, "1.5k"),
        (2.5e6, 5e5, "2.5M"),
        (1e18, 2e17, "1.0e18"),
        (1.2e18, 2e17, "1.2e18"),
        (-4000, 2000, "-4k"),
        (1e-5, None, "1e-5"),
        (0.001, None, "0.001"),
        (2.3, None, "2.3"),
        (9.96e17, None, "1.0e18"),
        (1e3, None, "1k"),
        (1e9, None, "1e9"),
    ],
)
def test_labels_are_compact(value, step, label):
    assert tick_label(value, step) == label


def test_log_axes_tick_whole_decades_and_label_the_values():
    axis = log_axis(0.3, 1870)  # the lecture's no-normalization softmax: losses from 0.3 to thousands
    assert axis.log and axis.ticks == [-1, 0, 1, 2, 3, 4] and axis.labels == ["0.1", "1", "10", "100", "1k", "10k"]
    wide = log_axis(0.5, 1e18, most=6)  # lr 50: a loss of 1e18; every third decade
    assert wide.labels == ["1", "1k", "1M", "1e9", "1e12", "1e15", "1e18"] and evenly_spaced(wide.ticks)
    assert axis.position(100) == 2 and linear_axis(0, 1).position(0.5) == 0.5


def test_a_narrow_log_axis_still_labels_round_values():
    axis = log_axis(0.3, 2.5)
    assert axis.labels == ["0.5", "1", "2"] and axis.ticks == [math.log10(0.5), 0, math.log10(2)]
    assert log_axis(3, 4).labels == ["3.0", "3.2", "3.4", "3.6", "3.8", "4.0"]


def test_the_automatic_log_scale_starts_at_two_decades():
    assert spans_decades([2.3, 0.5, 230.0]) and not spans_decades([2.3, 0.5, 49.0])
    assert not spans_decades([]) and not spans_decades([0.0, -1.0, float("nan")])
    assert spans_decades([float("nan"), 0.01, 1.0, float("inf")])  # non-finite points are not counted


def test_a_flat_series_gets_an_axis_around_it():
    axis = linear_axis(2.0, 2.0)
    assert axis.lo < 2.0 < axis.hi and evenly_spaced(axis.ticks)
