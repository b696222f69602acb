"""What a model learned, as pictures: softmax regression's weights per class, an MLP's first-layer units.

Plain numpy (no torch, no textual), so that events can carry it and widgets draw it. fmtui.models makes
one from a model (`learned_weights`); the weights view (fmtui.widgets.weights_view) draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LearnedWeights:
    """The first layer's weights on the input pixels, one row per unit, and what each unit adds to each class.

    Softmax regression: one unit per class (its weight vector: a template of the class), `outputs` None.
    MLP: one unit per first-layer neuron; `outputs` (classes, units) is the weight of each unit in each class's
    score through the later layers, multiplied out as if they were linear (activations and batch norm ignored:
    a guide to which units matter for a class, not an exact attribution).
    """

    inputs: np.ndarray
    """(units, C*H*W) float32."""
    outputs: np.ndarray | None
    """(classes, units) float32, or None when the units are the classes."""
    shape: tuple[int, int, int]
    """(C, H, W) of an input image."""

    @property
    def per_class(self) -> bool:
        """The units are the classes (softmax regression): each row is one class's template."""
        return self.outputs is None

    @property
    def classes(self) -> int:
        return len(self.inputs) if self.outputs is None else len(self.outputs)

    def image(self, unit: int) -> np.ndarray:
        """A unit's weights as an (H, W) picture (averaged over colour channels)."""
        return self.inputs[unit].reshape(self.shape).mean(0)

    def top_units(self, cls: int, k: int) -> list[tuple[int, float]]:
        """The k units with the largest weight into class cls, largest first: (unit, weight)."""
        if self.outputs is None:
            return [(cls, 1.0)]
        row = self.outputs[cls]
        order = np.argsort(-row, kind="stable")[:k]
        return [(int(u), float(row[u])) for u in order]


def from_matrices(matrices: list[np.ndarray], shape: tuple[int, int, int]) -> LearnedWeights:
    """From the weight matrices of a Flatten + Linear (+ activation + Linear ...) stack, first layer first."""
    first = np.asarray(matrices[0], dtype=np.float32)
    if len(matrices) == 1:
        return LearnedWeights(first, None, shape)
    path = np.asarray(matrices[-1], dtype=np.float64)
    for m in reversed(matrices[1:-1]):
        path = path @ np.asarray(m, dtype=np.float64)
    return LearnedWeights(first, path.astype(np.float32), shape)


def diverging_scale(images: np.ndarray, quantile: float = 0.99) -> float:
    """One scale for a set of weight images: the 99th percentile of |w| (a few extreme pixels must not wash
    the others out). 1.0 when every weight is zero (a fresh or saved all-zero model)."""
    finite = np.abs(images[np.isfinite(images)])
    scale = float(np.quantile(finite, quantile)) if finite.size else 0.0
    return scale if scale > 0 else 1.0
