"""DCGAN (Radford et al., 2016): a transposed-convolution generator and a strided-convolution discriminator,
trained by ``GANModule`` (``zoo.models.generative.gan_base``) like the MLP GAN, conditional or not.

    >>> model = zoo.create_model("dcgan", conditional=True, conditioning="projection")   # doctest: +SKIP
"""

from __future__ import annotations

from torch import Tensor, nn

from zoo.core.registry import register_model
from zoo.models.generative.gan_base import GANModule, LabelledDiscriminator, add_label_heads, conditioned

__all__ = ["DCGAN"]


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
        h = self.project(conditioned(z, self.embedding, labels))  # (B, 2w * H/4 * W/4)
        return self.net(h.view(-1, 2 * self.width, self.side, self.side))


class DCDiscriminator(LabelledDiscriminator):
    """Two strided convolutions (batch norm on the second, LeakyReLU 0.2), flattened, then one logit that "concat" feeds the label too."""

    def __init__(
        self,
        channels: int,
        side: int,
        width: int,
        embedding: nn.Embedding | None,
        projection: nn.Embedding | None = None,
        classifier: nn.Linear | None = None,
    ) -> None:
        super().__init__(embedding)
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
        add_label_heads(self, projection, classifier)

    def forward_features(self, images: Tensor, labels: Tensor | None) -> Tensor:
        return self.net(images)  # (B, 2w * H/4 * W/4)

    def logit(self, features: Tensor, labels: Tensor | None) -> Tensor:
        return self.head(conditioned(features, self.embedding, labels))  # (B, 1)


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
        self.discriminator = DCDiscriminator(c, s, feature_maps, **self.discriminator_conditioning(2 * feature_maps * (s // 4) ** 2))
        for m in self.modules():  # DCGAN's initialisation: N(0, 0.02) weights, N(1, 0.02) norm scales
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)


@register_model("cdcgan")
def cdcgan(**kwargs) -> DCGAN:
    """The conditional DCGAN: ``DCGAN(conditional=True, conditioning="auxiliary")``, an AC-GAN whose
    discriminator classifies what it sees (see ``zoo.models.generative.gan_base`` for the other ways)."""
    return DCGAN(**{"conditional": True, "conditioning": "auxiliary", **kwargs})
