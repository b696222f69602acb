"""Models and datasets by name: one spec each, which the CLI's choices, the Model form, the memory check, the engine,
stacked sweeps, the Runs pane and the lr finder all read.

Torch-free, like fmtui.config (which takes its --model and --dataset choices from here): a model's builder is
named "module:function" and imported when a model is first built. Adding a model is one `register(ModelSpec(...))`:
its builder (an nn.Module factory), its label, its memory estimate and what it can do (stacked sweeps, the weights
view, limits of its hidden sizes); nothing else names it. (The idea of timm's `register_model`.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmtui.config import RunConfig

Shape = tuple[int, int, int]
"""An image's (channels, height, width)."""


def _named(cfg: RunConfig) -> str:
    return cfg.model


def _never(cfg: RunConfig) -> bool:
    return False


def _any_shape(cfg: RunConfig, shape: Shape) -> str | None:
    return None


def _shapes(cfg: RunConfig, shape: Shape, n_classes: int) -> str:
    c, h, w = shape
    return f"{cfg.model} {c}x{h}x{w} -> {n_classes}"


@dataclass(frozen=True)
class ModelSpec:
    """One model: how to build it, what to call it, what it costs and what it can do."""

    name: str
    """The --model value, as run folders record it."""
    title: str
    """What people call it: "MLP" (the form's hint)."""
    builder: str | Callable[[RunConfig, Shape, int], Any]
    """(config, image shape, classes) -> nn.Module; "module:function" is imported when a model is first built."""
    activations: Callable[[RunConfig, Shape, int], tuple[int, int]]
    """The memory estimate's part that depends on the layers: floats per image that a training step keeps for
    backward, and that evaluation needs at once (fmtui.resources adds weights, gradients and optimizer state)."""
    describe: Callable[[RunConfig, Shape, int], str] = _shapes
    """The network in one line: '784-256-10 relu' (the form's summary, the Train pane, run reports)."""
    label: Callable[[RunConfig], str] = _named
    """A short name for tables, legends and titles: 'mlp 256' (model_label)."""
    options: frozenset[str] = frozenset()
    """The model options it reads, of MODEL_OPTIONS; the form greys out the others."""
    stackable: Callable[[RunConfig], bool] = _never
    """Whether a sweep may train runs of this config as stacked copies (fmtui.batched: Flatten, then Linear layers
    with an activation between them, no batch norm or dropout)."""
    weights_view: bool = False
    """Whether the Errors pane can draw what it learned: its first layer is a Linear on the pixels."""
    max_depth: int | None = None
    """The most hidden layers (cfg.hidden) it accepts; None: it has no hidden sizes."""
    max_width: int | None = None
    """The widest hidden layer it accepts."""
    check: Callable[[RunConfig, Shape], str | None] = _any_shape
    """Why this config cannot run on images of this shape, or None (checked once the data is loaded)."""

    def build(self, cfg: RunConfig, shape: Shape, n_classes: int) -> Any:
        """The nn.Module (imports torch)."""
        build = self.builder
        if isinstance(build, str):
            module, _, function = build.partition(":")
            build = getattr(importlib.import_module(module), function)
        return build(cfg, shape, n_classes)

    def refusal(self, cfg: RunConfig) -> str | None:
        """Why cfg's hidden sizes are beyond this model's limits (before anything is allocated), or None."""
        if self.max_depth is not None and len(cfg.hidden) > self.max_depth:
            return f"at most {self.max_depth} hidden layers for --model {self.name}, got {len(cfg.hidden):,}"
        widest = max(cfg.hidden, default=0)
        if self.max_width is not None and widest > self.max_width:
            return f"layers of at most {self.max_width} units for --model {self.name}, got {widest}"
        return None


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: what it is (shape, classes) and where its files live (fmtui.data reads them)."""

    name: str
    """The --dataset value."""
    title: str
    """Its usual spelling: "Fashion-MNIST"."""
    shape: Shape
    """One image's (channels, height, width)."""
    classes: tuple[str, ...]
    """The class names, by label."""
    files: tuple[str, ...]
    """The official files (IDX .gz, each may also be there extracted), or the one folder CIFAR-10's archive holds;
    their md5s are torchvision's (fmtui.data checks them)."""
    folders: tuple[str, ...]
    """Sub-folders of the data folder that may hold the files; the first is where a download goes."""
    tv_class: str
    """The torchvision dataset class that downloads it and knows its md5s."""
    size: str
    """The download's size, for the first screen: "30 MB"."""
    md5s: tuple[str, ...] = ()
    """The published md5 of each of `files` (torchvision's `resources`, kept here so that reading the files
    needs no torchvision; a test checks them against torchvision's); () where torchvision checks them itself."""

    @property
    def n_classes(self) -> int:
        return len(self.classes)


class Names(Sequence[str]):
    """The names in a registry now, as a sequence: option choices that follow register() and unregister()."""

    def __init__(self, registry: dict[str, Any]) -> None:
        self._registry = registry

    def __getitem__(self, i):  # type: ignore[override]
        return tuple(self._registry)[i]

    def __len__(self) -> int:
        return len(self._registry)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._registry))

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __repr__(self) -> str:
        return f"Names({tuple(self._registry)})"


MODELS: dict[str, ModelSpec] = {}
"""Every model by --model name, in the order the form and --help list them."""
DATASETS: dict[str, DatasetSpec] = {}
"""Every dataset by --dataset name."""
MODEL_OPTIONS = ("hidden", "activation", "dropout", "batch_norm")
"""The options that describe a model's layers (ModelSpec.options names those a model reads)."""


def register(spec: ModelSpec | DatasetSpec) -> Any:
    """Add a model or a dataset; its name must be new. Returns the spec."""
    registry: dict[str, Any] = MODELS if isinstance(spec, ModelSpec) else DATASETS
    if spec.name in registry:
        raise ValueError(f"{spec.name!r} is registered already")
    if isinstance(spec, ModelSpec) and not spec.options <= set(MODEL_OPTIONS):
        raise ValueError(f"{spec.name}: options must be among {', '.join(MODEL_OPTIONS)}")
    registry[spec.name] = spec
    return spec


def unregister(name: str, kind: type = ModelSpec) -> None:
    """Remove a model (or, with kind=DatasetSpec, a dataset) added by register (tests, plugins)."""
    (MODELS if kind is ModelSpec else DATASETS).pop(name)


def model_spec(name: str) -> ModelSpec:
    """The model registered as `name` (KeyError naming the choices for an unknown one)."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def dataset_spec(name: str) -> DatasetSpec:
    """The dataset registered as `name` (KeyError naming the choices for an unknown one)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None


def model_label(cfg: RunConfig) -> str:
    """The short name of cfg's model, the same in the Runs list, its legends, the lr finder and run summaries."""
    spec = MODELS.get(cfg.model)
    return spec.label(cfg) if spec is not None else cfg.model  # a run folder from a build with more models


# --- the built-in models -------------------------------------------------------------------------------------


def _hidden_label(cfg: RunConfig) -> str:
    return f"{cfg.model} {','.join(map(str, cfg.hidden))}"


def _mlp_describe(cfg: RunConfig, shape: Shape, n_classes: int) -> str:
    c, h, w = shape
    extras = (
        [cfg.activation]
        + (["batchnorm"] if cfg.batch_norm else [])
        + ([f"dropout {cfg.dropout:g}"] if cfg.dropout else [])
    )
    return f"{'-'.join(str(s) for s in (c * h * w, *cfg.hidden, n_classes))} {' '.join(extras)}"


def _mlp_activations(
    cfg: RunConfig, shape: Shape, n_classes: int, hidden: tuple[int, ...] | None = None
) -> tuple[int, int]:
    """Each hidden layer keeps its Linear and activation outputs, [its norm], [its dropout mask and output]."""
    c, h, w = shape
    pixels = c * h * w
    hidden = cfg.hidden if hidden is None else hidden
    per_layer = 2 + cfg.batch_norm + 2 * (cfg.dropout > 0)
    return pixels + sum(size * per_layer for size in hidden) + 2 * n_classes, pixels + 2 * max([*hidden, n_classes])


def _softmax_activations(cfg: RunConfig, shape: Shape, n_classes: int) -> tuple[int, int]:
    return _mlp_activations(cfg, shape, n_classes, hidden=())


def _cnn_activations(cfg: RunConfig, shape: Shape, n_classes: int) -> tuple[int, int]:
    """Conv, pooling, conv, pooling, the head; training keeps conv + norm + activation outputs."""
    c, h, w = shape
    pixels = c * h * w
    outputs = [32 * h * w, 32 * (h // 2) * (w // 2), 64 * (h // 2) * (w // 2), 64 * (h // 4) * (w // 4), 128]
    saved = [3, 1, 3, 1, 2]
    train = pixels + sum(n * k for n, k in zip(outputs, saved)) + 2 * n_classes
    return train, pixels + 2 * max(outputs)


def _cnn_check(cfg: RunConfig, shape: Shape) -> str | None:
    if cfg.batch_norm:  # its conv blocks have their own
        return "--batch-norm applies to the mlp model only"
    return "--model cnn needs images of at least 4x4 pixels" if min(shape[1:]) < 4 else None


register(
    ModelSpec(
        "softmax",
        "softmax regression",
        "fmtui.models:softmax_regression",
        _softmax_activations,
        describe=lambda cfg, shape, n: f"{shape[0] * shape[1] * shape[2]}-{n} softmax regression",
        stackable=lambda cfg: True,
        weights_view=True,
    )
)
register(
    ModelSpec(
        "mlp",
        "MLP",
        "fmtui.models:mlp",
        _mlp_activations,
        describe=_mlp_describe,
        label=_hidden_label,
        options=frozenset({"hidden", "activation", "dropout", "batch_norm"}),
        stackable=lambda cfg: not cfg.batch_norm and cfg.dropout == 0,
        weights_view=True,
        # Deeper plain MLPs do not train without residual connections; 20,000 layers took 40 s to build and to stop.
        max_depth=64,
        max_width=65536,
    )
)
register(
    ModelSpec(
        "cnn",
        "CNN",
        "fmtui.models:cnn",
        _cnn_activations,
        describe=lambda cfg, shape, n: (
            f"cnn {shape[0]}x{shape[1]}x{shape[2]} -> conv32-conv64-128-{n} {cfg.activation}"
        ),
        options=frozenset({"activation", "dropout"}),
        check=_cnn_check,
    )
)

# --- the built-in datasets -----------------------------------------------------------------------------------

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
"""The four official files of the MNIST family."""
MNIST_SHAPE = (1, 28, 28)

register(
    DatasetSpec(
        "fashion-mnist",
        "Fashion-MNIST",
        MNIST_SHAPE,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        IDX_FILES,
        ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
        "FashionMNIST",
        "30 MB",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    )
)
register(
    DatasetSpec(
        "mnist",
        "MNIST",
        MNIST_SHAPE,
        tuple(f"{i} - {n}" for i, n in enumerate("zero one two three four five six seven eight nine".split())),
        IDX_FILES,
        ("mnist", "MNIST/raw", "MNIST"),
        "MNIST",
        "11 MB",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    )
)
register(
    DatasetSpec(
        "kmnist",
        "KMNIST",
        MNIST_SHAPE,
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        IDX_FILES,
        ("kmnist", "KMNIST/raw", "KMNIST"),
        "KMNIST",
        "19 MB",
        (
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        ),
    )
)
register(
    DatasetSpec(
        "cifar10",
        "CIFAR-10",
        (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        ("cifar-10-batches-py",),
        ("cifar10", "cifar-10", "CIFAR10"),
        "CIFAR10",
        "163 MB",
    )
)
