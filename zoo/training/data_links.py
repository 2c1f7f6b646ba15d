"""Which datamodule attribute the CLI links into which model argument (``zoo.training.cli``), and how it converts it.

``input_shape`` gives ``in_channels``, ``image_size``, ``in_features`` and ``image_shape``; ``normalization`` gives
``mean`` and ``std``; the rest pass as they are. The CLI makes a link only for an argument the chosen model takes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["DATA_LINKS"]


def _channels(shape: tuple[int, ...]) -> int | None:
    return shape[0] if len(shape) == 3 else None


def _image_size(shape: tuple[int, ...]) -> int | None:
    return shape[-1] if len(shape) == 3 and shape[-1] == shape[-2] else None


def _num_features(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _image_shape(shape: tuple[int, ...]) -> list[int] | None:
    return list(shape) if len(shape) == 3 else None  # (C, H, W) images; None for vectors and sequences


def _mean(normalization: dict[str, list[float]] | None) -> list[float] | None:
    return None if normalization is None else list(normalization["mean"])


def _std(normalization: dict[str, list[float]] | None) -> list[float] | None:
    return None if normalization is None else list(normalization["std"])


#: Model argument -> (datamodule attribute, conversion or None). A link is made only when the chosen model
#: takes the argument; a datamodule that lacks the attribute leaves the model's default.
DATA_LINKS: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "num_classes": ("num_classes", None),
    "in_channels": ("input_shape", _channels),
    "image_size": ("input_shape", _image_size),
    "in_features": ("input_shape", _num_features),
    "image_shape": ("input_shape", _image_shape),
    "mean": ("normalization", _mean),
    "std": ("normalization", _std),
    "class_names": ("class_names", None),
    # Sequence data: vocabularies (as primitives, so checkpoints decode text), sizes and lengths.
    "vocab_size": ("vocab_size", None),
    "tokenizer": ("tokenizer", None),
    "src_vocab_size": ("src_vocab_size", None),
    "tgt_vocab_size": ("tgt_vocab_size", None),
    "src_tokenizer": ("src_tokenizer", None),
    "tgt_tokenizer": ("tgt_tokenizer", None),
    "input_size": ("num_series", None),
    "target_std": ("target_std", None),
    "target": ("target", None),
    "window": ("window", None),
    "horizon": ("horizon", None),
}
