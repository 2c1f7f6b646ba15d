"""``zoo-predict`` (or ``python -m zoo.tools.predict``): the top-k classes of image files, as a table.

    zoo-predict --checkpoint lightning_logs/version_0/checkpoints/epoch009.ckpt shirt.png boot.png
    zoo-predict --model resnet18 --weights IMAGENET1K_V1 cat.jpg
    zoo-predict --checkpoint lenet5.fashionmnist shirt.png              # a shipped entry (zoo.list_pretrained())

The library function is ``zoo.predict``; checkpoints load through ``zoo.load_checkpoint``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from zoo.base import ClassifierModule
from zoo.inference import predict
from zoo.pretrained import PretrainedWeightsUnavailable, load_trained
from zoo.registry import create_model

__all__ = ["format_table", "load_model", "main"]


def load_model(checkpoint: str | None = None, model: str | None = None, weights: str | None = None) -> ClassifierModule:
    """The model of a ``.ckpt`` (``zoo.load_checkpoint``, ``model`` naming its class if it does not) or of a
    shipped entry name, or ``create_model(model, weights=weights)``, in eval mode."""
    if checkpoint is None:
        if model is None:
            raise ValueError("give a checkpoint, or a model name (with --weights) to predict with")
        return create_model(model, **({"weights": weights} if weights else {})).eval()
    if weights:
        raise ValueError("--weights builds a model from ImageNet weights; it does not combine with --checkpoint")
    loaded = load_trained(checkpoint, model=model)
    if not isinstance(loaded, ClassifierModule):
        raise ValueError(f"{checkpoint} holds a {type(loaded).__name__}, not a classifier")
    return loaded


def format_table(paths: Sequence[str], results: list[list[tuple[str, float]]]) -> str:
    """One block per image: rank, probability and label."""
    lines = []
    for path, top in zip(paths, results):
        lines.append(str(path))
        lines += [f"  {rank}. {p:7.2%}  {label}" for rank, (label, p) in enumerate(top, start=1)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zoo-predict", description="Top-k classes of image files, as a table.")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", help="a .ckpt written by train.py or Lightning, or a shipped entry name (lenet5.fashionmnist)")
    parser.add_argument("--model", help="registry name: the checkpoint's model, or a model to build (with --weights)")
    parser.add_argument("--weights", help="torchvision ImageNet weights for --model, e.g. IMAGENET1K_V1")
    parser.add_argument("--topk", type=int, default=5, help="classes shown per image (default 5)")
    args = parser.parse_args(argv)
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        sys.exit(f"error: no such file: {', '.join(missing)}")
    try:
        model = load_model(args.checkpoint, args.model, args.weights)
        results = predict(model, args.images, topk=args.topk)
    except (FileNotFoundError, ValueError, TypeError, PretrainedWeightsUnavailable) as e:
        sys.exit(f"error: {e}")
    print(format_table(args.images, results))


if __name__ == "__main__":
    main()
