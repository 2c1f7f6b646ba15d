"""What the image classifiers (AlexNet, VGG, ResNet, ViT) share: input size, frozen backbones, preprocessing.

``ImagePreprocessing`` turns an image (file, PIL image or tensor) into the model's input the way it was
trained: ImageNet weights bring torchvision's recipe (resize 256, center crop 224, ImageNet mean and
std); a model trained on a zoo datamodule records that datamodule's normalization and class names when
fit starts, and keeps them in its checkpoint, so a loaded checkpoint predicts without the datamodule.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.transforms.v2 import functional as TF

from zoo.base import ClassifierModule

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageClassifier", "ImagePreprocessing"]

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImagePreprocessing:
    """Image -> normalized float tensor (C, H, W), like torchvision's ``weights.transforms()``.

    Steps: convert to ``channels`` (grey or RGB), resize the shorter side to ``resize_size`` (when
    given, else straight to ``crop_size`` x ``crop_size``), center-crop ``crop_size``, scale to [0, 1],
    normalize with ``mean`` and ``std``.

    Args:
        crop_size: side of the square the model reads.
        resize_size: shorter side after resizing, before the center crop; None resizes to the crop.
        mean: per-channel mean of the training images in [0, 1].
        std: per-channel standard deviation.
        channels: 1 (grey) or 3 (RGB).
        class_names: one name per class, in label order, or None.
    """

    def __init__(
        self,
        *,
        crop_size: int,
        resize_size: int | None = None,
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
        channels: int = 3,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.crop_size = int(crop_size)
        self.resize_size = None if resize_size is None else int(resize_size)
        self.channels = int(channels)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        if len(self.mean) == 1 and self.channels > 1:
            self.mean, self.std = self.mean * self.channels, self.std * self.channels
        self.class_names = None if class_names is None else [str(c) for c in class_names]

    def to_dict(self) -> dict[str, Any]:
        """Primitive values only, so a checkpoint holding them loads with ``weights_only=True``."""
        return {
            "crop_size": self.crop_size,
            "resize_size": self.resize_size,
            "mean": self.mean,
            "std": self.std,
            "channels": self.channels,
            "class_names": self.class_names,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImagePreprocessing:
        return cls(**d)

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.to_dict().items() if k != "class_names"}
        return f"ImagePreprocessing({', '.join(f'{k}={v}' for k, v in shown.items())})"

    def __call__(self, image: Any) -> Tensor:
        """A PIL image, or a uint8 / float (in [0, 1]) tensor (C, H, W) -> float tensor (channels, crop, crop)."""
        if isinstance(image, Tensor):
            if image.ndim == 2:
                image = image.unsqueeze(0)  # (1, H, W)
            if image.ndim != 3:
                raise ValueError(f"expected an image tensor of shape (C, H, W), got {tuple(image.shape)}")
            if image.shape[0] != self.channels:
                if image.shape[0] == 3 and self.channels == 1:
                    image = TF.rgb_to_grayscale(image)
                elif image.shape[0] == 1:
                    image = image.expand(self.channels, -1, -1)
                else:
                    raise ValueError(f"cannot turn a {image.shape[0]}-channel image into {self.channels} channels")
        else:  # PIL: resized by PIL, like torchvision's presets
            image = image.convert("L" if self.channels == 1 else "RGB")
        if self.resize_size is not None:
            image = TF.center_crop(TF.resize(image, [self.resize_size], antialias=True), [self.crop_size])  # shorter side, crop
        elif tuple(TF.get_size(image)) != (self.crop_size, self.crop_size):
            image = TF.resize(image, [self.crop_size, self.crop_size], antialias=True)
        x = image if isinstance(image, Tensor) else TF.pil_to_tensor(image)  # (C, crop, crop)
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return TF.normalize(x, self.mean, self.std)  # (C, crop, crop)


class ImageClassifier(ClassifierModule):
    """Base of the zoo's image classifiers: (B, in_channels, image_size, image_size) -> logits.

    Subclasses build ``self.head`` last and call ``self._finish_init()`` at the end of ``__init__``;
    ``stem_conv`` names the first convolution (for ``in_channels`` adaptation).

    Args:
        in_channels: image channels, 1 (grey) or 3 (colour).
        image_size: side of the square input.
        dropout: dropout before the classifier's linear layers.
        freeze_backbone: train only the head (``head``): every other parameter gets ``requires_grad=False``
            and the backbone's batch-norm layers keep their running statistics (they stay in eval mode).
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
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.image_size = image_size
        self.dropout = dropout
        self.freeze_backbone = freeze_backbone
        # Unnormalized pixels until a datamodule or pretrained weights say otherwise.
        self.preprocessing = ImagePreprocessing(crop_size=image_size, channels=in_channels)

    def _finish_init(self) -> None:
        if self.freeze_backbone:
            self.freeze_backbone_()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.image_size, self.image_size)

    # -- fine-tuning ------------------------------------------------------------------------------------
    def freeze_backbone_(self) -> None:
        """Only the head trains: every parameter outside ``head`` stops taking gradients."""
        self.freeze_backbone = True
        self.hparams.freeze_backbone = True
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith("head."))

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
        self.preprocessing.class_names = None  # the old labels no longer apply

    def adapt_input_channels(self, in_channels: int) -> None:
        """Make the first convolution read ``in_channels`` channels, keeping what its RGB filters learned.

        1 channel: the RGB filters summed (a grey image g gives the same response as the RGB image (g, g, g)).
        N channels: the RGB filters repeated cyclically and scaled by 3/N, so activations keep their scale.
        """
        conv: nn.Conv2d = self.get_submodule(self.stem_conv)
        old = conv.weight.data  # (O, C_old, k, k)
        if in_channels == old.shape[1]:
            return
        if in_channels == 1:
            new = old.sum(dim=1, keepdim=True)  # (O, 1, k, k)
        else:
            reps = -(-in_channels // old.shape[1])
            new = old.repeat(1, reps, 1, 1)[:, :in_channels] * (old.shape[1] / in_channels)  # (O, N, k, k)
        weight = nn.Parameter(new.contiguous(), requires_grad=conv.weight.requires_grad)
        conv.weight = weight
        conv.in_channels = in_channels
        log.info("%s: first convolution adapted from %d to %d input channels", type(self).__name__, old.shape[1], in_channels)
        self.in_channels = in_channels
        self.hparams.in_channels = in_channels
        p = self.preprocessing
        mean = (sum(p.mean) / len(p.mean),) if in_channels == 1 else (p.mean * in_channels)[:in_channels]
        std = (sum(p.std) / len(p.std),) if in_channels == 1 else (p.std * in_channels)[:in_channels]
        self.preprocessing = ImagePreprocessing(
            crop_size=p.crop_size, resize_size=p.resize_size, mean=mean, std=std, channels=in_channels, class_names=p.class_names
        )

    @property
    def class_names(self) -> list[str] | None:
        return self.preprocessing.class_names

    # -- preprocessing travels with the model -------------------------------------------------------------
    def transforms(self) -> ImagePreprocessing:
        """The preprocessing that turns one image into this model's input (see ``ImagePreprocessing``)."""
        return self.preprocessing

    def on_fit_start(self) -> None:
        """Record the datamodule's normalization and class names, so checkpoints predict on their own."""
        dm = getattr(self.trainer, "datamodule", None)
        norm = getattr(dm, "normalization", None)
        if dm is None or not norm or not norm.get("mean"):
            return
        names = getattr(dm, "class_names", None)
        self.preprocessing = ImagePreprocessing(
            crop_size=self.image_size,
            resize_size=getattr(dm, "resize_size", None),
            mean=norm["mean"],
            std=norm["std"],
            channels=self.in_channels,
            class_names=names if names and len(names) == self.num_classes else None,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["preprocessing"] = self.preprocessing.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "preprocessing" in checkpoint:
            self.preprocessing = ImagePreprocessing.from_dict(checkpoint["preprocessing"])

    def configure_optimizers(self) -> Any:
        if self.freeze_backbone:
            self.freeze_backbone_()  # a head replaced since __init__ trains; the rest stays frozen
        return super().configure_optimizers()
