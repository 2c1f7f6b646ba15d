"""How good a frozen representation is: a linear probe and a k-NN classifier on its features.

    >>> train_f = extract_features(model, train_images, preprocess=dm.preprocess)   # doctest: +SKIP
    >>> knn_accuracy(train_f, train_y, test_f, test_y, k=200)                         # doctest: +SKIP

Used by ``SimCLR`` at test time, and from the command line to score any encoder on Fashion-MNIST the same
way (the baselines next to SimCLR's figures: the same backbone with random weights, or trained with labels):

    python -m zoo.evaluation.feature_eval random:resnet20            # untrained ResNet-20 (seed 0)
    python -m zoo.evaluation.feature_eval resnet20.fashionmnist      # a shipped entry, trained with labels
    python -m zoo.evaluation.feature_eval path/to/simclr.ckpt        # a training checkpoint (SimCLR or a classifier)
    python -m zoo.evaluation.feature_eval resnet20.fashionmnist --stage 2   # layer2's map, average-pooled

The probes themselves (``extract_features``, ``knn_accuracy``, ``linear_probe_accuracy``) live with SimCLR, in
``zoo.models.selfsupervised.probes``, and are re-exported here.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from datamodules import FashionMNISTDataModule
from zoo.hub.create import create_model
from zoo.hub.pretrained import load_trained
from zoo.models.selfsupervised.probes import encode, extract_features, knn_accuracy, linear_probe_accuracy

__all__ = ["encode", "extract_features", "knn_accuracy", "linear_probe_accuracy", "main"]


def _load_encoder(source: str, in_channels: int, image_size: int, num_classes: int) -> nn.Module:
    """``random:<model name>`` (untrained, seed 0), else a checkpoint, ``.safetensors`` file or entry (``load_trained``)."""
    if source.startswith("random:"):
        torch.manual_seed(0)
        return create_model(source.split(":", 1)[1], in_channels=in_channels, image_size=image_size, num_classes=num_classes)
    return load_trained(source)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m zoo.evaluation.feature_eval", description="Linear-probe and k-NN accuracy of an encoder's frozen features on Fashion-MNIST's test set.")
    parser.add_argument("source", help="random:<model name>, a shipped entry (resnet20.fashionmnist) or a .ckpt path")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's folder (default: the datamodule's search)")
    parser.add_argument("--k", type=int, default=200, help="neighbours of the k-NN vote")
    parser.add_argument("--stage", type=int, default=None,
                        help="score the average-pooled map of this stage (an index into the encoder's feature_info) instead of its final features")
    args = parser.parse_args(argv)


    dm = FashionMNISTDataModule(data_dir=args.data_dir)
    dm.prepare_data()
    dm.setup("test")
    channels, size = dm.input_shape[0], dm.input_shape[-1]
    model = _load_encoder(args.source, channels, size, dm.num_classes)
    train_x, train_y = dm.train_set.tensors
    test_x, test_y = dm.test_set.tensors
    train_f = extract_features(model, train_x, preprocess=dm.preprocess, stage=args.stage)
    test_f = extract_features(model, test_x, preprocess=dm.preprocess, stage=args.stage)
    result = {
        "linear_probe_acc": linear_probe_accuracy(train_f, train_y, test_f, test_y, num_classes=dm.num_classes),
        "knn_acc": knn_accuracy(train_f, train_y, test_f, test_y, k=args.k, num_classes=dm.num_classes),
    }
    where = "" if args.stage is None else f" stage {args.stage}"
    print(f"{args.source}{where}: linear_probe_acc={result['linear_probe_acc']:.4f} knn_acc={result['knn_acc']:.4f} (k={args.k}, {len(train_f)} training, {len(test_f)} test features)")
    return result


if __name__ == "__main__":
    main()
