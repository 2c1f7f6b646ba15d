"""How good a frozen representation is: a linear probe and a k-NN classifier on its features.

    >>> train_f = extract_features(model, train_images, preprocess=dm.preprocess)   # doctest: +SKIP
    >>> knn_accuracy(train_f, train_y, test_f, test_y, k=200)                         # doctest: +SKIP

Used by ``SimCLR`` at test time, and from the command line to score any encoder on Fashion-MNIST the same
way (the baselines next to SimCLR's figures: the same backbone with random weights, or trained with labels):

    python -m zoo.evaluation.feature_eval random:resnet20            # untrained ResNet-20 (seed 0)
    python -m zoo.evaluation.feature_eval resnet20.fashionmnist      # a shipped entry, trained with labels
    python -m zoo.evaluation.feature_eval path/to/simclr.ckpt        # a training checkpoint (SimCLR or a classifier)
    python -m zoo.evaluation.feature_eval resnet20.fashionmnist --stage 2   # layer2's map, average-pooled
    python -m zoo.evaluation.feature_eval path/to/simclr.ckpt --fraction 0.01 --subset-seed 1   # 1% of the labels

The probe and k-NN are fitted on the labelled features of the datamodule's training split (54,000 images; never
the validation or test split), or with ``--fraction`` on a class-balanced, seeded share of them (``label_subset``:
the images ``train_fraction`` keeps, so supervised runs on that share read the same labels), and measured on
the 10,000 test images. Each run records its row (the figures, the encoder, the exact command, the machine and
versions) in ``docs/results/feature_eval.json`` (``--results``), keyed by source, stage, share and subset seed;
``python -m zoo.tools.model_card`` renders the encoder table of docs/models/self-supervised.md from that file.

The probes themselves (``extract_features``, ``knn_accuracy``, ``linear_probe_accuracy``) live with SimCLR, in
``zoo.models.selfsupervised.probes``, and are re-exported here.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from datamodules import FashionMNISTDataModule
from datamodules.base import stratified_subset
from zoo.core.base import ClassifierModule
from zoo.evaluation.results_file import provenance, write_row
from zoo.hub.create import create_model
from zoo.hub.download import sha256_file
from zoo.hub.manifest import is_pretrained_name, pretrained_entry
from zoo.hub.pretrained import load_trained
from zoo.models.selfsupervised.probes import encode, extract_features, knn_accuracy, linear_probe_accuracy

__all__ = [
    "FEATURE_EVAL_RESULTS", "describe_encoder", "encode", "extract_features", "knn_accuracy", "label_subset",
    "linear_probe_accuracy", "load_encoder", "main", "score",
]  # fmt: skip

#: The results file the command writes, relative to the repository root.
FEATURE_EVAL_RESULTS = "docs/results/feature_eval.json"
#: The fields that key a row: a new measurement of the same encoder, features and labels replaces the old row.
ROW_KEY = ("source", "stage", "train_fraction", "subset_seed")


def _repository() -> Path:
    """The checkout's root (not ``__file__``'s parents: ``python -m zoo.feature_eval`` runs this code without a file)."""
    import zoo.evaluation

    return Path(zoo.evaluation.__file__).resolve().parents[2]


def load_encoder(source: str, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """``random:<model name>`` (untrained, seed 0), else a checkpoint, ``.safetensors`` file or entry (``load_trained``)."""
    if source.startswith("random:"):
        torch.manual_seed(0)
        return create_model(source.split(":", 1)[1], in_channels=in_channels, image_size=image_size, num_classes=num_classes)
    return load_trained(source)


def label_subset(labels: Tensor, fraction: float, seed: int) -> Tensor:
    """Positions (n,) of a class-balanced share ``fraction`` of ``labels`` (N,), drawn with ``seed``: the share of each
    class that ``FashionMNISTDataModule(train_fraction=fraction, train_subset_seed=seed)`` keeps of its training split
    (``datamodules.base.stratified_subset``), nested as the fraction grows; every position for 1.0."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    positions = torch.arange(len(labels))
    return positions if fraction == 1.0 else stratified_subset(positions, labels, fraction, seed=seed)


def score(train_f: Tensor, train_y: Tensor, test_f: Tensor, test_y: Tensor, *, num_classes: int, k: int = 200,
          fraction: float = 1.0, subset_seed: int = 0, probe_steps: int = 100) -> dict[str, Any]:  # fmt: skip
    """Linear-probe and k-NN test accuracy of frozen features, both fitted on the labels of ``label_subset``'s share.

    Args:
        train_f: features of the training split, (N, F).
        train_y: their labels, (N,).
        test_f: features of the test split, (M, F).
        test_y: their labels, (M,).
        num_classes: classes of the labels.
        k: neighbours of the k-NN vote (fewer when the share holds fewer samples).
        fraction: share of each class of the training labels that probe and k-NN read.
        subset_seed: seed of that share.
        probe_steps: L-BFGS iterations of the linear probe.
    """
    keep = label_subset(train_y, fraction, subset_seed)  # (n,)
    f, y = train_f[keep], train_y[keep]
    return {
        "linear_probe_acc": linear_probe_accuracy(f, y, test_f, test_y, num_classes=num_classes, steps=probe_steps),
        "knn_acc": knn_accuracy(f, y, test_f, test_y, k=k, num_classes=num_classes),
        "k": min(k, len(keep)),
        "train_labels": len(keep),
        "test_images": len(test_f),
    }


def describe_encoder(source: str, model: nn.Module) -> dict[str, Any]:
    """What a row says about the encoder: how its weights were trained (``random``, ``self-supervised`` or ``labels``),
    its architecture, its parameters, and whether ``source`` is a shipped entry (with the SHA-256 of its weights)."""
    network = getattr(model, "backbone", model)  # SimCLR: the backbone's features are the representation
    entry = not Path(source).is_file() and is_pretrained_name(source)
    if source.startswith("random:"):
        weights, arch = "random", source.split(":", 1)[1]
    elif network is not model:
        weights, arch = "self-supervised", f"{type(model).__name__}, backbone {model.hparams.get('backbone', type(network).__name__)}"
    else:
        weights = "labels" if isinstance(model, ClassifierModule) else "other"
        arch = pretrained_entry(source)["arch"] if entry else type(model).__name__
    args = dict(model.hparams.get("backbone_args") or {}) if network is not model else {}
    return {
        "weights": weights,
        "arch": arch,
        "arch_args": args,
        "params": sum(p.numel() for p in network.parameters()),
        "entry": entry,
        "sha256": pretrained_entry(source)["sha256"] if entry else (sha256_file(source) if Path(source).is_file() else None),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m zoo.evaluation.feature_eval", description="Linear-probe and k-NN accuracy of an encoder's frozen features on Fashion-MNIST's test set.")
    parser.add_argument("source", help="random:<model name>, a shipped entry (resnet20.fashionmnist) or a .ckpt path")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's folder (default: the datamodule's search)")
    parser.add_argument("--k", type=int, default=200, help="neighbours of the k-NN vote")
    parser.add_argument("--stage", type=int, default=None,
                        help="score the average-pooled map of this stage (an index into the encoder's feature_info) instead of its final features")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of each class of the training labels that probe and k-NN read (default: 1)")
    parser.add_argument("--subset-seed", type=int, default=0, help="seed of that share (default: 0)")
    parser.add_argument("--results", default=str(_repository() / FEATURE_EVAL_RESULTS), help=f"the results file the row goes into (default: {FEATURE_EVAL_RESULTS})")
    parser.add_argument("--hardware-note", default="", help="appended to the row's hardware field (say, that the machine was shared)")
    args = parser.parse_args(argv)
    if not 0.0 < args.fraction <= 1.0:
        parser.error(f"--fraction must lie in (0, 1], got {args.fraction}")

    record = provenance("python -m zoo.evaluation.feature_eval " + shlex.join(argv), args.hardware_note)
    start, cpu_start = time.perf_counter(), time.process_time()
    dm = FashionMNISTDataModule(data_dir=args.data_dir)
    dm.prepare_data()
    dm.setup("test")
    channels, size = dm.input_shape[0], dm.input_shape[-1]
    model = load_encoder(args.source, channels, size, dm.num_classes)
    train_x, train_y = dm.train_set.tensors
    test_x, test_y = dm.test_set.tensors
    train_f = extract_features(model, train_x, preprocess=dm.preprocess, stage=args.stage)
    test_f = extract_features(model, test_x, preprocess=dm.preprocess, stage=args.stage)
    result = score(train_f, train_y, test_f, test_y, num_classes=dm.num_classes, k=args.k, fraction=args.fraction, subset_seed=args.subset_seed)
    full = args.fraction == 1.0
    row = {
        "source": args.source, "stage": args.stage, "train_fraction": args.fraction, "subset_seed": None if full else args.subset_seed,
        **result, **describe_encoder(args.source, model),
        "seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(time.process_time() - cpu_start, 1), **record,
    }  # fmt: skip
    where = "" if args.stage is None else f" stage {args.stage}"
    labels = "" if full else f", {args.fraction:g} of the labels (subset seed {args.subset_seed})"
    print(f"{args.source}{where}: linear_probe_acc={row['linear_probe_acc']:.4f} knn_acc={row['knn_acc']:.4f} (k={row['k']}, "
          f"{row['train_labels']} training, {row['test_images']} test features{labels}) -> {write_row(args.results, row, key=ROW_KEY)}")  # fmt: skip
    return row


if __name__ == "__main__":
    main()
