"""A search space written the way sweeps write their lists: `--norm none,unit,zscore` (values to choose from),
`--lr 1e-5..1` (a range), `--epochs 5` (fixed). No Optuna here: a Dimension builds its distribution when asked.

Ranges of lr, weight decay, hidden sizes and batch size are sampled on a log scale (a factor matters, not a
difference: 1e-4 to 1e-3 is as big a step as 1e-2 to 1e-1); others uniformly. Hidden sizes take a range per
layer: `--hidden 64..1024` is one layer, `--hidden 64..1024,32..256` two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fmtui.config import OPTIONS, ConfigError, RunConfig, cli_name, format_value, parse_field

RANGE = ".."
LOG_SCALE = frozenset({"lr", "weight_decay", "hidden", "batch_size"})
"""Fields whose ranges are sampled on a log scale."""
FIXED_ONLY = {
    "dataset": "trials of one study must learn the same task",
    "val_split": "every trial is ranked on the same validation split",
    "epochs": "pruning compares trials epoch by epoch, so all train the same epochs",
    "device": "it says where a worker trains, not what it trains",
    "threads": "it says how a worker trains, not what it trains",
    "graphs": "it says how a worker trains, not what it trains",
}
"""Options a study cannot search, and why (one value each)."""
WORKER_LOCAL = ("device", "threads", "graphs", "data_dir")
"""Options each worker may set for itself (its GPU, its cores, its data folder): not part of the study."""
DEFAULT_VAL_SPLIT = 0.1
"""Trials are ranked on this much of the training split unless --val-split says otherwise (never on test)."""


@dataclass(frozen=True)
class Dimension:
    """One searched value: a choice among typed values, or a range of numbers."""

    field: str
    """The RunConfig field it sets."""
    param: str
    """Its name in the study (a hidden layer of several: hidden1, hidden2, ...)."""
    choices: tuple[str, ...] = ()
    """For a choice: the values as users type them (format_value), in the order given."""
    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    log: bool = False

    @property
    def is_range(self) -> bool:
        return not self.choices

    def text(self) -> str:
        """As typed: `none,unit` or `1e-05..1`."""
        if self.choices:
            return OPTIONS[self.field].sep.join(self.choices)
        return f"{_number(self.low)}{RANGE}{_number(self.high)}"

    def distribution(self) -> Any:
        """Optuna's distribution of this dimension (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices:
            return CategoricalDistribution(list(self.choices))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Space:
    """The fixed part of every trial's config and the dimensions searched on top of it."""

    base: RunConfig
    dims: tuple[Dimension, ...]
    hidden: tuple[int | str, ...] | None = None
    """Hidden sizes built from ranges: per layer a fixed size or the param of its range (None: no ranges)."""

    def config(self, params: dict[str, Any]) -> RunConfig:
        """The trial's config from its parameters (by param name); ConfigError for a bad combination."""
        fields: dict[str, Any] = {}
        for dim in self.dims:
            if dim.field == "hidden" and self.hidden is not None:
                continue
            value = params[dim.param]
            fields[dim.field] = parse_field(dim.field, value) if dim.choices else _cast(dim, value)
        if self.hidden is not None:
            fields["hidden"] = tuple(int(params[p]) if isinstance(p, str) else p for p in self.hidden)
        return self.base.replace(**fields).validate()

    def suggest(self, trial: Any) -> RunConfig:
        """Sample the trial's parameters (an Optuna Trial) and return its config."""
        params = {}
        for dim in self.dims:
            if dim.choices:
                params[dim.param] = trial.suggest_categorical(dim.param, list(dim.choices))
            elif dim.integer:
                params[dim.param] = trial.suggest_int(dim.param, int(dim.low), int(dim.high), log=dim.log)
            else:
                params[dim.param] = trial.suggest_float(dim.param, dim.low, dim.high, log=dim.log)
        return self.config(params)

    def grid(self) -> dict[str, list[str]]:
        """Every combination, for the grid sampler; ConfigError when a dimension is a range."""
        ranges = [d for d in self.dims if d.is_range]
        if ranges:
            d = ranges[0]
            raise ConfigError(f"the grid sampler needs lists, not ranges ({d.text()}); use tpe or random", d.field)
        return {d.param: list(d.choices) for d in self.dims}

    def grid_size(self) -> int:
        size = 1
        for values in self.grid().values():
            size *= len(values)
        return size

    def searched(self) -> dict[str, str]:
        """Each searched option as typed, in the options' order: {"hidden": "64..1024,128", "lr": "1e-05..1"}."""
        out = {}
        for d in self.dims:
            if d.field != "hidden" or self.hidden is None:
                out[d.field] = d.text()
            elif "hidden" not in out:
                by_param = {e.param: e.text() for e in self.dims if e.field == "hidden"}
                out["hidden"] = ",".join(by_param[p] if isinstance(p, str) else str(p) for p in self.hidden)
        return out

    def definition(self) -> dict[str, Any]:
        """What makes the study the study (JSON): its searched options and its fixed ones, as typed. Options
        each worker chooses for itself (WORKER_LOCAL) are not part of it."""
        fixed = {f: format_value(getattr(self.base, f)) for f in OPTIONS if f not in WORKER_LOCAL}
        searched = self.searched()
        return {"search": searched, "fixed": {f: v for f, v in fixed.items() if f not in searched}}

    def describe(self) -> str:
        """`--lr 1e-05..1 (log) --hidden 64..1024 (log) --norm none,unit`."""
        parts = []
        for field, text in self.searched().items():
            log = field in LOG_SCALE and RANGE in text
            parts.append(f"--{cli_name(field)} {text}{' (log)' if log else ''}")
        return " ".join(parts) or "nothing (every option has one value)"


def parse_space(texts: dict[str, list[str]], base: RunConfig) -> Space:
    """The space of the options as typed (field -> its items: ['none', 'unit'] or ['1e-5..1']) over base (the
    defaults and worker-local options): one item is a fixed value, several a choice, `a..b` a range."""
    fixed: dict[str, Any] = {}
    dims: list[Dimension] = []
    hidden: tuple[int | str, ...] | None = None
    for field in sorted(texts, key=list(OPTIONS).index):  # the options' own order, however they were given
        items = texts[field]
        if len(items) == 1 and RANGE not in items[0]:
            fixed[field] = parse_field(field, items[0])
            continue
        if field in FIXED_ONLY:
            raise ConfigError(f"give one value: {FIXED_ONLY[field]}", field)
        if len(items) > 1:
            dims.append(_choice(field, items))
        elif field == "hidden":
            hidden, layers = _hidden_ranges(items[0])
            dims.extend(layers)
        else:
            dims.append(_range(field, field, items[0]))
    if "val_split" not in fixed:
        fixed["val_split"] = DEFAULT_VAL_SPLIT
    if fixed["val_split"] <= 0:
        raise ConfigError("trials are ranked on a validation split: give one above 0 (0.1 holds out 10%)", "val_split")
    return Space(base.replace(**fixed).validate(), tuple(dims), hidden)


def _choice(field: str, items: list[str]) -> Dimension:
    if any(RANGE in t for t in items):
        raise ConfigError(f"a range cannot be one of several values ({OPTIONS[field].sep.join(items)})", field)
    values = [format_value(parse_field(field, t)) for t in items]
    if len(set(values)) != len(values):
        raise ConfigError(f"a value is listed twice ({', '.join(items)})", field)
    return Dimension(field, field, tuple(values))


def _range(field: str, param: str, text: str, integer: bool | None = None) -> Dimension:
    """`lo..hi`, each end checked by the option's own parser."""
    default = getattr(RunConfig(), field)
    if integer is None:
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise ConfigError(f"{text!r}: only numbers take a range; list the values instead", field)
        integer = isinstance(default, int)
    low_text, sep, high_text = text.partition(RANGE)
    if not sep or not low_text.strip() or not high_text.strip() or RANGE in high_text:
        raise ConfigError(f"expected a range like 1e-5..1, got {text!r}", field)
    low, high = (_bound(field, t, integer) for t in (low_text, high_text))
    if low >= high:
        raise ConfigError(f"the range {text} is empty: its first end must be below its second", field)
    log = field in LOG_SCALE
    if log and low <= 0:
        raise ConfigError(f"{text}: its range is searched on a log scale, so it must start above 0 (1e-6..)", field)
    return Dimension(field, param, low=low, high=high, integer=integer, log=log)


def _bound(field: str, text: str, integer: bool) -> float:
    if field == "hidden":
        (size,) = parse_field("hidden", text)  # one size: a positive integer up to 65536
        return size
    value = parse_field(field, text)
    return int(value) if integer else float(value)


def _hidden_ranges(text: str) -> tuple[tuple[int | str, ...], list[Dimension]]:
    """`64..1024,128`: a range of sizes for the first layer, 128 for the second."""
    parts = [p.strip() for p in text.split(",")]
    layers: list[int | str] = []
    dims: list[Dimension] = []
    for i, part in enumerate(parts, 1):
        if RANGE in part:
            param = "hidden" if len(parts) == 1 else f"hidden{i}"
            dims.append(_range("hidden", param, part, integer=True))
            layers.append(param)
        else:
            (size,) = parse_field("hidden", part)
            layers.append(size)
    return tuple(layers), dims


def _cast(dim: Dimension, value: Any) -> Any:
    return int(value) if dim.integer else float(value)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) >= 1 else f"{x:g}"


def space_of(definition: dict[str, Any], local: RunConfig) -> Space:
    """A study's stored definition back as a Space, over this worker's own device, threads and data folder."""
    texts = {**definition.get("fixed", {}), **definition.get("search", {})}
    items = {f: [t for t in split_items(f, str(v))] for f, v in texts.items() if f in OPTIONS}
    base = RunConfig(**{f: getattr(local, f) for f in WORKER_LOCAL})
    return parse_space(items, base)


def split_items(field: str, text: str) -> list[str]:
    """'0.01,1e-5' -> ['0.01', '1e-5']; hidden sizes use ';' between alternatives: '256;512,256'."""
    parts = [p.strip() for p in text.split(OPTIONS[field].sep)]
    if any(not p for p in parts):
        raise ConfigError(f"empty item in {text!r}", field)
    return parts


def differences(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """How a command's space differs from a study's: `--lr 1e-05..1 (the study: 0.0001..1)`."""
    out = []
    for kind in ("search", "fixed"):
        mine, theirs = given.get(kind, {}), stored.get(kind, {})
        for field in sorted(mine.keys() | theirs.keys(), key=lambda f: list(OPTIONS).index(f) if f in OPTIONS else 99):
            if mine.get(field) != theirs.get(field):
                out.append(f"--{cli_name(field)} {mine.get(field, '-')} (the study: {theirs.get(field, '-')})")
    return out
