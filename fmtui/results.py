"""Results: the test-set predictions of one evaluated model, with what the error browser asks of them.

A module of its own (torch only) so that the events, which carry Results, can name the type without
importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Results:
    """Test-set predictions of one evaluated model: everything the error browser needs (CPU tensors)."""

    probs: torch.Tensor
    """(N, classes) softmax probabilities."""
    labels: torch.Tensor
    preds: torch.Tensor
    confusion: torch.Tensor
    """(classes, classes) counts, rows = true class, columns = predicted class."""
    loss: float
    accuracy: float

    @classmethod
    def from_probs(cls, probs: torch.Tensor, labels: torch.Tensor, loss: float | None = None) -> Results:
        """Predictions, confusion matrix and accuracy from (N, classes) probabilities and the labels.

        loss defaults to the cross-entropy of the probabilities (for saved predictions)."""
        probs, labels = probs.cpu(), labels.cpu()
        k = probs.shape[1]
        preds = probs.argmax(1)
        confusion = torch.bincount(labels * k + preds, minlength=k * k).view(k, k)
        if loss is None:
            loss = float(-probs[torch.arange(len(labels)), labels].clamp_min(1e-12).log().mean())
        accuracy = 100.0 * float((preds == labels).sum()) / max(len(labels), 1)
        return cls(probs, labels, preds, confusion, loss, accuracy)

    @property
    def per_class_accuracy(self) -> list[float]:
        totals = self.confusion.sum(1).clamp_min(1)
        return (100.0 * self.confusion.diagonal() / totals).tolist()

    @property
    def confidence(self) -> torch.Tensor:
        return self.probs.max(1).values

    def mislabeled(self, true: int | None = None, pred: int | None = None) -> list[int]:
        """Indices of wrong test predictions, most confident first, optionally for one true/pred class."""
        wrong = self.preds != self.labels
        if true is not None:
            wrong &= self.labels == true
        if pred is not None:
            wrong &= self.preds == pred
        idx = wrong.nonzero().flatten()
        order = self.confidence[idx].argsort(descending=True, stable=True)
        return idx[order].tolist()

    def top_k(self, i: int, k: int = 3) -> list[tuple[int, float]]:
        p, c = self.probs[i].topk(k)
        return list(zip(c.tolist(), p.tolist()))
