"""Top-k predictions for raw images, through the model's own preprocessing: ``zoo.predict(model, images)``.

    >>> model = zoo.load_checkpoint("lightning_logs/version_0/checkpoints/best.ckpt")  # doctest: +SKIP
    >>> zoo.predict(model, ["shirt.png", "boot.png"], topk=3)                          # doctest: +SKIP
    [[('Shirt', 0.91), ('T-shirt/top', 0.05), ('Pullover', 0.02)], [...]]
    >>> model = zoo.create_model("resnet50", weights="IMAGENET1K_V2")                 # doctest: +SKIP
    >>> zoo.predict(model, "cat.jpg")                                                  # doctest: +SKIP

Each image goes through ``model.transforms()``: for ImageNet weights torchvision's resize 256 / center
crop 224 / ImageNet normalization, for a model trained on a zoo datamodule that datamodule's size,
normalization and class names, recorded in its hyperparameters. A raw uint8 image so gets exactly the
arithmetic of the datamodule's ``preprocess``, and the answer of the training pipeline. The command line
tool is ``zoo-predict`` (``python -m zoo.tools.predict``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from PIL import Image
from torch import Tensor

from zoo.core.base import ClassifierModule
from zoo.hub.pretrained import load_trained

__all__ = ["IMAGE_SUFFIXES", "ImageInput", "UnreadableImageError", "find_images", "load_image", "predict"]

ImageInput = str | os.PathLike | Image.Image | Tensor
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class UnreadableImageError(ValueError):
    """An image file that PIL cannot decode (empty, truncated, not an image); ``path`` names it."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot read image {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)


def load_image(path: str | os.PathLike) -> Image.Image:
    """The decoded image in ``path``; an ``UnreadableImageError`` naming the file when PIL cannot decode it."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, not later inside a batch
            return image.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:  # PIL's ways of saying "not an image"
        raise UnreadableImageError(path, str(e) or type(e).__name__) from e


def find_images(paths: Sequence[str | os.PathLike], suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[str]:
    """Image files among ``paths``: files as given, folders searched recursively (sorted; hidden files skipped).

    A path that does not exist is a ``FileNotFoundError``; a folder holding no image a ``ValueError``.
    """
    found: list[str] = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            inside = sorted(
                os.path.join(root, name)
                for root, dirs, names in os.walk(path)
                for name in names
                if name.lower().endswith(tuple(suffixes)) and not name.startswith(".")
            )
            if not inside:
                raise ValueError(f"no images ({', '.join(suffixes)}) under the folder {path}")
            found += inside
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


def _as_list(inputs: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(inputs, Tensor):
        return list(inputs) if inputs.ndim == 4 else [inputs]  # (B, C, H, W) -> B images
    if isinstance(inputs, (str, os.PathLike, Image.Image)):
        return [inputs]
    return list(inputs)


@torch.no_grad()
def predict(
    model: ClassifierModule | str | os.PathLike,
    inputs: ImageInput | Sequence[ImageInput],
    topk: int = 5,
    batch_size: int = 256,
) -> list[list[tuple[str, float]]]:
    """The ``topk`` most likely (label, probability) pairs for each image, most likely first.

    Args:
        model: a zoo classifier that reads images (every ``ImageClassifier``, an ``MLP`` or a
            ``RecurrentClassifier`` trained on images): it has ``transforms()``. Or a checkpoint path, or
            a shipped entry name (``"lenet5.fashionmnist"``, see ``zoo.list_pretrained()``).
        inputs: image file paths, PIL images, or tensors (C, H, W) / (B, C, H, W) of raw pixels
            (uint8, or float in [0, 1]); one input or a sequence of them.
        topk: how many classes to return per image (at most ``num_classes``).
        batch_size: images per forward pass.

    Labels are the model's class names (ImageNet's, or the datamodule's it was trained on), else the
    class indices as strings. A file PIL cannot decode raises ``UnreadableImageError`` (a ValueError) naming it.
    """
    if isinstance(model, (str, os.PathLike)):

        model = load_trained(model)
    if not hasattr(model, "transforms"):
        raise TypeError(f"{type(model).__name__} does not read images (it has no transforms()); zoo.predict needs an image classifier")
    transform = model.transforms()  # a ValueError for a model of tabular data or token ids
    images = _as_list(inputs)
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
                    batch.append(transform(load_image(item)))
                else:
                    batch.append(transform(item))
            probs = model.predict_step(torch.stack(batch).to(device), 0)  # (B, num_classes)
            top = probs.topk(k, dim=-1)
            for p_row, i_row in zip(top.values.tolist(), top.indices.tolist()):
                results.append([(names[i] if names else str(i), p) for p, i in zip(p_row, i_row)])
    finally:
        model.train(was_training)
    return results
