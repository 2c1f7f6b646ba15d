"""The MLP GAN (Goodfellow et al., 2014) and the conditional GAN (Mirza & Osindero, 2014): fully connected
generator and discriminator, trained by ``GANModule`` (``zoo.models.generative.gan_base``, where the ways of
conditioning are explained).

    >>> model = zoo.create_model("cgan", conditioning="auxiliary")       # doctest: +SKIP
    >>> images = zoo.generate(model, labels=[0, 5, 9], n=4)                # (12, 1, 28, 28)
"""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn

from zoo.core.registry import register_model
from zoo.models.generative.dcgan import DCGAN  # its home before it had a file of its own
from zoo.models.generative.gan_base import GANModule, LabelledDiscriminator, add_label_heads, conditioned

__all__ = ["DCGAN", "GAN", "GANModule"]


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
        return self.net(conditioned(z, self.embedding, labels)).view(-1, *self.out_shape)  # (B, C, H, W)


class MLPDiscriminator(LabelledDiscriminator):
    """Hidden ``Linear -> LeakyReLU(0.2) -> Dropout`` layers on the flattened image (and the label embedding), then one logit."""

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        hidden: list[int],
        dropout: float,
        embedding: nn.Embedding | None,
        projection: nn.Embedding | None = None,
        classifier: nn.Linear | None = None,
    ) -> None:
        super().__init__(embedding)
        widths = [math.prod(in_shape) + (embedding.embedding_dim if embedding else 0), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], 1))  # one Sequential: the shipped checkpoints' keys
        add_label_heads(self, projection, classifier)

    def forward_features(self, images: Tensor, labels: Tensor | None) -> Tensor:
        h = conditioned(images.flatten(1), self.embedding, labels)  # (B, C*H*W [+ E])
        for layer in itertools.islice(self.net, len(self.net) - 1):  # every layer but the logit, no new Sequential
            h = layer(h)
        return h  # (B, hidden[-1])

    def logit(self, features: Tensor, labels: Tensor | None) -> Tensor:
        return self.net[-1](features)  # (B, 1)


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
        features = discriminator_sizes[-1] if discriminator_sizes else math.prod(self.input_shape)
        self.discriminator = MLPDiscriminator(self.input_shape, list(discriminator_sizes), dropout, **self.discriminator_conditioning(features))


@register_model("cgan")
def cgan(**kwargs) -> GAN:
    """The conditional MLP GAN: ``GAN(conditional=True)``."""
    return GAN(**{"conditional": True, **kwargs})

