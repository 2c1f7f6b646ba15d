"""Top-k predictions for images: ``zoo.predict(model, inputs, topk=5)`` and ``python -m zoo.predict``.

    >>> model = zoo.create_model("resnet50", weights="IMAGENET1K_V2")            # doctest: +SKIP
    >>> zoo.predict(model, ["cat.jpg", "dog.png"], topk=3)                       # doctest: +SKIP
    [[('tabby', 0.61), ('tiger cat', 0.22), ('Egyptian cat', 0.11)], [...]]

    python -m zoo.predict --checkpoint lightning_logs/version_0/checkpoints/best.ckpt shirt.png boot.png
    python -m zoo.predict --model resnet18 --weights IMAGENET1K_V1 cat.jpg

Each image goes through the model's own preprocessing (``model.transforms()``): for ImageNet weights
torchvision's resize 256 / center crop 224 / ImageNet normalization, for a model trained on a zoo
datamodule that datamodule's size and normalization, recorded in its checkpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from zoo.base import ClassifierModule
from zoo.image import ImagePreprocessing
from zoo.registry import create_model, get_model_class

__all__ = ["load_for_prediction", "predict"]

# ``zoo`` re-exports ``predict``, so this module is imported with the package; that is expected when
# runpy then runs it as ``python -m zoo.predict``.
warnings.filterwarnings("ignore", message="'zoo.predict' found in sys.modules", category=RuntimeWarning)

ImageInput = str | os.PathLike | Image.Image | Tensor


def _preprocessing(model: ClassifierModule) -> ImagePreprocessing:
    if hasattr(model, "transforms"):
        return model.transforms()
    channels, _, size = model.input_shape  # a classifier without recorded preprocessing: size only
    return ImagePreprocessing(crop_size=size, channels=channels)


def _as_list(inputs: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(inputs, Tensor):
        return list(inputs) if inputs.ndim == 4 else [inputs]  # (B, C, H, W) -> B images
    if isinstance(inputs, (str, os.PathLike, Image.Image)):
        return [inputs]
    return list(inputs)


@torch.no_grad()
def predict(
    model: ClassifierModule,
    inputs: ImageInput | Sequence[ImageInput],
    topk: int = 5,
    batch_size: int = 64,
) -> list[list[tuple[str, float]]]:
    """The ``topk`` most likely (label, probability) pairs for each image, most likely first.

    Args:
        model: a zoo image classifier (or any ``ClassifierModule`` reading (C, H, W) images).
        inputs: image file paths, PIL images, or tensors (C, H, W) / (B, C, H, W) of raw pixels
            (uint8, or float in [0, 1]); one input or a sequence of them.
        topk: how many classes to return per image (at most ``num_classes``).
        batch_size: images per forward pass.

    Labels are the model's class names (ImageNet's, or the datamodule's it was trained on), else the
    class indices as strings.
    """
    images = _as_list(inputs)
    transform = _preprocessing(model)
    names = getattr(model, "class_names", None)
    k = min(topk, model.num_classes)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    results: list[list[tuple[str, float]]] = []
    try:
        for start in range(0, len(images), batch_size):
            batch = []
            for item in images[start : start + batch_size]:
                if isinstance(item, (str, os.PathLike)):
                    with Image.open(item) as image:
                        batch.append(transform(image))
                else:
                    batch.append(transform(item))
            probs = model.predict_step(torch.stack(batch).to(device), 0)  # (B, num_classes)
            top = probs.topk(k, dim=-1)
            for p_row, i_row in zip(top.values.tolist(), top.indices.tolist()):
                results.append([(names[i] if names else str(i), p) for p, i in zip(p_row, i_row)])
    finally:
        model.train(was_training)
    return results


def load_for_prediction(checkpoint: str | None = None, model: str | None = None, weights: str | None = None) -> ClassifierModule:
    """A model from a ``.ckpt`` (its class from the checkpoint, or the registry name ``model``), or ``create_model(model, weights=)``."""
    if checkpoint is None:
        if model is None:
            raise ValueError("give a checkpoint, or a model name (with weights=) to predict with")
        return create_model(model, **({"weights": weights} if weights else {}))
    if model is not None:
        cls: Any = get_model_class(model)
    else:
        hparams = torch.load(checkpoint, map_location="cpu", weights_only=True).get("hyper_parameters", {})
        class_path = hparams.get("_class_path")
        if not class_path:
            raise ValueError(f"{checkpoint} does not name its model class: pass the registry name (--model resnet20)")
        module, name = class_path.rsplit(".", 1)
        cls = getattr(__import__(module, fromlist=[name]), name)
    return cls.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)


def format_table(paths: Sequence[str], results: list[list[tuple[str, float]]]) -> str:
    """One block per image: rank, probability and label."""
    lines = []
    for path, top in zip(paths, results):
        lines.append(str(path))
        lines += [f"  {rank}. {p:7.2%}  {label}" for rank, (label, p) in enumerate(top, start=1)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.predict", description="Top-k classes of image files, as a table.")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", help="a .ckpt written by train.py or Lightning")
    parser.add_argument("--model", help="registry name: the checkpoint's model, or a model to build (with --weights)")
    parser.add_argument("--weights", help="torchvision ImageNet weights for --model, e.g. IMAGENET1K_V1")
    parser.add_argument("--topk", type=int, default=5, help="classes shown per image (default 5)")
    args = parser.parse_args(argv)
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        sys.exit(f"error: no such file: {', '.join(missing)}")
    try:
        model = load_for_prediction(args.checkpoint, args.model, args.weights)
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(format_table(args.images, predict(model, args.images, topk=args.topk)))


if __name__ == "__main__":
    main()
