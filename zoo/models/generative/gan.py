"""Generative adversarial networks (Goodfellow et al., 2014): an MLP GAN, the conditional GAN (Mirza &
Osindero, 2014) and DCGAN (Radford et al., 2016).

A conditional discriminator reads the label one of two ways (``conditioning``). "concat" (Mirza & Osindero)
appends a label embedding to its input; "projection" (Miyato & Koyama, 2018, "cGANs with Projection
Discriminator") adds the inner product of a class embedding with the discriminator's last features to its
logit, ``D(x, y) = head(phi(x)) + embed(y) . phi(x)``: the score then depends on whether image and label
match, so a generator that draws the wrong class is punished directly. Projection makes samples far more
faithful to their class at the same cost.

Training is Lightning's manual optimization with two optimizers, read top to bottom in ``training_step``:
a discriminator step on every batch (``d_loss``: real -> 1, fake -> 0, BCE with logits) and a generator
step every ``d_steps`` batches (``g_loss``: the non-saturating loss, fake -> 1). The generator works in
[-1, 1] (tanh); real images are mapped there with the normalization the model recorded (its ``mean``
and ``std`` hyperparameters: the datamodule's, kept in every checkpoint), and everything the model
returns (``forward``, ``predict``, ``zoo.generate``) is pixels in [0, 1].

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

from zoo.core.registry import register_model
from zoo.models.generative.base import GenerativeModule
from zoo.viz.figures import save_or_log_image, should_draw

__all__ = ["DCGAN", "GAN", "GANModule"]


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
        conditioning: how the discriminator reads the label: "concat" (an embedding appended to its input) or
            "projection" (a class embedding's inner product with its last features, added to the logit).
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
        if conditioning not in ("concat", "projection"):
            raise ValueError(f"conditioning must be 'concat' or 'projection', got {conditioning!r}")
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

    def discriminator_conditioning(self, features: int) -> tuple[nn.Embedding | None, nn.Embedding | None]:
        """The discriminator's (input embedding, projection embedding); ``features``: the width of its last features."""
        if not self.conditional:
            return None, None
        if self.hparams.conditioning == "projection":
            return None, nn.Embedding(self.num_classes, features)
        return self.label_embedding(), None

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
        d_loss = F.binary_cross_entropy_with_logits(self.discriminator(real, labels), ones) + F.binary_cross_entropy_with_logits(
            self.discriminator(fake, labels), zeros
        )
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
            g_loss = F.binary_cross_entropy_with_logits(self.discriminator(self.generator(z, labels), labels), ones)
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
        d_real, d_fake = self.discriminator(real, labels), self.discriminator(fake, labels)
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy_with_logits(
            d_fake, torch.zeros_like(d_fake)
        )
        g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        self.log_dict({"val/d_loss": d_loss, "val/g_loss": g_loss}, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log("val/d_real_acc", (d_real > 0).float().mean(), batch_size=len(x), sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        pass  # quality metrics come from GANQualityMetrics

    def configure_optimizers(self):
        """One optimizer per network, built like every zoo model's (no weight decay on biases and norm scales)."""
        options = {} if self.hparams.optimizer == "sgd" else {"betas": (self.hparams.beta1, 0.999)}
        return [self.build_optimizer(net.parameters(), **options) for net in (self.generator, self.discriminator)]  # G, D

    def on_train_epoch_end(self) -> None:
        if not should_draw(self):  # rank 0 with a logger, outside smoke tests
            return
        with torch.no_grad():
            was_training = self.generator.training
            self.generator.eval()
            samples = self(self.fixed_noise, self.fixed_labels if self.conditional else None)  # (N, C, H, W)
            self.generator.train(was_training)
        nrow = math.ceil(len(samples) / self.num_classes) if self.conditional else int(math.sqrt(len(samples)))
        save_or_log_image(self, "samples", make_grid(samples.cpu(), nrow=nrow, padding=2, pad_value=1.0))


def _conditioned(x: Tensor, embedding: nn.Embedding | None, labels: Tensor | None) -> Tensor:
    """Concatenate the label embedding (B, E) to flat inputs (B, F): (B, F + E)."""
    return x if embedding is None else torch.cat([x, embedding(labels)], dim=1)


def _projected(logit: Tensor, features: Tensor, projection: nn.Embedding | None, labels: Tensor | None) -> Tensor:
    """Add the projection term embed(y) . phi(x) (B, 1) to the logit (B, 1); features phi(x): (B, F)."""
    return logit if projection is None else logit + (projection(labels) * features).sum(dim=1, keepdim=True)


class MLPGenerator(nn.Module):
    def __init__(self, latent_dim: int, out_shape: tuple[int, int, int], hidden: list[int], embedding: nn.Embedding | None) -> None:
        super().__init__()
        self.embedding, self.out_shape = embedding, out_shape
        widths = [latent_dim + (embedding.embedding_dim if embedding else 0), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], math.prod(out_shape)), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None) -> Tensor:
        return self.net(_conditioned(z, self.embedding, labels)).view(-1, *self.out_shape)  # (B, C, H, W)


class MLPDiscriminator(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        hidden: list[int],
        dropout: float,
        embedding: nn.Embedding | None,
        projection: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        self.embedding = embedding
        widths = [math.prod(in_shape) + (embedding.embedding_dim if embedding else 0), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 1))
        if projection is not None:  # registered after net: "concat" checkpoints keep their keys
            self.projection = projection

    def forward(self, images: Tensor, labels: Tensor | None) -> Tensor:
        h = self.net[:-1](_conditioned(images.flatten(1), self.embedding, labels))  # (B, hidden[-1])
        return _projected(self.net[-1](h), h, getattr(self, "projection", None), labels)  # (B, 1)


@register_model("gan")
class GAN(GANModule):
    """MLP GAN; ``conditional=True`` (registered as ``cgan``) concatenates a label embedding to the noise
    and, with ``conditioning="concat"``, to the discriminator's flattened input (or projects, see the module).

    Args:
        generator_sizes: hidden widths of the generator (LeakyReLU 0.2; tanh output).
        discriminator_sizes: hidden widths of the discriminator (LeakyReLU 0.2, dropout).
        dropout: discriminator dropout.
        **kwargs: ``GANModule``'s arguments (``latent_dim``, ``conditional``, ``num_classes``, ``embedding_dim``,
            ``d_steps``, ``beta1``, ``num_sample_images``) and its bases', documented there.
    """

    def __init__(
        self,
        *,
        generator_sizes: list[int] = [256, 512, 1024],  # noqa: B006
        discriminator_sizes: list[int] = [1024, 512, 256],  # noqa: B006
        dropout: float = 0.3,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if any(size < 1 for size in [*generator_sizes, *discriminator_sizes]):
            raise ValueError(f"generator_sizes and discriminator_sizes must all be >= 1, got {generator_sizes}, {discriminator_sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.generator = MLPGenerator(self.latent_dim, self.input_shape, list(generator_sizes), self.label_embedding())
        embedding, projection = self.discriminator_conditioning(discriminator_sizes[-1] if discriminator_sizes else math.prod(self.input_shape))
        self.discriminator = MLPDiscriminator(self.input_shape, list(discriminator_sizes), dropout, embedding, projection)


@register_model("cgan")
def cgan(**kwargs) -> GAN:
    """The conditional MLP GAN: ``GAN(conditional=True)``."""
    return GAN(**{"conditional": True, **kwargs})


class DCGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, side: int, width: int, embedding: nn.Embedding | None) -> None:
        super().__init__()
        self.embedding, self.width, self.side = embedding, width, side // 4
        in_features = latent_dim + (embedding.embedding_dim if embedding else 0)
        self.project = nn.Sequential(nn.Linear(in_features, 2 * width * self.side**2, bias=False), nn.BatchNorm1d(2 * width * self.side**2), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # (B, w, H/2, W/2)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),  # (B, C, H, W)
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None) -> Tensor:
        h = self.project(_conditioned(z, self.embedding, labels))  # (B, 2w * H/4 * W/4)
        return self.net(h.view(-1, 2 * self.width, self.side, self.side))


class DCDiscriminator(nn.Module):
    def __init__(self, channels: int, side: int, width: int, embedding: nn.Embedding | None, projection: nn.Embedding | None = None) -> None:
        super().__init__()
        self.embedding = embedding
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),  # (B, w, H/2, W/2); no norm on the input layer
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # (B, 2w, H/4, W/4)
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        features = 2 * width * (side // 4) ** 2 + (embedding.embedding_dim if embedding else 0)
        self.head = nn.Linear(features, 1)
        if projection is not None:
            self.projection = projection

    def forward(self, images: Tensor, labels: Tensor | None) -> Tensor:
        h = self.net(images)  # (B, 2w * H/4 * W/4)
        return _projected(self.head(_conditioned(h, self.embedding, labels)), h, getattr(self, "projection", None), labels)  # (B, 1)


@register_model("dcgan")
class DCGAN(GANModule):
    """DCGAN: transposed-convolution generator and strided-convolution discriminator, batch norm, no pooling.

    For image sides divisible by 4 (28 -> 14 -> 7). ``conditional=True`` concatenates a label embedding
    to the noise; the discriminator reads the label as ``conditioning`` says. With "concat" the embedding joins
    its flattened features right before the one linear head, where it can only shift the logit per class and
    never meets the image: use "projection" for a conditional DCGAN.

    Args:
        feature_maps: channels of the generator's last hidden layer and of the discriminator's first (doubled in the next).
        **kwargs: ``GANModule``'s arguments (``latent_dim``, ``conditional``, ``num_classes``, ``embedding_dim``,
            ``d_steps``, ``beta1``, ``num_sample_images``) and its bases', documented there.
    """

    def __init__(self, *, feature_maps: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.image_size % 4:
            raise ValueError(f"DCGAN needs an image side divisible by 4, got image_size={self.image_size}")
        if feature_maps < 1:
            raise ValueError(f"feature_maps must be >= 1, got {feature_maps}")
        c, s = self.in_channels, self.image_size
        self.generator = DCGenerator(self.latent_dim, c, s, feature_maps, self.label_embedding())
        self.discriminator = DCDiscriminator(c, s, feature_maps, *self.discriminator_conditioning(2 * feature_maps * (s // 4) ** 2))
        for m in self.modules():  # DCGAN's initialisation: N(0, 0.02) weights, N(1, 0.02) norm scales
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
