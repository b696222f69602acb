"""RunConfig: the one description of a training run, shared by the CLI, the TUI form and the run folder.

This module imports neither torch nor textual, so `fmtui --help` and the TUI's first frame stay fast.
Every field has a parser that turns user text into a value or raises `ConfigError` with a one-line
reason; the CLI's option types and the TUI's validate-as-you-type form both call these parsers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DATASETS = ("fashion-mnist", "mnist", "kmnist", "cifar10")
NORMS = ("none", "unit", "symmetric", "zscore", "per-image")
MODELS = ("softmax", "mlp", "cnn")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")

NORM_HELP = {
    "none": "raw pixels 0..255",
    "unit": "x/255 -> [0, 1]",
    "symmetric": "x/127.5 - 1 -> [-1, 1] (Normalize(0.5, 0.5))",
    "zscore": "(x - mean)/std, mean and std of the training split",
    "per-image": "each image standardized by its own mean and std",
}


class ConfigError(ValueError):
    """A bad value for a run option; the message is one line meant for the user."""


@dataclass
class RunConfig:
    """Everything that defines a training run. Defaults reproduce the lecture's step-by-step MLP."""

    dataset: str = "fashion-mnist"
    """Dataset name: fashion-mnist, mnist, kmnist or cifar10."""
    norm: str = "symmetric"
    """Input normalization: none, unit, symmetric, zscore or per-image (see NORM_HELP)."""
    model: str = "mlp"
    """softmax (Flatten + Linear), mlp (hidden layers) or cnn (small conv net)."""
    hidden: tuple[int, ...] = (256,)
    """Hidden layer sizes of the MLP, input side first."""
    activation: str = "relu"
    """Activation between MLP layers: relu, sigmoid, tanh or gelu."""
    dropout: float = 0.0
    """Dropout probability after each hidden activation (0 = off)."""
    batch_norm: bool = False
    """BatchNorm1d after each hidden Linear layer."""
    optimizer: str = "sgd"
    """sgd, adam or adamw."""
    lr: float = 0.01
    """Learning rate."""
    momentum: float = 0.0
    """SGD momentum (0 = plain SGD as in the lecture)."""
    nesterov: bool = False
    """Nesterov momentum for SGD (needs momentum > 0)."""
    weight_decay: float = 0.0
    """L2 weight decay (decoupled for adamw)."""
    schedule: str = "none"
    """Learning-rate schedule over all steps: none or cosine."""
    batch_size: int = 64
    """Training batch size."""
    epochs: int = 5
    """Number of passes over the training split."""
    device: str = "auto"
    """auto (best available), cpu, cuda or mps."""
    seed: int = 0
    """Seed for weights, shuffling and the validation split."""
    threads: int = 0
    """CPU threads for torch; 0 picks the measured default (see fmtui.engine.default_threads)."""
    val_split: float = 0.0
    """Fraction of the training split held out for validation (0 = none), fixed by the seed."""
    data_dir: str | None = None
    """Folder with the dataset files; None = $FMTUI_DATA_DIR or the per-user cache."""

    def validate(self) -> RunConfig:
        """Check every field and the combinations; raise ConfigError on the first problem."""
        for f in dataclasses.fields(self):
            parser = PARSERS.get(f.name)
            if parser is not None and getattr(self, f.name) is not None:
                parser(format_value(getattr(self, f.name)))
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigError("--nesterov needs --optimizer sgd and --momentum > 0")
        if self.model == "cnn" and self.batch_norm:
            raise ConfigError("--batch-norm applies to the mlp model only")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (hidden as a list)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of to_dict; unknown keys are ignored so older run folders still load."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "hidden" in kw:
            kw["hidden"] = tuple(int(h) for h in kw["hidden"])
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def summary(self) -> str:
        """One line naming the run: model, normalization, optimizer, lr, batch, epochs."""
        model = self.model
        if self.model == "mlp":
            model = f"mlp {','.join(str(h) for h in self.hidden)} {self.activation}"
        return (
            f"{self.dataset} · {model} · norm {self.norm} · {self.optimizer} lr {format_value(self.lr)}"
            f" · batch {self.batch_size} · {self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        )


def format_value(value: Any) -> str:
    """Render a config value the way a user would type it (inverse of the parsers)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ConfigError(f"--{name}: unknown value {text.strip()!r}; choose from {', '.join(choices)}")
        return value

    return parse


def _number(
    name: str,
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(str(text).strip())
        except ValueError:
            raise ConfigError(
                f"--{name}: {str(text).strip()!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"--{name}: must be a finite number, got {text}")
        if low is not None and (value < low or (low_open and value == low)):
            raise ConfigError(f"--{name}: must be {'>' if low_open else '>='} {low:g}, got {text}")
        if high is not None and (value > high or (high_open and value == high)):
            raise ConfigError(f"--{name}: must be {'<' if high_open else '<='} {high:g}, got {text}")
        return value

    return parse


def parse_hidden(text: str) -> tuple[int, ...]:
    """'256' or '512,256' -> (512, 256); each size a positive integer."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise ConfigError(f"--hidden: expected sizes like 256 or 512,256, got {text!r}")
    sizes = []
    for p in parts:
        if not p.isdigit() or int(p) <= 0:
            raise ConfigError(f"--hidden: {p!r} is not a positive integer (in {text!r})")
        sizes.append(int(p))
    if any(s > 65536 for s in sizes):
        raise ConfigError(f"--hidden: layer sizes above 65536 are not supported, got {text!r}")
    return tuple(sizes)


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "yes", "y", "true", "on"):
        return True
    if value in ("0", "no", "n", "false", "off"):
        return False
    raise ConfigError(f"expected yes or no, got {text!r}")


PARSERS: dict[str, Callable[[str], Any]] = {
    "dataset": _choice("dataset", DATASETS),
    "norm": _choice("norm", NORMS),
    "model": _choice("model", MODELS),
    "hidden": parse_hidden,
    "activation": _choice("activation", ACTIVATIONS),
    "dropout": _number("dropout", float, low=0.0, high=1.0, high_open=True),
    "batch_norm": parse_bool,
    "optimizer": _choice("optimizer", OPTIMIZERS),
    "lr": _number("lr", float, low=0.0, low_open=True, high=100.0),
    "momentum": _number("momentum", float, low=0.0, high=1.0, high_open=True),
    "nesterov": parse_bool,
    "weight_decay": _number("weight-decay", float, low=0.0),
    "schedule": _choice("schedule", SCHEDULES),
    "batch_size": _number("batch-size", int, low=1, high=1 << 20),
    "epochs": _number("epochs", int, low=1, high=100000),
    "device": _choice("device", DEVICES),
    "seed": _number("seed", int, low=0, high=2**63 - 1),
    "threads": _number("threads", int, low=0, high=4096),
    "val_split": _number("val-split", float, low=0.0, high=0.9),
}


def parse_field(name: str, text: str) -> Any:
    """Parse one field from user text; raises ConfigError with a one-line reason."""
    return PARSERS[name](text)
