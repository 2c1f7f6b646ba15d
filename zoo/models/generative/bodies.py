"""The encoder and decoder networks the autoencoders and the VAE share: an MLP pair and a convolutional pair.

The autoencoders' encoders end in the code (``latent_dim``), the VAE's in the posterior's mean and log-variance
(``2 * latent_dim``); the autoencoders' decoders end in a sigmoid (pixels in [0, 1]), the VAE's in the
likelihood's parameters (logits or means). Layer for layer the same otherwise, so the state-dict keys of
each model are what they were when each model built its own.
"""

from __future__ import annotations

from torch import nn

from zoo.core.layers import make_activation

__all__ = ["conv_decoder", "conv_encoder", "mlp_decoder", "mlp_encoder"]


def mlp_encoder(features: int, hidden_sizes: list[int], activation: str, out_features: int) -> nn.Sequential:
    """(B, C, H, W) -> flatten -> [Linear -> activation] x hidden_sizes -> Linear -> (B, out_features)."""
    widths = [features, *hidden_sizes]
    layers: list[nn.Module] = [nn.Flatten()]  # (B, C*H*W)
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), make_activation(activation)]
    return nn.Sequential(*layers, nn.Linear(widths[-1], out_features))  # (B, out_features)


def mlp_decoder(latent_dim: int, hidden_sizes: list[int], activation: str, features: int, *, sigmoid: bool) -> nn.Sequential:
    """(B, latent_dim) -> [Linear -> activation] x reversed(hidden_sizes) -> Linear -> (B, features) [-> sigmoid]."""
    widths = [latent_dim, *reversed(hidden_sizes)]
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), make_activation(activation)]
    layers.append(nn.Linear(widths[-1], features))  # (B, C*H*W)
    return nn.Sequential(*layers, *([nn.Sigmoid()] if sigmoid else []))


def conv_encoder(in_channels: int, image_size: int, channels: list[int], out_features: int) -> nn.Sequential:
    """(B, C, H, W) -> two stride-2 3x3 convolutions with ReLU -> flatten -> Linear -> (B, out_features); H, W divisible by 4."""
    c1, c2 = channels
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, stride=2, padding=1),  # (B, c1, H/2, W/2)
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, stride=2, padding=1),  # (B, c2, H/4, W/4)
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c2 * side * side, out_features),  # (B, out_features)
    )


def conv_decoder(latent_dim: int, in_channels: int, image_size: int, channels: list[int], *, sigmoid: bool) -> nn.Sequential:
    """(B, latent_dim) -> Linear -> two stride-2 transposed convolutions -> (B, C, H, W) [-> sigmoid]: ``conv_encoder`` mirrored."""
    c1, c2 = channels
    side = image_size // 4
    return nn.Sequential(
        nn.Linear(latent_dim, c2 * side * side),
        nn.ReLU(),
        nn.Unflatten(1, (c2, side, side)),  # (B, c2, H/4, W/4)
        nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),  # (B, c1, H/2, W/2)
        nn.ReLU(),
        nn.ConvTranspose2d(c1, in_channels, 3, stride=2, padding=1, output_padding=1),  # (B, C, H, W)
        *([nn.Sigmoid()] if sigmoid else []),
    )
