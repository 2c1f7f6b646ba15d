"""What the image-generating models (autoencoders, GANs) share: pixel space and image logging.

Zoo datamodules hand models *normalized* images, ``(pixels - mean) / std``; generated and reconstructed
images are *pixels* in [0, 1]. ``GenerativeModule`` holds an ``ImageInput`` (``zoo.core.preprocessing``): it
records the per-channel ``mean``/``std`` (and class names) in its hyperparameters, so in every checkpoint
(from the datamodule when fit starts, or as arguments), and converts between the two with them. Figures go
to the logger when it takes images (TensorBoard, Weights & Biases), else to PNG files under the run's log
folder (``zoo.figures``).
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor

from zoo.core.base import ZooModule
from zoo.core.preprocessing import ImageInput, ImagePreprocessing, exposes_image_input
from zoo.viz.figures import figure_to_image, save_or_log_image  # noqa: F401  (their home before zoo.viz.figures)

__all__ = ["GenerativeModule", "figure_to_image", "save_or_log_image"]

log = logging.getLogger(__name__)


@exposes_image_input
class GenerativeModule(ZooModule):
    """Base of the models that output images: pixel-space conversion with the normalization the model recorded
    (its ``image_input``, ``zoo.core.preprocessing.ImageInput``, exposed through ``ImageInputMembers``).

    Args:
        in_channels: image channels.
        image_size: side of the square images.
        mean: per-channel mean of the normalization the model reads (images in [0, 1]); None: none.
        std: per-channel standard deviation of that normalization; None: none.
        class_names: one name per class, in label order, or None.
        **kwargs: ``ZooModule``'s arguments.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        class_names: list[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.image_input = ImageInput(self, mean=mean, std=std, class_names=class_names)
        if in_channels < 1 or image_size < 1:
            raise ValueError(f"in_channels and image_size must be >= 1, got {in_channels}, {image_size}")
        self.in_channels = in_channels
        self.image_size = image_size
        mean = self.hparams.mean
        if mean is not None and len(mean) not in (1, in_channels):
            raise ValueError(f"{type(self).__name__} reads {in_channels}-channel images: mean and std need 1 or {in_channels} values, got {mean}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.image_size, self.image_size)

    def to_pixels(self, x: Tensor) -> Tensor:
        """Normalized model input (B, C, H, W) -> pixels in [0, 1]."""
        return self.denormalize(x).clamp(0.0, 1.0)

    def to_input(self, pixels: Tensor) -> Tensor:
        """Pixels in [0, 1] (B, C, H, W) -> normalized model input."""
        return self.normalize(pixels)

    def on_fit_start(self) -> None:
        """Record the datamodule's normalization and class names, so checkpoints convert pixels on their own."""
        super().on_fit_start()
        self.image_input.record_from(getattr(self.trainer, "datamodule", None))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints from before the normalization was a hyperparameter kept it in ``pixel_mean`` /
        ``pixel_std`` buffers: record it as the hyperparameters now hold it."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("state_dict", {})
        if "pixel_mean" in state and "pixel_std" in state:
            mean, std = state.pop("pixel_mean").tolist(), state.pop("pixel_std").tolist()
            if self.hparams.get("mean") is None and (any(mean) or any(s != 1 for s in std)):
                self.record_preprocessing(mean, std)
