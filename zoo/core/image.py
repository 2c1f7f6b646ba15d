"""What the image classifiers (LeNet-5, SimpleCNN, AlexNet, VGG, ResNet, ViT) share: input size,
frozen backbones, and the preprocessing they carry (``zoo.core.preprocessing.ImageInput``).

ImageNet weights bring torchvision's recipe (resize 256, center crop 224, ImageNet mean and std); a
model trained on a zoo datamodule records that datamodule's normalization and class names in its
hyperparameters when fit starts, so a loaded checkpoint predicts without the datamodule.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from zoo.core.base import ClassifierModule
from zoo.core.features import FeatureStage, run_intermediates
from zoo.core.preprocessing import IMAGENET_MEAN, IMAGENET_STD, ImageInput, ImagePreprocessing, exposes_image_input

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageClassifier", "ImagePreprocessing", "adapt_channel_stats", "adapt_conv_weight"]

log = logging.getLogger(__name__)


def adapt_conv_weight(weight: Tensor, in_channels: int) -> Tensor:
    """A convolution's kernel (O, C, k, k) made to read ``in_channels`` channels, keeping what its filters learned.

    1 channel: the filters summed over channels (a grey image g gives the same response as the RGB image (g, g, g)).
    N channels: the filters repeated cyclically and scaled by C/N, so activations keep their scale.
    """
    channels = weight.shape[1]
    if in_channels == channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)  # (O, 1, k, k)
    reps = -(-in_channels // channels)
    return (weight.repeat(1, reps, 1, 1)[:, :in_channels] * (channels / in_channels)).contiguous()  # (O, N, k, k)


def adapt_channel_stats(mean: list[float], std: list[float], in_channels: int) -> tuple[list[float], list[float]]:
    """Per-channel normalization for ``in_channels`` channels: averaged (1 channel) or repeated (N channels)."""
    if len(mean) == in_channels:
        return list(mean), list(std)
    if in_channels == 1:
        return [sum(mean) / len(mean)], [sum(std) / len(std)]
    return (list(mean) * in_channels)[:in_channels], (list(std) * in_channels)[:in_channels]


@exposes_image_input
class ImageClassifier(ClassifierModule):
    """Base of the zoo's image classifiers: (B, in_channels, image_size, image_size) -> logits.

    Subclasses build ``self.head`` in ``__init__``;
    ``stem_conv`` names the first convolution (for ``in_channels`` adaptation). The normalization and
    class names the model was trained with are hyperparameters, held as ``image_input``
    (``zoo.core.preprocessing.ImageInput``), so ``transforms()`` and ``zoo.predict`` read raw images the way
    the training pipeline did.

    Args:
        in_channels: image channels, 1 (grey) or 3 (colour).
        image_size: side of the square input.
        dropout: dropout before the classifier's linear layers.
        freeze_backbone: train only the head (``head``): every other parameter gets ``requires_grad=False``
            and the backbone's batch-norm layers keep their running statistics (they stay in eval mode).
        resize_size: ``transforms()`` resizes an image's shorter side to this before center-cropping
            ``image_size`` (ImageNet: 256 then 224); None resizes straight to ``image_size``.
        channels_last: keep the convolution kernels and the input batches in channels-last (NHWC) memory
            order, which oneDNN on CPUs and cuDNN on tensor-core GPUs run faster (LeNet-5 1.8x per training
            step on a 2-core CPU, see BENCHMARKS.md). Only the memory layout changes: the state-dict keys,
            shapes and values are the same, so checkpoints load either way.
        mean: per-channel mean of the normalization the model reads (images in [0, 1]); None: none.
        std: per-channel standard deviation of that normalization; None: none.
        class_names: one name per class, in label order, or None.
        **kwargs: ``ClassifierModule``'s arguments.
    """

    #: Attribute path of the first convolution, whose input channels ``adapt_input_channels`` changes.
    stem_conv: str = ""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        image_size: int = 32,
        dropout: float = 0.0,
        freeze_backbone: bool = False,
        resize_size: int | None = None,
        channels_last: bool = False,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        class_names: list[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.image_input = ImageInput(self, mean=mean, std=std, class_names=class_names)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if resize_size is not None and resize_size < image_size:
            raise ValueError(f"resize_size must be >= image_size ({image_size}) or None, got {resize_size}")
        names = self.hparams.get("class_names")
        if names is not None and len(names) != self.num_classes:
            raise ValueError(f"class_names has {len(names)} names for num_classes={self.num_classes}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.dropout = dropout
        self.freeze_backbone = freeze_backbone
        self.channels_last = channels_last

    def _after_init(self) -> None:
        """Once the layers exist: channels-last kernels and a frozen backbone, then ``compile`` (``ZooModule``).

        Weights copied in later by a builder (``zoo.hub``) keep both: ``load_state_dict`` keeps the memory
        layout and ``requires_grad``; a head replaced later is trainable, and ``configure_optimizers`` freezes again.
        """
        if self.channels_last:  # before compile traces the layers
            self.to(memory_format=torch.channels_last)  # 4-D kernels only; load_state_dict keeps the layout
        if self.freeze_backbone:
            self.freeze_backbone_()
        super()._after_init()

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, image_size, image_size) float -> (B, num_outputs) logits."""
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # same values, NHWC strides
        return super().forward(x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.image_size, self.image_size)

    # -- feature maps, timm's API (zoo.core.features) -----------------------------------------------
    def feature_stages(self) -> list[FeatureStage]:
        """The network as stages, input to last map (see ``zoo.core.features``); each model lists its own."""
        raise NotImplementedError(f"{type(self).__name__} does not list its feature stages")

    def forward_neck(self, x: Tensor) -> Tensor:
        """The last stage's output -> (B, num_features), the rest of ``forward_features`` (pooling, ...)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward_neck")

    def feature_map(self, x: Tensor, *, norm: bool = False) -> Tensor:
        """A stage's output as the (B, C, H, W) map ``forward_intermediates`` returns (ViT: tokens to a map)."""
        return x

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """One dict per stage, timm's: ``num_chs``, ``reduction`` (total stride), ``module`` (whose output it is)."""
        return [stage.info() for stage in self.feature_stages()]

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        *,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """timm's ``forward_intermediates``: (B, C, H, W) -> (final features (B, num_features), maps), or the maps.

        Args:
            x: a batch of ``input_shape`` images.
            indices: the stages whose maps are returned (``feature_info``): None every one, an int n the last
                n, a list those named (negative ones from the end).
            norm: apply the final norm to the maps where the model has one that fits them (ViT's LayerNorm).
            stop_early: run no stage after the last one asked for (with ``intermediates_only`` only).
            output_fmt: "NCHW" maps (B, C, H', W'), or "NLC" tokens (B, H' * W', C).
            intermediates_only: return the maps alone, without the final features.
        """
        self.check_input(x)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return run_intermediates(self, x, indices, norm=norm, stop_early=stop_early, output_fmt=output_fmt, intermediates_only=intermediates_only)

    # -- fine-tuning ------------------------------------------------------------------------------------
    def freeze_backbone_(self) -> None:
        """Only the head trains: every parameter outside ``head`` stops taking gradients."""
        self.freeze_backbone = True
        self.hparams.freeze_backbone = True
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith("head."))
        self.train(self.training)  # its batch norms to eval mode now: the Trainer does not call train() at fit start

    def unfreeze_backbone_(self) -> None:
        """Undo ``freeze_backbone_``: every parameter takes gradients and the batch norms train again (in train mode)."""
        self.freeze_backbone = False
        self.hparams.freeze_backbone = False
        self.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> ImageClassifier:
        """As ``nn.Module.train``, but a frozen backbone's batch norms stay in eval mode: a fixed feature extractor."""
        super().train(mode)
        if mode and self.freeze_backbone:
            for name, module in self.named_modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not name.startswith("head"):
                    module.eval()
        return self

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        self.hparams.class_names = None  # the old labels no longer apply

    def adapt_input_channels(self, in_channels: int) -> None:
        """Make the first convolution read ``in_channels`` channels, keeping what its RGB filters learned
        (``adapt_conv_weight``); the recorded normalization follows (``adapt_channel_stats``)."""
        conv: nn.Conv2d = self.get_submodule(self.stem_conv)
        old = conv.weight.data  # (O, C_old, k, k)
        if in_channels == old.shape[1]:
            return
        weight = nn.Parameter(adapt_conv_weight(old, in_channels), requires_grad=conv.weight.requires_grad)
        if self.channels_last:
            weight.data = weight.data.contiguous(memory_format=torch.channels_last)
        conv.weight = weight
        conv.in_channels = in_channels
        log.info("%s: first convolution adapted from %d to %d input channels", type(self).__name__, old.shape[1], in_channels)
        self.in_channels = in_channels
        self.hparams.in_channels = in_channels
        mean, std = self.hparams.get("mean"), self.hparams.get("std")
        if mean is not None:
            self.record_preprocessing(*adapt_channel_stats(mean, std, in_channels))

    # -- preprocessing travels with the model -------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Record the datamodule's normalization, class names and resize size (an ImageFolder's)."""
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        self.image_input.record_from(datamodule)
        resize = getattr(datamodule, "resize_size", None)
        if resize is not None:  # images were read shorter side to resize_size, then center-cropped
            self.hparams.resize_size = int(resize)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        # Checkpoints written before the normalization became hyperparameters kept it under "preprocessing".
        old = checkpoint.get("preprocessing")
        if isinstance(old, dict) and self.hparams.get("mean") is None and old.get("mean") is not None:
            self.record_preprocessing(old["mean"], old["std"], old.get("class_names"))
            if old.get("resize_size") is not None:
                self.hparams.resize_size = int(old["resize_size"])

    def configure_optimizers(self) -> Any:
        if self.freeze_backbone:
            self.freeze_backbone_()  # a head replaced since __init__ trains; the rest stays frozen
        return super().configure_optimizers()
