"""RunConfig: the one description of a training run, shared by the CLI, the TUI form and the run folder.

This module imports neither torch nor textual nor click, so `fmtui --help` and the TUI's first frame stay fast.
Every option is declared once, as a RunConfig field whose metadata (an `Option`) holds its help text, form
label, choices and parser; the CLI's options, the TUI form's rows and the sweep's columns are made from
`OPTIONS`. A parser turns user text into a value or raises `ConfigError` with a one-line reason; the CLI's
option types and the TUI's validate-as-you-type form both call them through `parse_field`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fmtui import registry
from fmtui.errors import ConfigError  # raised by every parser here, one of fmtui's errors

DATASETS = registry.Names(registry.DATASETS)
"""The --dataset choices: the datasets registered now (fmtui.registry)."""
NORMS = ("none", "unit", "symmetric", "zscore", "per-image")
MODELS = registry.Names(registry.MODELS)
"""The --model choices: the models registered now (fmtui.registry)."""
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


def format_value(value: Any) -> str:
    """Render a config value the way a user would type it (inverse of the parsers)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- parsers: user text -> value, or ConfigError(reason); parse_field names the field ----------------


def choice(choices: Sequence[str]) -> Callable[[str], str]:
    """A parser for one of `choices`, case-insensitive."""

    def parse(text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise ConfigError(f"unknown value {str(text).strip()!r}; choose from {', '.join(choices)}")
        return value

    return parse


def number(
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], Any]:
    """A parser for an int or float within bounds (closed unless low_open/high_open)."""

    def parse(text: str) -> Any:
        stripped = str(text).strip()
        what = "an integer" if kind is int else "a number"
        if not stripped.isascii():  # int('١٢٨') and float('１２８') work in Python; users mean digits 0-9
            raise ConfigError(f"{stripped!r} is not {what} (only the digits 0-9 count)")
        try:
            value = kind(stripped)
        except ValueError:
            raise ConfigError(f"{stripped!r} is not {what}") from None
        if kind is float and not math.isfinite(value):
            raise ConfigError(f"must be a finite number, got {text}")
        if low is not None and (value < low or (low_open and value == low)):
            raise ConfigError(f"must be {'>' if low_open else '>='} {format_bound(low)}, got {text}")
        if high is not None and (value > high or (high_open and value == high)):
            raise ConfigError(f"must be {'<' if high_open else '<='} {format_bound(high)}, got {text}")
        return value

    return parse


def one_of(words: Iterable[str]) -> str:
    """'a, b or c'."""
    *most, last = words
    return f"{', '.join(most)} or {last}" if most else last


def format_bound(bound: float) -> str:
    """A limit as users type it: 1048576 and 9223372036854775807 in full, 0.9 and 1e-05 short."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


def parse_hidden(text: str) -> tuple[int, ...]:
    """'256' or '512,256' -> (512, 256); each size a positive integer in the digits 0-9."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise ConfigError(f"expected sizes like 256 or 512,256, got {text!r}")
    sizes = []
    for p in parts:
        if not (p.isascii() and p.isdigit()) or int(p) <= 0:  # '²'.isdigit() is True, and int('²') fails
            digits = "" if p.isascii() else "; only the digits 0-9 count"
            raise ConfigError(f"{p!r} is not a positive integer (in {text!r}{digits})")
        sizes.append(int(p))
    return tuple(sizes)  # how many and how wide: the model's limits (fmtui.registry), checked by RunConfig.validate


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "yes", "y", "true", "on"):
        return True
    if value in ("0", "no", "n", "false", "off"):
        return False
    raise ConfigError(f"expected yes or no, got {text!r}")


# --- the one declaration of every option ---------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """How users meet one RunConfig field: its command-line option, its form row and its parser."""

    help: str
    """What the field means, for --help (which appends the default: "Learning rate [0.01]")."""
    parse: Callable[[str], Any]
    """User text -> value; raises ConfigError(reason) (parse_field adds the field)."""
    metavar: str
    """The value's placeholder in --help: N, LR, a|b|c."""
    choices: Sequence[str] = ()
    """The allowed values in the order the form's drop-down lists them; () = free text."""
    flag: bool = False
    """A yes/no option: --name/--no-name for `train`, yes|no lists for `sweep`, a no/yes drop-down in the form."""
    label: str | None = None
    """The form row's label; None = no row (command line only)."""
    hint: str = ""
    """The form's note beside a valid value."""
    form_after: str | None = None
    """Put the form row right after this field's row (otherwise rows follow the field order, as --help does)."""
    sep: str = ","
    """What separates the values of a sweep list ("256;512,256" for hidden sizes, whose values hold commas)."""
    name: str = ""
    """The RunConfig field (filled in by options_of)."""
    cli: str = ""
    """The option's name without dashes, also its column in summary.csv and exports (default: name with '-')."""


def option(
    default: Any,
    help: str,
    *,
    parse: Callable[[str], Any] | None = None,
    metavar: str = "",
    choices: Sequence[str] = (),
    flag: bool = False,
    **more: Any,
) -> Any:
    """A RunConfig field with its Option; choices and flags bring their own parser and metavar."""
    if flag:
        parse, metavar, choices = parse_bool, "yes|no", ("no", "yes")
    elif choices:
        parse, metavar = choice(choices), "|".join(choices)
    assert parse is not None and metavar, "an option needs a parser and a metavar"
    opt = Option(help, parse, metavar, choices=choices, flag=flag, **more)
    return dataclasses.field(default=default, metadata={"option": opt})


@dataclass
class RunConfig:
    """Everything that defines a training run. Defaults reproduce the lecture's step-by-step MLP.

    Each field's Option (see `option`) is its documentation, its CLI option and its form row.
    """

    dataset: str = option("fashion-mnist", "Dataset", choices=DATASETS, label="dataset")
    norm: str = option(
        "symmetric",
        "Normalization: none=0..255, unit=x/255, symmetric=[-1,1], zscore, per-image",
        choices=NORMS,
        label="normalization",
    )
    """Input normalization (see NORM_HELP, which the form shows as the note of the chosen value)."""
    model: str = option(
        "mlp", "Model", choices=MODELS, label="model", hint=one_of(m.title for m in registry.MODELS.values())
    )
    """A registered model (fmtui.registry): softmax (Flatten + Linear), mlp (hidden layers) or cnn (small conv net)."""
    hidden: tuple[int, ...] = option(
        (256,),
        "MLP hidden sizes, e.g. 256 or 512,256",
        parse=parse_hidden,
        metavar="SIZES",
        label="hidden sizes",
        hint="MLP layers: 256 or 512,256",
        sep=";",
    )
    """Hidden layer sizes of the MLP, input side first."""
    activation: str = option("relu", "MLP/CNN activation", choices=ACTIVATIONS, label="activation", hint="MLP and CNN")
    dropout: float = option(
        0.0,
        "Dropout after hidden layers",
        parse=number(float, low=0.0, high=1.0, high_open=True),
        metavar="P",
        label="dropout",
        hint="after hidden layers, 0 = off",
    )
    batch_norm: bool = option(
        False, "BatchNorm after hidden Linear layers", flag=True, label="batch norm", hint="MLP only"
    )
    """BatchNorm1d after each hidden Linear layer of the MLP."""
    optimizer: str = option("sgd", "Optimizer", choices=OPTIMIZERS, label="optimizer")
    lr: float = option(
        0.01,
        "Learning rate",
        parse=number(float, low=0.0, low_open=True, high=100.0),
        metavar="LR",
        label="learning rate",
        hint="> 0, e.g. 0.01 or 1e-5",
    )
    momentum: float = option(
        0.0,
        "SGD momentum",
        parse=number(float, low=0.0, high=1.0, high_open=True),
        metavar="M",
        label="momentum",
        hint="SGD only, 0 = plain SGD",
    )
    """SGD momentum (0 = plain SGD as in the lecture)."""
    nesterov: bool = option(False, "Nesterov momentum (sgd, momentum > 0)", flag=True)
    weight_decay: float = option(
        0.0,
        "Weight decay, 0 to 1",
        # Above 1 the L2 term outweighs a cross-entropy loss (about 2.3 at the start) by far and pulls every
        # weight to 0 faster than training moves it (usual values: 1e-5 to 0.1); with lr * wd > 1, SGD's
        # shrink overshoots past 0 and the weights blow up. 1e39 used to pass here and fail mid-run.
        parse=number(float, low=0.0, high=1.0),
        metavar="WD",
        label="weight decay",
        hint="L2, 0 = off",
    )
    """L2 weight decay (decoupled for adamw), 0..1."""
    schedule: str = option(
        "none", "Learning-rate schedule", choices=SCHEDULES, label="lr schedule", hint="cosine: decay to 0 at the end"
    )
    """Learning-rate schedule over all steps: none or cosine."""
    batch_size: int = option(64, "Batch size", parse=number(int, low=1, high=1 << 20), metavar="N", label="batch size")
    epochs: int = option(5, "Epochs", parse=number(int, low=1, high=100000), metavar="N", label="epochs")
    """Number of passes over the training split."""
    device: str = option(
        "auto",
        "Device; auto picks cuda, then mps, then cpu",
        choices=DEVICES,
        label="device",
        hint="auto: CUDA, else MPS, else CPU",
    )
    seed: int = option(
        0,
        "Random seed",
        parse=number(int, low=0, high=2**63 - 1),
        metavar="N",
        label="seed",
        hint="weights, shuffling, validation",
    )
    """Seed for weights, shuffling and the validation split."""
    graphs: bool = option(True, "CUDA graphs for the training step on a GPU (off: the eager step)", flag=True)
    """Replay the training step as CUDA graphs where it can (fmtui.graphs); ignored off CUDA."""
    threads: int = option(0, "CPU threads; 0 = measured default", parse=number(int, low=0, high=4096), metavar="N")
    """CPU threads for torch; 0 picks the measured default (see fmtui.engine.default_threads)."""
    val_split: float = option(
        0.0,
        "Fraction of the training split held out for validation",
        parse=number(float, low=0.0, high=0.9),
        metavar="F",
        label="validation",
        hint="held-out fraction of train",
        form_after="epochs",
    )
    """Fraction of the training split held out for validation (0 = none), fixed by the seed."""
    data_dir: str | None = None
    """Folder with the dataset files; None = $FMTUI_DATA_DIR or the per-user cache (its own CLI option, no form row)."""

    def validate(self) -> RunConfig:
        """Check every field and the combinations; raise ConfigError on the first problem."""
        for name in OPTIONS:
            if getattr(self, name) is not None:
                parse_field(name, format_value(getattr(self, name)))
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigError("--nesterov needs --optimizer sgd and --momentum > 0")
        model = registry.model_spec(self.model)
        too_big = model.refusal(self)  # 20,000 hidden layers used to be accepted, then took 40 s to stop
        if too_big:
            raise ConfigError(too_big, field="hidden")
        refused = model.check(self, registry.dataset_spec(self.dataset).shape)
        if refused:
            raise ConfigError(refused)
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

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def summary(self, among: Sequence[RunConfig] = ()) -> str:
        """One line naming the run: model, normalization, optimizer, lr, batch, epochs. `among`: a sweep's configs,
        whose values are listed where they differ (`norm none,zscore · sgd lr 0.01,0.1`)."""
        configs = list(among) or [self]

        def each(text: Callable[[RunConfig], str]) -> str:
            return ",".join(dict.fromkeys(text(c) for c in configs))

        def model(c: RunConfig) -> str:
            label = registry.model_label(c)
            if "hidden" in registry.model_spec(c.model).options:  # a network of hidden layers: with their activation
                label += f" {c.activation}"
            return label

        epochs = each(lambda c: str(c.epochs))
        return (
            f"{each(lambda c: c.dataset)} · {each(model)} · norm {each(lambda c: c.norm)} · "
            f"{each(lambda c: c.optimizer)} lr {each(lambda c: format_value(c.lr))}"
            f" · batch {each(lambda c: str(c.batch_size))} · {epochs} epoch{'s' if epochs != '1' else ''}"
        )


def applies(name: str, model: str, optimizer: str) -> bool:
    """Whether an option means anything for this model and optimizer: a model reads only the layer options its spec
    names (fmtui.registry: a softmax regression has no hidden layers, activation or dropout), only SGD has
    momentum. Options that do not apply are greyed out in the form, left empty in exports and never matched by a
    filter (fmtui.runquery)."""
    if name in registry.MODEL_OPTIONS:
        return model in registry.MODELS and name in registry.MODELS[model].options
    if name in ("momentum", "nesterov"):
        return optimizer == "sgd"
    return True


def options_of(cls: type) -> dict[str, Option]:
    """The Options declared on a dataclass's fields (see `option`), in field order, with name and cli filled in."""
    return {
        f.name: dataclasses.replace(opt, name=f.name, cli=opt.cli or f.name.replace("_", "-"))
        for f in dataclasses.fields(cls)
        if (opt := f.metadata.get("option")) is not None
    }


OPTIONS: dict[str, Option] = options_of(RunConfig)
"""Every field users set (all but data_dir), in field order: the CLI's options, the form's rows, the sweep's columns."""


def cli_name(field: str) -> str:
    """The option name users type for a field, without dashes ('batch_size' -> 'batch-size')."""
    return OPTIONS[field].cli if field in OPTIONS else field.replace("_", "-")


def parse_field(name: str, text: str) -> Any:
    """Parse one field from user text; raises ConfigError naming the field, with a one-line reason."""
    try:
        return OPTIONS[name].parse(text)
    except ConfigError as e:
        raise ConfigError(e.reason, field=name, option=OPTIONS[name].cli) from None
