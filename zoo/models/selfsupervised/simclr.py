"""SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual Representations").

A backbone from the registry (ResNet-20 by default) encodes two random views of each image; a projection
head maps the features to the space where the NT-Xent loss pulls the two views of an image together and
pushes the other 2B - 2 images of the batch away. The views are drawn on whole batches on the model's device
(``augment``): random resized crop, horizontal flip, brightness and contrast jitter, which suit grey images;
the datamodule's own augmentation stays off. After training, ``forward`` (the backbone's pooled features)
is the representation, and ``backbone`` is a plain zoo classifier: ``create_model("resnet20",
pretrained="<simclr.ckpt>")`` and the fine-tuning path take its weights, with a fresh head.

At test time the representation is scored on the test features (``zoo.feature_eval``): a linear probe (logistic
regression on frozen, standardized features of the training split) and weighted k-NN (cosine, k=200),
logged as ``test/linear_probe_acc`` and ``test/knn_acc``.
"""

from __future__ import annotations

import contextvars
import logging
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.base import ZooModule
from zoo.core.image import ImageClassifier
from zoo.core.preprocessing import ImageInputModule
from zoo.core.registry import get_builder, get_model_class, list_models, register_model
from zoo.models.selfsupervised.probes import extract_features, knn_accuracy, linear_probe_accuracy

__all__ = ["ProjectionHead", "SimCLR", "augment_views", "nt_xent_loss"]

log = logging.getLogger(__name__)


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """Normalized-temperature cross entropy over the 2B views of a batch (SimCLR's eq. 1, averaged).

    Each view's positive is the other view of its image; the self-pair is masked out of the softmax
    (its logit set to -inf, so exp() gives 0), not subtracted: a self-similarity subtracted to 0 (or
    left in) would still add exp(0) = 1 (or exp(1/T)) to every denominator.

    Args:
        z1: projections of the first views, (B, D).
        z2: projections of the second views, (B, D).
        temperature: the softmax temperature T.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent_loss expects two (B, D) batches of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D) on the unit sphere
    logits = (z @ z.T) / temperature  # (2B, 2B) cosine similarities / T
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pair, float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # view i <-> view i + B
    return F.cross_entropy(logits, positives)


def augment_views(
    pixels: Tensor,
    *,
    crop_scale: tuple[float, float] = (0.3, 1.0),
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    brightness: float = 0.4,
    contrast: float = 0.4,
) -> Tensor:
    """One random view of each image of a batch, drawn on the batch's device.

    Random resized crop (area in ``crop_scale``, aspect ratio in ``crop_ratio``, resized back by bilinear
    sampling: one ``affine_grid`` for the whole batch), horizontal flip, then brightness (x b) and contrast
    (about each image's mean, x c) factors drawn from [1 - s, 1 + s]; pixels are clamped to [0, 1].

    Args:
        pixels: images in [0, 1], (B, C, H, W).
        crop_scale: range of the crop's area as a share of the image.
        crop_ratio: range of the crop's aspect ratio (width / height), drawn log-uniformly.
        flip: mirror half of the views left-right.
        brightness: strength s of the brightness jitter (0: off).
        contrast: strength s of the contrast jitter (0: off).
    """
    b, device, dtype = pixels.shape[0], pixels.device, pixels.dtype

    def uniform(low: float, high: float) -> Tensor:
        return torch.empty(b, device=device, dtype=dtype).uniform_(low, high)  # (B,)

    area = uniform(*crop_scale)
    ratio = torch.exp(uniform(math.log(crop_ratio[0]), math.log(crop_ratio[1])))
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width / image width
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (torch.rand_like(w) * 2 - 1) * (1 - w)  # crop centre in [-1, 1] coordinates, crop inside the image
    cy = (torch.rand_like(h) * 2 - 1) * (1 - h)
    sign = torch.where(torch.rand_like(w) < 0.5, -1.0, 1.0) if flip else torch.ones_like(w)
    theta = torch.zeros(b, 2, 3, device=device, dtype=dtype)  # (B, 2, 3): output grid -> input coordinates
    theta[:, 0, 0], theta[:, 0, 2] = w * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)  # (B, H, W, 2)
    views = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, H, W)
    if brightness > 0:
        views = views * uniform(1 - brightness, 1 + brightness).view(b, 1, 1, 1)
    if contrast > 0:
        mean = views.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        views = (views - mean) * uniform(1 - contrast, 1 + contrast).view(b, 1, 1, 1) + mean
    return views.clamp(0.0, 1.0)


class ProjectionHead(nn.Module):
    """SimCLR's g(.): Linear -> BatchNorm -> ReLU -> Linear, features (B, F) -> projections (B, out)."""

    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_features))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


class SimCLR(ImageInputModule, ZooModule):
    """Self-supervised contrastive encoder: a zoo image backbone, a projection head and the NT-Xent loss.

    ``forward(x)`` gives the backbone's features (B, num_features) of normalized images; ``project(x)`` the
    projections the loss compares. Batches are ``(x, y)`` or ``x``; labels are never read in training, only
    by the test-time evaluation.

    Args:
        backbone: registry name of the image classifier whose ``forward_features`` is the encoder
            (``zoo.list_models()``; e.g. "resnet20", "simple_cnn", "vgg11_small").
        backbone_args: more constructor arguments for the backbone (e.g. {"layers": [1, 1, 1]}).
        in_channels: image channels.
        image_size: side of the square images.
        num_classes: classes of the labelled data: the size of the backbone's (unused, untrained) head,
            and of the test-time linear probe.
        projection_hidden: width of the projection head's hidden layer.
        projection_dim: size of the projections the loss compares.
        temperature: NT-Xent temperature.
        crop_scale: smallest crop area, as a share of the image, of the random resized crop (largest: 1).
        flip: random horizontal flips in the views.
        brightness: strength of the brightness jitter (factor in [1 - s, 1 + s]; 0: off).
        contrast: strength of the contrast jitter (0: off).
        knn_k: neighbours of the test-time k-NN classifier (cosine similarity, votes weighted by exp(sim / 0.1)).
        probe_steps: L-BFGS iterations of the test-time linear probe.
    """

    monitor = "val/loss"
    monitor_mode = "min"

    def __init__(
        self,
        *,
        backbone: str = "resnet20",
        backbone_args: dict[str, Any] | None = None,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        projection_hidden: int = 256,
        projection_dim: int = 128,
        temperature: float = 0.5,
        crop_scale: float = 0.3,
        flip: bool = True,
        brightness: float = 0.4,
        contrast: float = 0.4,
        knn_k: int = 200,
        probe_steps: int = 100,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)

        image_models = [n for n in list_models() if issubclass(get_model_class(n), ImageClassifier)]
        if backbone not in image_models:
            raise ValueError(f"backbone must be a registered image classifier, one of {image_models}; got {backbone!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 < crop_scale <= 1.0:
            raise ValueError(f"crop_scale must be in (0, 1], got {crop_scale}")
        if not (0.0 <= brightness < 1.0 and 0.0 <= contrast < 1.0):
            raise ValueError(f"brightness and contrast must be in [0, 1), got {brightness} and {contrast}")
        for name, value in (("projection_hidden", projection_hidden), ("projection_dim", projection_dim), ("knn_k", knn_k), ("num_classes", num_classes), ("probe_steps", probe_steps)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.image_size = image_size
        args = {**(backbone_args or {}), "in_channels": in_channels, "image_size": image_size, "num_classes": num_classes}
        args.update({k: self.hparams[k] for k in ("mean", "std") if self.hparams.get(k) is not None})
        # Built in an empty context: under LightningCLI every LightningModule constructed meanwhile would record the
        # CLI's arguments (SimCLR's) as its hyperparameters (Lightning's ``_given_hyperparameters``) instead of its own.
        self.backbone = contextvars.Context().run(get_builder(backbone), **args)
        # Its classifier head is not part of SimCLR: frozen, it takes no gradient and no optimizer slot.
        self.backbone.head.requires_grad_(False)
        self.projector = ProjectionHead(self.backbone.num_features, projection_hidden, projection_dim)
        self._test_features: list[Tensor] = []
        self._test_labels: list[Tensor] = []

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.image_size, self.image_size)

    @property
    def num_features(self) -> int:
        return self.backbone.num_features

    # -- network ------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Normalized images (B, C, H, W) -> representation (B, num_features): the backbone's pooled features."""
        return self.forward_features(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """The representation, (B, num_features): the backbone's ``forward_features``."""
        x = self.check_input(x)
        if getattr(self.backbone, "channels_last", False):  # as the backbone's own forward: NHWC kernels read NHWC batches
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone.forward_features(x)

    def forward_intermediates(self, x: Tensor, indices: int | list[int] | None = None, **options: Any) -> Any:
        """The backbone's ``forward_intermediates`` (timm's API; ``zoo.core.features``): its stages' maps."""
        return self.backbone.forward_intermediates(self.check_input(x), indices, **options)

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """The backbone's stages: channels, reduction and module of each map ``forward_intermediates`` returns."""
        return self.backbone.feature_info

    def project(self, x: Tensor) -> Tensor:
        """Normalized images (B, C, H, W) -> projections (B, projection_dim)."""
        return self.projector(self(x))

    def views(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Two independently augmented views of a normalized batch, normalized again: 2 x (B, C, H, W)."""
        hp = self.hparams
        pixels = self.denormalize(x).clamp(0.0, 1.0)  # (B, C, H, W) in [0, 1]
        options = dict(crop_scale=(hp.crop_scale, 1.0), flip=hp.flip, brightness=hp.brightness, contrast=hp.contrast)
        return self.normalize(augment_views(pixels, **options)), self.normalize(augment_views(pixels, **options))

    # -- steps --------------------------------------------------------------------------------------
    def _shared_step(self, batch: Tensor | tuple[Tensor, ...], stage: str) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        v1, v2 = self.views(self.check_input(x))
        z = self.project(torch.cat([v1, v2]))  # (2B, projection_dim): one pass, batch norm sees both views
        z1, z2 = z.chunk(2)
        loss = nt_xent_loss(z1, z2, self.hparams.temperature)
        self._log_loss(stage, loss, len(x))
        return loss

    def training_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "test")
        if isinstance(batch, (tuple, list)) and len(batch) > 1:
            self._test_features.append(self(batch[0]).float().cpu())  # (B, F) of the clean images
            self._test_labels.append(batch[1].cpu())
        return loss

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """The representation (B, num_features) of the batch's images."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    # -- evaluation of the representation -----------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._test_features, self._test_labels = [], []

    def on_test_epoch_end(self) -> None:
        """Linear probe and k-NN accuracy of the test features, trained on the datamodule's training split."""
        super().on_test_epoch_end()

        features, labels = self._test_features, self._test_labels
        self._test_features, self._test_labels = [], []
        dm = getattr(self.trainer, "datamodule", None)
        train_set = getattr(dm, "train_set", None)
        if not features or train_set is None or not hasattr(dm, "preprocess"):
            log.warning("SimCLR: no labelled test batches or no datamodule training split: linear probe and k-NN skipped")
            return
        test_f, test_y = torch.cat(features), torch.cat(labels)  # (N_test, F), (N_test,)
        train_x, train_y = train_set.tensors[0], train_set.tensors[1]
        train_f = extract_features(self, train_x, preprocess=dm.preprocess)  # (N_train, F)
        num_classes = self.hparams.num_classes
        knn = knn_accuracy(train_f, train_y, test_f, test_y, k=self.hparams.knn_k, num_classes=num_classes)
        probe = linear_probe_accuracy(train_f, train_y, test_f, test_y, num_classes=num_classes, steps=self.hparams.probe_steps)
        self.log("test/knn_acc", knn, sync_dist=True)
        self.log("test/linear_probe_acc", probe, sync_dist=True)

    # -- preprocessing travels with the backbone ----------------------------------------------------
    def on_fit_start(self) -> None:
        """Record the datamodule's normalization here and in the backbone (which fine-tuning starts from)."""
        super().on_fit_start()
        if self.hparams.get("mean") is not None:
            self.backbone.record_preprocessing(self.hparams.mean, self.hparams.std)
        dm = getattr(self.trainer, "datamodule", None)
        if getattr(dm, "random_crop_padding", 0) or getattr(dm, "horizontal_flip", False):
            log.warning("SimCLR draws its own views: turn the datamodule's augmentation off (random_crop_padding=0, horizontal_flip=false)")


register_model("simclr")(SimCLR)
