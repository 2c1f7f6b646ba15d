"""GAN quality without Inception weights: a zoo classifier trained on the same data judges the samples.

``GANQualityMetrics`` loads a zoo classifier checkpoint (say LeNet-5 trained with
configs/lenet5_fashionmnist.yaml) and, at the end of each validation, generates ``num_samples`` images
(the classes in turn, for a conditional GAN) and logs

* ``val/class_acc``: the share of generated images that the classifier assigns to the class they were
  asked for (conditional GANs only);
* ``val/fid``: the Fréchet distance between the classifier's features (``forward_features``, or with
  ``stage=i`` the average-pooled map of its i-th stage, ``forward_intermediates``) of real validation images
  and of generated ones: torchmetrics' ``FrechetInceptionDistance`` with the classifier as its feature
  extractor. Lower is better; values are comparable only for the same classifier and stage.

Both real and generated images reach the classifier as pixels normalized the way the classifier recorded
(its ``hparams.mean`` / ``std``); a classifier that recorded none is taken to read the GAN's normalization.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from zoo.core.base import ClassifierModule
from zoo.hub.checkpoint import load_checkpoint
from zoo.models.selfsupervised.probes import encode
from zoo.viz.progress import loop_progress, progress_bar

__all__ = ["ClassifierFeatures", "GANQualityMetrics", "classifier_input", "frechet_distance"]


class ClassifierFeatures(nn.Module):
    """A frozen zoo classifier as FID's feature extractor: normalized images (B, C, H, W) -> (B, num_features),
    or with ``stage`` the map of that stage (``feature_info``) averaged over its pixels, (B, num_chs)."""

    def __init__(self, classifier: ClassifierModule, stage: int | None = None) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.stage = stage
        if stage is None:
            self.num_features = classifier.num_features
        elif not hasattr(classifier, "feature_info"):
            raise ValueError(f"stage={stage}: a {type(classifier).__name__} has no feature stages; use stage=None")
        else:
            info = classifier.feature_info
            if not -len(info) <= stage < len(info):
                raise ValueError(f"stage={stage} is out of range: {type(classifier).__name__} has {len(info)} stages (0 to {len(info) - 1})")
            self.num_features = info[stage]["num_chs"]

    def forward(self, x: Tensor) -> Tensor:
        return encode(self.classifier, x, self.stage)

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)  # always in eval mode (dropout, batch-norm statistics)


def frechet_distance(classifier: ClassifierModule, stage: int | None = None) -> FrechetInceptionDistance:
    """torchmetrics' FID over ``classifier``'s features (``ClassifierFeatures``); ``update(x, real=...)`` takes the classifier's inputs."""
    return FrechetInceptionDistance(feature=ClassifierFeatures(classifier, stage), reset_real_features=True)


def classifier_input(classifier: nn.Module, gan: nn.Module, pixels: Tensor) -> Tensor:
    """Pixels (B, C, H, W) in [0, 1] -> what ``classifier`` reads: normalized with the statistics it recorded,
    else (a classifier that recorded none) with the GAN's, both trained on the same datamodule."""
    recorded = (getattr(classifier, "hparams", None) or {}).get("mean") is not None
    return classifier.normalize(pixels) if recorded and hasattr(classifier, "normalize") else gan.to_input(pixels)


class GANQualityMetrics(L.Callback):
    """Log ``val/class_acc`` and ``val/fid`` of a GAN's samples, judged by a zoo classifier checkpoint.

    Args:
        classifier: path of a zoo classifier checkpoint trained on the GAN's data.
        classifier_class: its class or registry name ("LeNet5", "lenet5") when the checkpoint does not record
            it; only the zoo's own classes are accepted (``zoo.load_checkpoint``).
        num_samples: real and generated images compared per validation.
        every_n_epochs: compute the metrics every this many epochs.
        batch_size: generated images per generator call.
        progress: a bar over the generated images on standard error: True, False, or None (on a terminal,
            unless a rich progress bar is live).
        stage: FID on the average-pooled map of this stage of the classifier (``feature_info``) instead of its
            ``forward_features``.
    """

    def __init__(
        self,
        classifier: str,
        classifier_class: str | None = None,
        num_samples: int = 2000,
        every_n_epochs: int = 1,
        batch_size: int = 500,
        progress: bool | None = None,
        stage: int | None = None,
    ) -> None:
        self.classifier_path = classifier
        self.classifier_class = classifier_class
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.batch_size = batch_size
        self.progress = progress
        self.stage = stage
        self.classifier: ClassifierModule | None = None
        self.fid: FrechetInceptionDistance | None = None
        self._real = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.classifier is None:
            classifier = load_checkpoint(self.classifier_path, model=self.classifier_class)
            if not isinstance(classifier, ClassifierModule):
                raise TypeError(f"{self.classifier_path} holds a {type(classifier).__name__}, not a zoo classifier")
            self.use_classifier(classifier)

    def use_classifier(self, classifier: ClassifierModule) -> None:
        """Judge with ``classifier``, a zoo classifier already in memory, instead of loading the checkpoint."""
        self.classifier = classifier.eval()
        self.fid = frechet_distance(classifier, self.stage)

    def _active(self, trainer: L.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fid.to(pl_module.device)
        self.fid.reset()
        self._real = 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self._active(trainer) or self._real >= self.num_samples:
            return
        x = batch[0][: self.num_samples - self._real]  # (B, C, H, W), normalized by the datamodule
        self.fid.update(classifier_input(self.classifier, pl_module, pl_module.to_pixels(x)), real=True)
        self._real += len(x)

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer) or self._real < 2:
            return

        shown = loop_progress(self.progress, trainer)
        bar = progress_bar(total=self.num_samples, desc="GAN metrics: generating", unit="image", progress=shown)
        correct, made = 0, 0
        while made < self.num_samples:
            n = min(self.batch_size, self.num_samples - made)
            z = torch.randn(n, pl_module.latent_dim, device=pl_module.device)
            labels = (torch.arange(made, made + n, device=pl_module.device) % pl_module.num_classes) if pl_module.conditional else None
            images = classifier_input(self.classifier, pl_module, pl_module(z, labels))  # generated pixels, as the classifier reads them
            self.fid.update(images, real=False)
            if labels is not None:
                correct += int((self.classifier(images).argmax(dim=1) == labels).sum())
            made += n
            bar.update(n)
        bar.close()
        pl_module.log("val/fid", self.fid.compute().float(), prog_bar=True)
        if pl_module.conditional:
            pl_module.log("val/class_acc", correct / made, prog_bar=True)
