"""``TopKAccuracy`` gives torchmetrics' micro accuracies, summed over batches and reset by ``reset()``; ``LossMean``
gives the sample-weighted mean of batch means."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from zoo.core.metrics import LossMean, TopKAccuracy


@pytest.mark.parametrize("num_classes,k", [(10, 5), (3, 1), (100, 5)])
def test_matches_torchmetrics_over_uneven_batches(num_classes, k):
    g = torch.Generator().manual_seed(num_classes)
    ours = MetricCollection({"acc": TopKAccuracy(num_classes, k=k)}).clone(prefix="val/")
    top1 = MulticlassAccuracy(num_classes, average="micro")
    topk = MulticlassAccuracy(num_classes, top_k=k, average="micro")
    for n in (32, 32, 7):  # a short last batch: the counts, not the batch means, are averaged
        logits, target = torch.randn(n, num_classes, generator=g), torch.randint(0, num_classes, (n,), generator=g)
        ours.update(logits, target), top1.update(logits, target), topk.update(logits, target)
    result = ours.compute()
    assert result["val/acc"].item() == pytest.approx(top1.compute().item(), abs=1e-7)
    if k > 1:
        assert result[f"val/acc_top{k}"].item() == pytest.approx(topk.compute().item(), abs=1e-7)
    else:
        assert set(result) == {"val/acc"}
    ours.reset()
    logits = torch.eye(num_classes)[[0, 1, 2, 0]]  # classes 0, 1, 2, 0 predicted for 0, 0, 2, 1: 2 of 4 right
    ours.update(logits, torch.tensor([0, 0, 2, 1]))
    assert ours.compute()["val/acc"].item() == 0.5


def test_a_wrong_shape_is_named():
    metric = TopKAccuracy(10)
    with pytest.raises(ValueError, match=r"\(B, 10\) logits"):
        metric.update(torch.randn(4, 7), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="k must be"):
        TopKAccuracy(3, k=5)


def test_loss_mean_weights_each_batch_by_its_size_and_resets():
    values = torch.rand(70)  # per-sample losses, read in batches of 32, 32 and 6
    mean = LossMean()
    for chunk in values.split(32):
        mean.update(chunk.mean(), len(chunk))
    assert torch.allclose(mean.compute(), values.mean()) and mean.compute().dtype == torch.float32
    mean.reset()
    mean.update(torch.tensor(2.5), 4)
    assert mean.compute().item() == 2.5
    with pytest.raises(ValueError, match="expects a scalar"):
        mean.update(torch.ones(3), 3)
