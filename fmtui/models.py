"""The built-in models' builders (softmax regression, MLPs of any shape, a small CNN) and what is read off a model.

Models are found by name through fmtui.registry, whose entries name these builders ("fmtui.models:mlp")."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fmtui.config import RunConfig
from fmtui.registry import model_spec
from fmtui.weights import LearnedWeights, from_matrices

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


def softmax_regression(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """The lecture's Flatten + Linear; softmax lives in the loss."""
    c, h, w = shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, n_classes))  # (B, C, H, W) -> (B, classes)


def mlp(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Flatten, then Linear [+ BatchNorm] + activation [+ Dropout] per hidden size, then Linear."""
    c, h, w = shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for size in cfg.hidden:
        layers.append(nn.Linear(width, size))  # (B, width) -> (B, size)
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(ACTIVATIONS[cfg.activation]())
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def cnn(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """Two conv blocks (32, 64 channels) and a small head: a fair baseline for 28x28 and 32x32 inputs."""
    c, h, w = shape
    act = ACTIVATIONS[cfg.activation]
    return nn.Sequential(
        nn.Conv2d(c, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        act(),
        nn.MaxPool2d(2),  # -> (B, 32, H/2, W/2)
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        act(),
        nn.MaxPool2d(2),  # -> (B, 64, H/4, W/4)
        nn.Flatten(),
        nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity(),
        nn.Linear(64 * (h // 4) * (w // 4), 128),
        act(),
        nn.Linear(128, n_classes),
    )


def build_model(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> nn.Module:
    """cfg's model, as its registry entry builds it (fmtui.registry)."""
    return model_spec(cfg.model).build(cfg, shape, n_classes)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> str:
    """'784-256-10 relu', '784-10 softmax regression', 'cnn 1x28x28 -> 32c-64c-128-10': its registry entry's words."""
    return model_spec(cfg.model).describe(cfg, shape, n_classes)


def layer_rows(model: nn.Module) -> list[str]:
    """One line per layer of a model: type, shape change, parameters (works on the meta device; any registered model)."""
    rows = []
    for m in model.modules():
        if next(m.children(), None) is not None:
            continue
        n = sum(p.numel() for p in m.parameters())
        if hasattr(m, "in_features"):
            shape = f"{m.in_features} → {m.out_features}"
        elif hasattr(m, "out_channels"):
            shape = f"{m.in_channels} → {m.out_channels} channels, {m.kernel_size[0]}x{m.kernel_size[1]}"
        elif hasattr(m, "num_features"):
            shape = f"{m.num_features} features"
        else:
            shape = f"p = {m.p:g}" if hasattr(m, "p") else ""
        rows.append(f"  {type(m).__name__:<12} {shape:<30} {n:>10,}" if n else f"  {type(m).__name__:<12} {shape}")
    return rows


def param_count_for(cfg: RunConfig, shape: tuple[int, int, int], n_classes: int) -> int:
    """Parameter count without allocating weights on a real device."""
    with torch.device("meta"):
        return count_params(build_model(cfg, shape, n_classes))


def learned_weights(model: nn.Module, shape: tuple[int, int, int]) -> LearnedWeights | None:
    """CPU copies of what a softmax regression or an MLP learned (fmtui.weights); None for other models.

    An MLP's Linear weight matrices, 784x256 and 256x10 for the lecture's, are copied at the end of an epoch
    only: a few hundred kilobytes, nothing beside an epoch of training.
    """
    layers = list(model.children()) if isinstance(model, nn.Sequential) else []
    if len(layers) < 2 or not isinstance(layers[0], nn.Flatten) or not isinstance(layers[1], nn.Linear):
        return None
    if any(isinstance(m, nn.Conv2d) for m in layers):
        return None
    with torch.no_grad():
        matrices = [m.weight.detach().float().cpu().numpy().copy() for m in layers if isinstance(m, nn.Linear)]
    return from_matrices(matrices, shape)
