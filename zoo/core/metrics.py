"""Per-step-cheap metrics that the zoo's steps update and its epoch ends compute.

``TopKAccuracy``: top-1 and top-k accuracy of a classifier from one ``topk`` per batch.

It gives what torchmetrics' ``MulticlassAccuracy(average="micro")`` and ``MulticlassAccuracy(top_k=5,
average="micro")`` give together (the fraction of samples whose class is the top logit / among the top k),
but updates with two counts instead of per-class statistic tables: 0.03 ms a batch of 128 x 10 logits
instead of 0.35 ms for the pair on this repository's 2-core CPU, which a LeNet-5 training step (about 10 ms)
pays every step (BENCHMARKS.md, table 1). It is a ``torchmetrics.Metric``: the counts add up over batches and,
under DDP, over ranks (``dist_reduce_fx="sum"``), and a ``MetricCollection`` flattens its two results.

``LossMean``: the sample-weighted mean of a scalar loss over an epoch, what ``self.log(..., on_epoch=True,
batch_size=n, sync_dist=True)`` reports, for a step that adds two numbers instead of going through Lightning's
result collection (about 0.5 ms a call here). torchmetrics' ``MeanMetric`` checks every value for NaN (a
host-device sync on a GPU) or, with ``nan_strategy="disable"``, drops the weights (torchmetrics 1.9).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["LossMean", "TopKAccuracy"]


class TopKAccuracy(Metric):
    """Top-1 and top-``k`` accuracy over every sample updated since the last reset.

    ``compute()`` returns ``{"acc": top-1, "acc_top{k}": top-k}`` (only ``acc`` when ``k`` is 1).

    Args:
        num_classes: number of classes (the logits' width); ``k`` must not exceed it.
        k: the second accuracy's k.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, k: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 1 <= k <= num_classes:
            raise ValueError(f"k must be in [1, num_classes={num_classes}], got {k}")
        self.num_classes, self.k = num_classes, k
        self.add_state("correct", torch.zeros(2, dtype=torch.long), dist_reduce_fx="sum")  # (top-1, top-k) hits
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor) -> None:
        """``logits`` (B, num_classes) (or probabilities), ``target`` (B,) class indices."""
        if logits.ndim != 2 or logits.shape[-1] != self.num_classes or target.shape != logits.shape[:1]:
            raise ValueError(f"TopKAccuracy expects (B, {self.num_classes}) logits and (B,) targets, got {tuple(logits.shape)} and {tuple(target.shape)}")
        hits = logits.topk(self.k, dim=-1).indices == target[:, None]  # (B, k), the top-1 column first
        self.correct += torch.stack([hits[:, 0].sum(), hits.any(dim=-1).sum()])
        self.total += target.numel()

    def compute(self) -> dict[str, Tensor]:
        accuracy = self.correct.float() / self.total.clamp(min=1)  # (2,)
        return {"acc": accuracy[0]} if self.k == 1 else {"acc": accuracy[0], f"acc_top{self.k}": accuracy[1]}


class LossMean(Metric):
    """The mean of a scalar (a batch's mean loss) over every update since the last reset, weighted by batch size.

    ``update(value, weight)`` adds ``value * weight`` and ``weight``; ``compute()`` divides the sums (NaN before the
    first update). Under DDP the sums add up over ranks first, so the mean is over every rank's samples.
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")  # sum of value * weight
        self.add_state("weight", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, value: Tensor, weight: int = 1) -> None:
        """``value`` a scalar tensor (detached here), ``weight`` the number of samples it averages."""
        if value.numel() != 1:
            raise ValueError(f"LossMean expects a scalar, got a tensor of shape {tuple(value.shape)}")
        self.total += value.detach().reshape(()).double() * weight
        self.weight += weight

    def compute(self) -> Tensor:
        return (self.total / self.weight).float()
