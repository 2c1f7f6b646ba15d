"""What a model that reads images carries with it: its normalization, class names and preprocessing.

``ImagePreprocessing`` turns one image (file, PIL image or tensor) into one model input sample, the way
the model was trained: ImageNet weights bring torchvision's recipe (resize 256, center crop 224,
ImageNet mean and std); a model trained on a zoo datamodule records that datamodule's normalization
and class names when fit starts (``ImageInput``, which every model that reads images holds), in its
hyperparameters and so in every checkpoint, so a loaded checkpoint predicts without the datamodule:

    >>> model = zoo.load_checkpoint("best.ckpt")                  # doctest: +SKIP
    >>> x = torch.stack([model.transforms()(img) for img in raw_uint8_images])  # (B, *input_shape)
    >>> model(x).argmax(-1)                                       # what the training pipeline answers
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from zoo.core.base import ZooModule

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageInput",
    "ImageInputMembers",
    "ImageInputMixin",
    "ImageInputModule",
    "ImagePreprocessing",
    "channel_stats",
    "exposes_image_input",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def channel_stats(mean: Sequence[float] | None, std: Sequence[float] | None, like: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel ``mean`` and ``std`` as (1, C, 1, 1) tensors on ``like``'s device and dtype, ready to broadcast
    over a (B, C, H, W) batch; None means no normalization (0 and 1). The one builder of these tensors: the
    models, the datamodules, the single-image preprocessing and the attacks all normalize with it."""
    to = {"device": like.device, "dtype": like.dtype}
    m = torch.tensor(list(mean) if mean is not None else [0.0], **to).view(1, -1, 1, 1)  # (1, C, 1, 1)
    s = torch.tensor(list(std) if std is not None else [1.0], **to).view(1, -1, 1, 1)  # (1, C, 1, 1)
    return m, s


class ImagePreprocessing:
    """Image -> normalized float tensor (C, H, W) (or ``output_shape``), like torchvision's ``weights.transforms()``.

    Steps: convert to ``channels`` (grey or RGB), resize the shorter side to ``resize_size`` (when
    given, else straight to ``crop_size`` x ``crop_size``), center-crop ``crop_size``, scale to [0, 1],
    normalize with ``mean`` and ``std``, and reshape to ``output_shape`` when given. A uint8 tensor
    already of the crop size goes through exactly the arithmetic of ``ImageDataModule.preprocess``.

    Args:
        crop_size: side of the square the model reads.
        resize_size: shorter side after resizing, before the center crop; None resizes to the crop.
        mean: per-channel mean of the training images in [0, 1].
        std: per-channel standard deviation.
        channels: 1 (grey) or 3 (RGB).
        class_names: one name per class, in label order, or None.
        output_shape: shape of one model input sample, when it is not the image tensor (C, crop, crop):
            (28, 28) for a recurrent model reading rows, (784,) for an MLP. None keeps (C, crop, crop).
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
        output_shape: Sequence[int] | None = None,
    ) -> None:
        self.crop_size = int(crop_size)
        self.resize_size = None if resize_size is None else int(resize_size)
        self.channels = int(channels)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        if len(self.mean) == 1 and self.channels > 1:
            self.mean, self.std = self.mean * self.channels, self.std * self.channels
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need 1 or {self.channels} values each, got {self.mean} and {self.std}")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.output_shape = None if output_shape is None else [int(d) for d in output_shape]
        if self.output_shape is not None and math.prod(self.output_shape) != self.channels * self.crop_size**2:
            raise ValueError(
                f"output_shape {self.output_shape} does not hold a ({self.channels}, {self.crop_size}, {self.crop_size}) image"
            )

    def to_dict(self) -> dict[str, Any]:
        """Primitive values only, so a checkpoint holding them loads with ``weights_only=True``."""
        return {
            "crop_size": self.crop_size,
            "resize_size": self.resize_size,
            "mean": self.mean,
            "std": self.std,
            "channels": self.channels,
            "class_names": self.class_names,
            "output_shape": self.output_shape,
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
        mean, std = channel_stats(self.mean, self.std, x)  # (1, C, 1, 1)
        x = (x - mean[0]) / std[0]  # (C, crop, crop): the datamodules' arithmetic, so results agree bit for bit
        return x if self.output_shape is None else x.reshape(self.output_shape)


def _floats(name: str, values: Sequence[float] | None) -> list[float] | None:
    if values is None:
        return None
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name} needs at least one value, got {values!r}")
    return out


class ImageInput:
    """What a model that reads (or writes) images records about them: the normalization and class names it
    was trained with. The model holds one as ``model.image_input`` (composition, the way torchvision's
    weights hold their ``transforms()``), built in its ``__init__`` from its ``mean``, ``std`` and
    ``class_names`` arguments.

    The values live in the model's hyperparameters, so every checkpoint carries them and the CLI links the
    datamodule's into those arguments; this object checks, records and applies them. ``record_from``, called
    when fit starts, records ``trainer.datamodule.normalization`` and ``class_names`` (Python API), and
    ``transforms()`` turns one raw image into one model input, exactly as the datamodule's ``preprocess`` does.
    The model reads images of shape ``model.image_shape`` (C, H, W) and takes inputs of ``model.input_shape``.
    """

    def __init__(
        self,
        model: Any,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        self.check(mean, std, class_names)
        self.model = model
        # save_hyperparameters() stored them as given; store them as plain lists.
        model.hparams.mean = _floats("mean", mean)
        model.hparams.std = _floats("std", std)
        model.hparams.class_names = None if class_names is None else [str(c) for c in class_names]

    @staticmethod
    def check(mean: Sequence[float] | None, std: Sequence[float] | None, class_names: Sequence[str] | None = None) -> None:
        """A ValueError unless ``mean`` and ``std`` are both given (same length, std > 0) or both None."""
        if (mean is None) != (std is None):
            raise ValueError(f"give both mean and std, or neither; got mean={mean!r}, std={std!r}")
        if mean is not None and len(mean) != len(std):
            raise ValueError(f"mean and std need the same number of values, got {list(mean)} and {list(std)}")
        if std is not None and any(float(s) <= 0 for s in std):
            raise ValueError(f"std values must be > 0, got {list(std)}")

    def __repr__(self) -> str:
        return f"ImageInput(mean={self.mean}, std={self.std}, class_names={self.class_names})"

    @property
    def mean(self) -> list[float] | None:
        return self.model.hparams.get("mean")

    @property
    def std(self) -> list[float] | None:
        return self.model.hparams.get("std")

    @property
    def class_names(self) -> list[str] | None:
        """One name per class in label order (the datamodule's, or ImageNet's), or None."""
        return self.model.hparams.get("class_names")

    def record(self, mean: Sequence[float] | None, std: Sequence[float] | None, class_names: Sequence[str] | None = None) -> None:
        """Record the normalization (and class names, when given) in the hyperparameters, so checkpoints keep them."""
        self.check(mean, std, class_names)
        try:
            channels = self.model.image_shape[0]
        except ValueError:  # a model that does not (yet) know its image shape, e.g. an MLP of tabular data
            channels = None
        if mean is not None and channels is not None and len(mean) not in (1, channels):
            raise ValueError(f"{type(self.model).__name__} reads {channels}-channel images: mean and std need 1 or {channels} values, got {list(mean)}")
        self.model.hparams.mean = _floats("mean", mean)
        self.model.hparams.std = _floats("std", std)
        if class_names is not None:
            self.model.hparams.class_names = [str(c) for c in class_names]

    def record_from(self, datamodule: Any) -> None:
        """Record a datamodule's normalization and class names (when it has them), so checkpoints predict on their own."""
        norm = getattr(datamodule, "normalization", None)
        if datamodule is None or not norm or not norm.get("mean"):
            return
        names = getattr(datamodule, "class_names", None)
        num_classes = getattr(self.model, "num_classes", None)
        if names is not None and num_classes is not None and len(names) != num_classes:
            names = None  # the datamodule's labels are not this model's
        self.record(norm["mean"], norm["std"], names)

    def transforms(self) -> ImagePreprocessing:
        """The preprocessing that turns one raw image into one input sample of the model."""
        model = self.model
        channels, height, width = model.image_shape
        if height != width:
            raise ValueError(f"{type(model).__name__} reads {height}x{width} images; transforms() handles square images only")
        output_shape = None if tuple(model.input_shape) == (channels, height, width) else list(model.input_shape)
        return ImagePreprocessing(
            crop_size=height,
            resize_size=model.hparams.get("resize_size"),
            mean=self.mean if self.mean is not None else (0.0,),
            std=self.std if self.std is not None else (1.0,),
            channels=channels,
            class_names=self.class_names,
            output_shape=output_shape,
        )

    # -- pixels <-> model input ---------------------------------------------------------------------
    def normalize(self, pixels: Tensor) -> Tensor:
        """(B, C, H, W) pixels in [0, 1] -> normalized model input (identity without a recorded mean/std)."""
        if self.mean is None:
            return pixels
        mean, std = channel_stats(self.mean, self.std, pixels)  # (1, C, 1, 1) each
        return (pixels - mean) / std

    def denormalize(self, x: Tensor) -> Tensor:
        """Normalized (B, C, H, W) -> pixels in [0, 1] (identity without a recorded mean/std)."""
        if self.mean is None:
            return x
        mean, std = channel_stats(self.mean, self.std, x)  # (1, C, 1, 1) each
        return x * std + mean


class ImageInputMembers:
    """The members through which a model exposes its ``image_input``: written once here, and copied into each
    class that holds an ``ImageInput`` (``ImageInputModule``, ``ImageClassifier``, ``GenerativeModule``) by
    ``exposes_image_input``. Not a base class, so no model gains an ancestor from it."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image; ``input_shape`` unless the model reads images in another shape."""
        return tuple(self.input_shape)

    @property
    def class_names(self) -> list[str] | None:
        """One name per class in label order (the datamodule's, or ImageNet's), or None."""
        return self.image_input.class_names

    def transforms(self) -> ImagePreprocessing:
        """The preprocessing that turns one raw image into one input sample of this model."""
        return self.image_input.transforms()

    def record_preprocessing(self, mean: Sequence[float] | None, std: Sequence[float] | None, class_names: Sequence[str] | None = None) -> None:
        """Record the normalization (and class names, when given) in the hyperparameters, so checkpoints keep them."""
        self.image_input.record(mean, std, class_names)

    def normalize(self, pixels: Tensor) -> Tensor:
        """(B, C, H, W) pixels in [0, 1] -> normalized model input (identity without a recorded mean/std)."""
        return self.image_input.normalize(pixels)

    def denormalize(self, x: Tensor) -> Tensor:
        """Normalized (B, C, H, W) -> pixels in [0, 1] (identity without a recorded mean/std)."""
        return self.image_input.denormalize(x)


_MEMBERS = ("image_shape", "class_names", "transforms", "record_preprocessing", "normalize", "denormalize")


def exposes_image_input(cls: type) -> type:
    """Class decorator: give ``cls`` the ``ImageInputMembers`` it does not define itself."""
    for name in _MEMBERS:
        if name not in cls.__dict__:
            setattr(cls, name, ImageInputMembers.__dict__[name])
    return cls


@exposes_image_input
class ImageInputModule(ZooModule):
    """A ``ZooModule`` that reads (or writes) images: it takes ``mean``, ``std`` and ``class_names`` and holds
    them as its ``image_input`` (``ImageInput``), whose methods it exposes (``ImageInputMembers``). ``MLP``, ``RecurrentClassifier``
    and ``SimCLR`` build on it; ``ImageClassifier`` and ``GenerativeModule`` hold an ``ImageInput`` themselves.

    A LightningModule base, not a mixin; ``ImageInputMixin``, its name before, stays an alias (the public API).
    Used as the first base: ``class MLP(ImageInputModule, ClassifierModule)``.

    Args:
        mean: per-channel mean of the normalization the model reads (images in [0, 1]); None: none.
        std: per-channel standard deviation of that normalization; None: none.
        class_names: one name per class, in label order, or None.
    """

    def __init__(
        self,
        *,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        class_names: list[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.image_input = ImageInput(self, mean=mean, std=std, class_names=class_names)

    def on_fit_start(self) -> None:
        """Record the datamodule's normalization and class names, so checkpoints predict on their own."""
        super().on_fit_start()
        self.image_input.record_from(getattr(self.trainer, "datamodule", None))


#: The public name of ``ImageInputModule`` before the packages by role (``zoo.ImageInputMixin``), kept for compatibility.
ImageInputMixin = ImageInputModule
