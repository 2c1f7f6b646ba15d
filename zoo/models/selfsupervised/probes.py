"""How good a frozen representation is: a linear probe and a k-NN classifier on its features.

    >>> train_f = extract_features(model, train_images, preprocess=dm.preprocess)   # doctest: +SKIP
    >>> knn_accuracy(train_f, train_y, test_f, test_y, k=200)                         # doctest: +SKIP

``SimCLR`` runs both at test time; ``zoo.evaluation.feature_eval`` scores any encoder on Fashion-MNIST the
same way from the command line. The features are an encoder's ``forward_features`` (B, F), or with ``stage=i``
the map of its i-th stage (``forward_intermediates``, timm's API), globally average-pooled to (B, C_i).

The linear probe is multinomial logistic regression on the standardized features of the training split
(full-batch L-BFGS, L2 penalty); k-NN is the weighted vote of Wu et al. (2018) used to monitor SimCLR-style
training: cosine similarity, the k = 200 nearest training features vote with weight exp(sim / 0.1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["encode", "extract_features", "knn_accuracy", "linear_probe_accuracy"]


def encode(model: nn.Module, x: Tensor, stage: int | None = None) -> Tensor:
    """Features (B, F) of normalized images: a classifier's (or SimCLR's) ``forward_features``; with ``stage``, the
    map of that stage (``forward_intermediates``, an index into ``model.feature_info``) averaged over its pixels."""
    if stage is None:
        return model.forward_features(x) if hasattr(model, "forward_features") else model(x)
    if not callable(getattr(model, "forward_intermediates", None)):
        raise ValueError(f"stage={stage}: a {type(model).__name__} has no feature stages (forward_intermediates); use stage=None")
    (fmap,) = model.forward_intermediates(x, [stage], intermediates_only=True)  # (B, C, H', W')
    return fmap.mean(dim=(2, 3))  # (B, C)


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: Tensor,
    *,
    preprocess: Callable[[Tensor], Tensor] | None = None,
    batch_size: int = 1024,
    stage: int | None = None,
) -> Tensor:
    """Features (N, F), float32 on the CPU, of ``images`` (N, C, H, W), ``preprocess``-ed batch by batch
    (a datamodule's ``preprocess``: uint8 -> normalized float), with the model in eval mode; ``stage`` as ``encode``'s."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        x = preprocess(x) if preprocess is not None else x
        out.append(encode(model, x, stage).float().cpu())  # (b, F)
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def knn_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
    chunk: int = 1024,
) -> float:
    """Share of test samples whose weighted k-NN vote (cosine similarity; weight exp(sim / temperature))
    among the training features names their label."""
    if len(train_features) == 0 or len(test_features) == 0:
        raise ValueError("knn_accuracy needs training and test features")
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, len(train_features))
    bank = F.normalize(train_features.float(), dim=1)  # (N, F)
    train_labels = train_labels.long()
    correct = 0
    for start in range(0, len(test_features), chunk):
        query = F.normalize(test_features[start : start + chunk].float(), dim=1)  # (b, F)
        sim, idx = (query @ bank.T).topk(k, dim=1)  # (b, k)
        votes = torch.zeros(len(query), num_classes)
        votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp())  # (b, classes)
        correct += int((votes.argmax(1) == test_labels[start : start + chunk].long()).sum())
    return correct / len(test_features)


def linear_probe_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    *,
    num_classes: int | None = None,
    steps: int = 100,
    l2: float = 1e-4,
) -> float:
    """Test accuracy of logistic regression fitted on the (standardized) training features by full-batch L-BFGS."""
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    # Callers run inside Lightning's test loop (inference mode): fitting needs autograd on plain tensors.
    with torch.inference_mode(False), torch.enable_grad():
        train_f, test_f = train_features.float().clone(), test_features.float().clone()
        mean, std = train_f.mean(0), train_f.std(0).clamp_min(1e-6)
        train_f, test_f = (train_f - mean) / std, (test_f - mean) / std  # (N, F): one step size fits every feature
        y = train_labels.long().clone()
        probe = nn.Linear(train_f.shape[1], num_classes)
        optimizer = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(probe(train_f), y) + l2 * probe.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            return float((probe(test_f).argmax(1) == test_labels.long()).float().mean())
