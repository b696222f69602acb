"""Chart axes that read well at any scale: round 1-2-5 ticks, compact labels (12k, 1.0e18, 0.5), log decades.

Pure functions of the numbers (no torch, no textual, no plotext), so that every chart draws its axes the
same way and the tests can pin them down. A log axis is drawn by the charts as log10 of the values on a
linear axis; `Axis.ticks` are then positions in log10 and `Axis.labels` name the values themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

STEPS = (1, 2, 5)
"""Tick spacings within a decade: 1, 2 and 5 times a power of ten are the steps people read at a glance."""
DECADE_STEPS = (1, 2, 3, 5, 10, 20, 50, 100)
"""Decades between two ticks of a log axis: every third one gives 1, 1k, 1M, 1e9."""
LOG_DECADES = 2.0
"""A series spanning this many decades or more (max / min >= 100) gets a log axis: on a linear one, its
small values (the end of a loss curve that started in the thousands) are a flat line on the axis."""


def nice_step(span: float, most: int) -> float:
    """The smallest 1-2-5 step that cuts span into at most `most` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    most = max(most, 1)
    exponent = math.floor(math.log10(span / most))
    for power in (exponent, exponent + 1):
        for mantissa in STEPS:
            step = _decimal(mantissa, power)
            if span / step <= most + 1e-9:
                return step
    return _decimal(1, exponent + 2)


def _decimal(mantissa: float, power: int) -> float:
    """mantissa * 10**power as the float nearest the decimal number (0.1 * 3 is 0.30000000000000004)."""
    return float(f"{mantissa}e{power}")


def linear_ticks(lo: float, hi: float, step: float) -> list[float]:
    """The multiples of step from lo to hi (both included, within rounding), each the nearest float to its
    decimal value."""
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    mantissa, power = _split(step)
    return [_decimal(k * mantissa, power) for k in range(first, last + 1)]


def _split(step: float) -> tuple[int, int]:
    """A 1-2-5 step as (integer mantissa, power of ten): 0.05 -> (5, -2)."""
    power = math.floor(math.log10(step) + 1e-9)
    return round(step / 10**power), power


def tick_label(value: float, step: float | None = None) -> str:
    """A compact label: as many decimals as the axis' step needs; k and M for thousands and millions;
    scientific notation from a billion up and below 0.001 (1.0e18, 5e-4). Never wider than about 7 columns."""
    if value == 0:
        return "0"
    size = abs(value)
    if size >= 1e9 or size < 1e-3:
        power = math.floor(math.log10(size) + 1e-9)
        mantissa = value / 10**power
        if abs(mantissa) >= 9.95:  # 9.96e17 rounds up to 10.0e17: say 1.0e18
            mantissa, power = mantissa / 10, power + 1
        decimals = _decimals(step / 10**power) if step else (0 if _whole(mantissa) else 1)
        return f"{mantissa:.{min(decimals, 2)}f}e{power}"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if size >= scale:
            decimals = _decimals(step / scale) if step else (0 if _whole(value / scale) else 1)
            return f"{value / scale:.{min(decimals, 2)}f}{unit}"
    decimals = _decimals(step) if step else _shortest(value)
    return f"{value:.{decimals}f}"


def _decimals(step: float) -> int:
    """Decimals that tell multiples of step apart: 0.5 -> 1, 0.05 -> 2, 20 -> 0."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _whole(x: float) -> bool:
    return abs(x - round(x)) < 1e-9 * max(1.0, abs(x))


def _shortest(value: float) -> int:
    """Decimals of the shortest exact-looking form of a value without a step (0.001 -> 3, 20 -> 0)."""
    for decimals in range(0, 6):
        if abs(round(value, decimals) - value) < 1e-9 * max(1.0, abs(value)):
            return decimals
    return 6


@dataclass(frozen=True)
class Axis:
    """One chart axis: limits and ticks (in plot positions: log10 of the values on a log axis) and labels."""

    lo: float
    hi: float
    ticks: list[float]
    labels: list[str]
    log: bool = False

    def position(self, value: float) -> float:
        """Where a value is drawn on this axis (log10 of it on a log axis)."""
        return math.log10(value) if self.log else value


def spans_decades(values: Iterable[float], decades: float = LOG_DECADES) -> bool:
    """Whether positive, finite values span `decades` decades or more (the automatic log scale's rule)."""
    good = [v for v in values if math.isfinite(v) and v > 0]
    return bool(good) and max(good) / min(good) >= 10**decades


def linear_axis(lo: float, hi: float, most: int = 5, *, integer: bool = False, extend: bool = True) -> Axis:
    """An axis over [lo, hi] with at most `most` intervals between round ticks. extend: the limits grow to the
    ticks just outside, so both ends are labelled; integer: steps of at least 1 (epochs, steps)."""
    lo, hi = (lo, hi) if lo <= hi else (hi, lo)
    if hi - lo < 1e-12 * max(1.0, abs(hi)):  # a flat series: a span around it
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = max(nice_step(hi - lo, most), 1.0) if integer else nice_step(hi - lo, most)
    while extend:  # the grown limits may hold one interval more than most: take the next step then
        mantissa, power = _split(step)
        low, high = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if high - low <= most:
            lo, hi = _decimal(low * mantissa, power), _decimal(high * mantissa, power)
            break
        step = nice_step(step * (1 + 1e-6), 1)
    ticks = linear_ticks(lo, hi, step)
    return Axis(lo, hi, ticks, [tick_label(t, step) for t in ticks])


def log_axis(lo: float, hi: float, most: int = 5) -> Axis:
    """A log10 axis over positive [lo, hi]: from two decades on, limits and ticks on whole decades (every
    second, third... when there are many); below, 1-2-5 values within [lo, hi], so that several are labelled."""
    lo, hi = max(min(lo, hi), 1e-300), max(lo, hi, 1e-300)
    if hi <= lo * (1 + 1e-9):  # one value (a single run): a span around it, not a width of zero
        lo, hi = lo / 2, hi * 2
    first, last = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    if hi / lo >= 10**LOG_DECADES:
        every = next(n for n in DECADE_STEPS if last // n - -(-first // n) <= max(most, 1))
        powers = [p for p in range(first, last + 1) if p % every == 0]
        return Axis(first, last, [float(p) for p in powers], [tick_label(_decimal(1, p)) for p in powers], log=True)
    values = [_decimal(m, p) for p in range(first, last + 1) for m in STEPS]
    values = [v for v in values if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
    while len(values) > most + 1:  # thin out, keeping the powers of ten
        values = [v for i, v in enumerate(values) if i % 2 == 0 or _whole(math.log10(v))]
        if len(values) > most + 1:
            values = values[::2]
    if len(values) < 2:  # a narrow span: round linear ticks, drawn at their log positions
        inner = linear_axis(lo, hi, most, extend=False)
        pairs = [(t, label) for t, label in zip(inner.ticks, inner.labels) if t > 0]
        return Axis(math.log10(lo), math.log10(hi), [math.log10(t) for t, _ in pairs], [lb for _, lb in pairs], True)
    return Axis(math.log10(lo), math.log10(hi), [math.log10(v) for v in values], [tick_label(v) for v in values], True)
