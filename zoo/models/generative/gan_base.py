"""What the generative adversarial networks share (Goodfellow et al., 2014): an MLP GAN, the conditional GAN
(Mirza & Osindero, 2014) and DCGAN (Radford et al., 2016) train through ``GANModule``.

A conditional discriminator reads the label one of three ways (``conditioning``). "concat" (Mirza & Osindero)
appends a label embedding to its input; "projection" (Miyato & Koyama, 2018, "cGANs with Projection
Discriminator") adds the inner product of a class embedding with the discriminator's last features to its
logit, ``D(x, y) = head(phi(x)) + embed(y) . phi(x)``, so the score depends on whether image and label match;
"auxiliary" (AC-GAN, Odena et al., 2017) never shows the discriminator the label: a second head classifies
its features, learns the classes on real images (cross-entropy, weighted ``aux_weight``), and the generator
is trained to make that head name the class it was asked for. The last is the direct lever on what a judge
classifier measures: whether a sample is recognisably of its class.

Training is Lightning's manual optimization with two optimizers, read top to bottom in ``training_step``:
a discriminator step on every batch (``d_loss``: real -> 1, fake -> 0, BCE with logits) and a generator
step every ``d_steps`` batches (``g_loss``: the non-saturating loss, fake -> 1). The generator works in
[-1, 1] (tanh); real images are mapped there with the normalization the model recorded (its ``mean``
and ``std`` hyperparameters: the datamodule's, kept in every checkpoint), and everything the model
returns (``forward``, ``predict``, ``zoo.generate``) is pixels in [0, 1].

The models: ``GAN`` (MLPs, and the conditional ``cgan``) in ``zoo.models.generative.gan``, ``DCGAN`` in
``zoo.models.generative.dcgan``.

    >>> model = zoo.create_model("cgan")                                   # doctest: +SKIP
    >>> images = zoo.generate(model, labels=[0, 5, 9], n=4)                # (12, 1, 28, 28)
    zoo-generate --checkpoint best.ckpt --out grid.png                     # a PNG grid, one row per class
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.utils import make_grid

from zoo.models.generative.base import GenerativeModule
from zoo.viz.figures import save_or_log_image, should_draw

__all__ = ["GANModule", "LabelledDiscriminator", "add_label_heads", "conditioned", "projected"]


class GANModule(GenerativeModule):
    """Shared training of the GANs; subclasses build ``self.generator`` and ``self.discriminator``.

    ``generator(z, labels)`` maps noise (B, latent_dim) to images (B, C, H, W) in [-1, 1];
    ``discriminator(images, labels)`` returns one logit per image (B, 1). ``labels`` is None unless
    ``conditional``.

    Args:
        latent_dim: size of the noise vector z.
        conditional: condition both networks on the class label (cGAN).
        num_classes: number of classes (conditional only).
        embedding_dim: size of the label embedding concatenated to the generator's noise, and to the discriminator's
            input when ``conditioning`` is "concat" (conditional only).
        conditioning: how the discriminator reads the label: "concat" (an embedding appended to its input),
            "projection" (a class embedding's inner product with its last features, added to the logit) or
            "auxiliary" (not at all: a class head on its features, AC-GAN).
        aux_weight: weight of the auxiliary classification loss in both networks' losses ("auxiliary" only).
        d_steps: discriminator steps per generator step.
        beta1: Adam's first-moment decay (0.5, as in DCGAN, steadies the adversarial game).
        num_sample_images: images in the sample grid logged each epoch, from a fixed noise buffer.
        **kwargs: ``GenerativeModule``'s ``in_channels``, ``image_size`` and normalization, then ``ZooModule``'s
            ``optimizer`` and ``lr``, for both networks ("adam" with ``beta1``; "sgd" and "adamw" are accepted
            too); ``scheduler`` must stay "none".
    """

    # No loss tells a better generator: the CLI keeps the latest checkpoint (GANQualityMetrics logs val/fid).
    monitor = None
    monitor_mode = "min"
    training_state = ("d_updates", "g_updates", "fixed_noise", "fixed_labels")  # not weights: pretrained= leaves them fresh
    # The discriminator step leaves the generator without gradients (its images are detached), so DDP must
    # not wait for them; Lightning 2 no longer turns this on by itself (ZooModule.setup passes it on).
    ddp_options = {"find_unused_parameters": True}

    def __init__(
        self,
        *,
        latent_dim: int = 100,
        conditional: bool = False,
        num_classes: int = 10,
        embedding_dim: int = 10,
        conditioning: str = "concat",
        aux_weight: float = 1.0,
        d_steps: int = 1,
        beta1: float = 0.5,
        num_sample_images: int = 64,
        **kwargs,
    ) -> None:
        kwargs.setdefault("optimizer", "adam")
        kwargs.setdefault("lr", 2e-4)
        super().__init__(**kwargs)
        if self.hparams.scheduler != "none":
            raise ValueError("GANs step their optimizers themselves: scheduler must be 'none'")
        if latent_dim < 1 or d_steps < 1 or num_sample_images < 1:
            raise ValueError(f"latent_dim, d_steps and num_sample_images must be >= 1, got {latent_dim}, {d_steps}, {num_sample_images}")
        if conditional and num_classes < 2:
            raise ValueError(f"a conditional GAN needs num_classes >= 2, got {num_classes}")
        if conditioning not in ("concat", "projection", "auxiliary"):
            raise ValueError(f"conditioning must be 'concat', 'projection' or 'auxiliary', got {conditioning!r}")
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        if num_classes < 1 or embedding_dim < 1:
            raise ValueError(f"num_classes and embedding_dim must be >= 1, got {num_classes}, {embedding_dim}")
        self.automatic_optimization = False
        self.latent_dim = latent_dim
        self.conditional = conditional
        self.num_classes = num_classes
        # Fixed noise (and labels: one class per row) for comparable sample grids; saved in checkpoints.
        generator = torch.Generator().manual_seed(1234)
        self.register_buffer("fixed_noise", torch.randn(num_sample_images, latent_dim, generator=generator))
        self.register_buffer("fixed_labels", torch.arange(num_sample_images) // max(1, math.ceil(num_sample_images / num_classes)))
        self.register_buffer("d_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("g_updates", torch.zeros((), dtype=torch.long))

    def label_embedding(self) -> nn.Embedding | None:
        """The generator's label embedding (B,) -> (B, embedding_dim); None when unconditional."""
        return nn.Embedding(self.num_classes, self.hparams.embedding_dim) if self.conditional else None

    def discriminator_conditioning(self, features: int) -> dict[str, nn.Module | None]:
        """The discriminator's label modules: ``embedding`` (appended to its input), ``projection`` (an embedding
        of width ``features``, the width of its last features) and ``classifier`` (features -> class logits)."""
        modules: dict[str, nn.Module | None] = {"embedding": None, "projection": None, "classifier": None}
        if self.conditional:
            kind = self.hparams.conditioning
            if kind == "concat":
                modules["embedding"] = self.label_embedding()
            elif kind == "projection":
                modules["projection"] = nn.Embedding(self.num_classes, features)
            else:
                modules["classifier"] = nn.Linear(features, self.num_classes)
        return modules

    def discriminate(self, images: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Images (B, C, H, W) in [-1, 1] -> (real/fake logit (B, 1), class logits (B, num_classes) or None)."""
        d = self.discriminator
        h = d.forward_features(images, labels)  # (B, F)
        classifier = getattr(d, "classifier", None)
        return d.forward_head(h, labels), None if classifier is None else classifier(h)

    def _aux_loss(self, class_logits: Tensor | None, labels: Tensor | None) -> Tensor | float:
        """The auxiliary classifier's cross-entropy, weighted (0 without an auxiliary classifier)."""
        return 0.0 if class_logits is None else self.hparams.aux_weight * F.cross_entropy(class_logits, labels)

    # -- generating ---------------------------------------------------------------------------------
    @property
    def example_input_array(self) -> Tensor:
        return torch.zeros(2, self.latent_dim)  # (B=2, latent_dim) noise

    def _labels_for(self, z: Tensor, labels: Tensor | None) -> Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is unconditional: it takes no labels")
            return None
        if labels is None:  # cycle through the classes
            return torch.arange(len(z), device=z.device) % self.num_classes
        labels = torch.as_tensor(labels, device=z.device).long()
        if labels.shape != (len(z),) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"labels must be (B,) = ({len(z)},) class ids in [0, {self.num_classes}), got {labels.tolist()}")
        return labels

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Noise (B, latent_dim) [and class ids (B,)] -> generated pixels (B, C, H, W) in [0, 1]."""
        if not isinstance(z, Tensor) or not z.is_floating_point() or z.ndim != 2 or z.shape[1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"{type(self).__name__} expects float noise of shape (B, latent_dim={self.latent_dim}), got {got}")
        return (self.generator(z, self._labels_for(z, labels)) + 1) / 2

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """One generated image per sample of the batch, of the sample's class when conditional: (B, C, H, W)."""
        if isinstance(batch, (tuple, list)):
            x, y = batch[0], batch[1] if len(batch) > 1 else None
        else:
            x, y = batch, None
        z = torch.randn(len(x), self.latent_dim, device=self.device)
        return self(z, y if self.conditional else None)

    # -- training -----------------------------------------------------------------------------------
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        real = self.to_pixels(x) * 2 - 1  # (B, C, H, W) in the generator's [-1, 1]
        labels = y if self.conditional else None
        b = len(real)
        ones, zeros = torch.ones(b, 1, device=self.device), torch.zeros(b, 1, device=self.device)
        opt_g, opt_d = self.optimizers()

        # discriminator: real -> 1, fake -> 0 (the generator's output detached)
        self.toggle_optimizer(opt_d)
        z = torch.randn(b, self.latent_dim, device=self.device)
        fake = self.generator(z, labels).detach()
        d_real, class_real = self.discriminate(real, labels)  # (B, 1), (B, K) or None
        d_fake, _ = self.discriminate(fake, labels)
        d_loss = F.binary_cross_entropy_with_logits(d_real, ones) + F.binary_cross_entropy_with_logits(d_fake, zeros)
        d_loss = d_loss + self._aux_loss(class_real, labels)  # AC-GAN: the class head learns on real images
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.d_updates += 1
        self.log("train/d_loss", d_loss.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=b, sync_dist=True)

        # generator, every d_steps discriminator steps: make the discriminator say 1 (non-saturating loss)
        if int(self.d_updates) % self.hparams.d_steps == 0:
            self.toggle_optimizer(opt_g)
            z = torch.randn(b, self.latent_dim, device=self.device)
            d_fake, class_fake = self.discriminate(self.generator(z, labels), labels)
            g_loss = F.binary_cross_entropy_with_logits(d_fake, ones) + self._aux_loss(class_fake, labels)  # and names their class
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.g_updates += 1
            self.log("train/g_loss", g_loss.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=b, sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """How well the discriminator tells held-out real images from fresh fakes (no updates)."""
        x, y = batch
        real = self.to_pixels(x) * 2 - 1
        labels = y if self.conditional else None
        z = torch.randn(len(x), self.latent_dim, device=self.device)
        fake = self.generator(z, labels)
        (d_real, class_real), (d_fake, _) = self.discriminate(real, labels), self.discriminate(fake, labels)
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy_with_logits(
            d_fake, torch.zeros_like(d_fake)
        )
        g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        self.log_dict({"val/d_loss": d_loss, "val/g_loss": g_loss}, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log("val/d_real_acc", (d_real > 0).float().mean(), batch_size=len(x), sync_dist=True)
        if class_real is not None:  # how well the auxiliary head knows the classes of held-out real images
            self.log("val/aux_acc", (class_real.argmax(dim=1) == labels).float().mean(), batch_size=len(x), sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        pass  # quality metrics come from GANQualityMetrics

    def configure_optimizers(self):
        """One optimizer per network, built like every zoo model's (no weight decay on biases and norm scales)."""
        options = {} if self.hparams.optimizer == "sgd" else {"betas": (self.hparams.beta1, 0.999)}
        return [self.build_optimizer(net.parameters(), **options) for net in (self.generator, self.discriminator)]  # G, D

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if not should_draw(self):  # rank 0 with a logger, outside smoke tests
            return
        with torch.no_grad():
            was_training = self.generator.training
            self.generator.eval()
            samples = self(self.fixed_noise, self.fixed_labels if self.conditional else None)  # (N, C, H, W)
            self.generator.train(was_training)
        nrow = math.ceil(len(samples) / self.num_classes) if self.conditional else int(math.sqrt(len(samples)))
        save_or_log_image(self, "samples", make_grid(samples.cpu(), nrow=nrow, padding=2, pad_value=1.0))


def conditioned(x: Tensor, embedding: nn.Embedding | None, labels: Tensor | None) -> Tensor:
    """Concatenate the label embedding (B, E) to flat inputs (B, F): (B, F + E)."""
    return x if embedding is None else torch.cat([x, embedding(labels)], dim=1)


class LabelledDiscriminator(nn.Module):
    """Base of the GAN discriminators: ``forward(images, labels) = forward_head(forward_features(images, labels), labels)``,
    a (B, 1) realness logit, reading the label the way the GAN's ``conditioning`` says (``discriminator_conditioning``).

    A subclass builds its layers after ``super().__init__(embedding)``, then calls ``add_label_heads(self, projection,
    classifier)``, and defines ``forward_features`` (B, F) and ``logit`` (the plain (B, 1) logit of the features);
    the projection term, when there is one, is added here.

    Args:
        embedding: the label embedding that "concat" joins to the layers' input, or None.
    """

    def __init__(self, embedding: nn.Embedding | None) -> None:
        super().__init__()
        self.embedding = embedding

    def forward_features(self, images: Tensor, labels: Tensor | None) -> Tensor:
        """(B, C, H, W) images -> (B, F) the features that the head (and the auxiliary classifier) read."""
        raise NotImplementedError

    def logit(self, features: Tensor, labels: Tensor | None) -> Tensor:
        """(B, F) features -> (B, 1) the logit before the projection term."""
        raise NotImplementedError

    def forward_head(self, features: Tensor, labels: Tensor | None) -> Tensor:
        return projected(self.logit(features, labels), features, getattr(self, "projection", None), labels)  # (B, 1)

    def forward(self, images: Tensor, labels: Tensor | None) -> Tensor:
        return self.forward_head(self.forward_features(images, labels), labels)  # (B, 1)


def add_label_heads(discriminator: nn.Module, projection: nn.Embedding | None, classifier: nn.Linear | None) -> None:
    """Register the projection embedding and the auxiliary classifier that exist; registered after the
    discriminator's own layers, so "concat" checkpoints keep their keys."""
    for name, module in (("projection", projection), ("classifier", classifier)):
        if module is not None:
            discriminator.add_module(name, module)


def projected(logit: Tensor, features: Tensor, projection: nn.Embedding | None, labels: Tensor | None) -> Tensor:
    """Add the projection term embed(y) . phi(x) (B, 1) to the logit (B, 1); features phi(x): (B, F)."""
    return logit if projection is None else logit + (projection(labels) * features).sum(dim=1, keepdim=True)
