"""Autoencoders: fully connected and convolutional, with an optional denoising mode.

``forward(x)`` reads a normalized batch, the way the datamodule serves it, and returns the reconstruction
as pixels in [0, 1]; ``encode`` gives the latent code. With ``noise_std`` > 0 the encoder reads the image
plus Gaussian noise of that std (in pixel units, drawn afresh for every batch) and the target stays the
clean image. Test metrics: MSE and PSNR in pixel space. At the end of each validation a grid of (input,
noisy input, reconstruction) and a scatter of the latent codes coloured by class (2-D, or 3-D when
``latent_dim`` is 3; the first principal components otherwise) are logged as images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanSquaredError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio

from zoo.core.registry import register_model
from zoo.models.generative.base import GenerativeModule, figure_to_image, save_or_log_image
from zoo.models.generative.bodies import conv_decoder, conv_encoder, mlp_decoder, mlp_encoder
from zoo.viz.figures import should_draw

__all__ = ["Autoencoder", "AutoencoderModule", "ConvAutoencoder"]


class AutoencoderModule(GenerativeModule):
    """Shared steps of the autoencoders; subclasses build ``self.encoder`` and ``self.decoder``.

    ``ZooModule``'s train / validation / test steps, with a ``_shared_step`` of its own: the loss compares
    the reconstruction with the clean image, in pixels.

    Args:
        latent_dim: size of the code.
        noise_std: denoising mode: std of the Gaussian noise added to the input pixels (0: plain autoencoder).
        num_logged_images: images per row of the reconstruction grid.
        num_latent_points: validation samples shown in the latent scatter plot.
        **kwargs: ``GenerativeModule``'s ``in_channels``, ``image_size``, ``mean``, ``std``, ``class_names``, then
            ``ZooModule``'s optimizer arguments.
    """

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        noise_std: float = 0.0,
        num_logged_images: int = 8,
        num_latent_points: int = 2000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        self.latent_dim = latent_dim
        self.noise_std = noise_std
        self._set_stage_metrics(MetricCollection({"mse": MeanSquaredError(), "psnr": PeakSignalNoiseRatio(data_range=1.0)}))
        self._latents: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._grid: Tensor | None = None

    # -- network ------------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Normalized images (B, C, H, W) -> codes (B, latent_dim)."""
        return self.encoder(self.check_input(x))

    def decode(self, z: Tensor) -> Tensor:
        """Codes (B, latent_dim) -> pixels (B, C, H, W) in [0, 1]."""
        return self.decoder(z).view(-1, *self.input_shape)

    def forward(self, x: Tensor) -> Tensor:
        """Normalized images (B, C, H, W) -> reconstructed pixels (B, C, H, W) in [0, 1]."""
        return self.decode(self.encode(x))

    # -- steps --------------------------------------------------------------------------------------
    def corrupt(self, pixels: Tensor) -> Tensor:
        """The encoder's input in pixel space: the image plus N(0, noise_std^2) noise (denoising mode)."""
        return pixels + self.noise_std * torch.randn_like(pixels) if self.noise_std > 0 else pixels

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        pixels = self.to_pixels(x)  # (B, C, H, W) clean target in [0, 1]
        noisy = self.corrupt(pixels)
        z = self.encode(self.to_input(noisy))  # (B, latent_dim)
        recon = self.decode(z)  # (B, C, H, W)
        loss = F.mse_loss(recon, pixels)
        metrics = self._metrics(stage)
        metrics.update(recon.detach(), pixels)
        self._log_loss(stage, loss, len(x))
        if stage == "val" and not self.trainer.sanity_checking:
            self._collect(pixels, noisy, recon, z, y)
        return loss

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """Reconstructed pixels (B, C, H, W)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    # -- figures at the end of validation -----------------------------------------------------------
    def _collect(self, pixels: Tensor, noisy: Tensor, recon: Tensor, z: Tensor, y: Tensor) -> None:
        if self._grid is None:
            n = min(self.hparams.num_logged_images, len(pixels))
            self._grid = torch.cat([pixels[:n], noisy[:n].clamp(0, 1), recon[:n]]).detach().cpu()  # (3n, C, H, W)
        if sum(len(t) for t in self._latents) < self.hparams.num_latent_points:
            self._latents.append(z.detach().float().cpu())
            self._labels.append(y.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        from torchvision.utils import make_grid


        if self._grid is None or not should_draw(self):  # rank 0 with a logger, outside smoke tests
            self._grid, self._latents, self._labels = None, [], []
            return

        n = len(self._grid) // 3
        save_or_log_image(self, "val/reconstructions", make_grid(self._grid, nrow=n, padding=2, pad_value=1.0))
        latents = torch.cat(self._latents)[: self.hparams.num_latent_points]
        labels = torch.cat(self._labels)[: self.hparams.num_latent_points]
        names = self.class_names or getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        save_or_log_image(self, "val/latent_space", figure_to_image(latent_scatter(latents, labels, names)))
        self._grid, self._latents, self._labels = None, [], []


def latent_scatter(latents: Tensor, labels: Tensor, class_names: list[str] | None = None):
    """A matplotlib figure: codes (N, D) coloured by class; 3-D axes when D = 3, the first two
    principal components when D > 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = latents.shape[1]
    if dims > 3:
        centred = latents - latents.mean(0)
        _, _, v = torch.pca_lowrank(centred, q=2, center=False)
        points, axis_names = centred @ v[:, :2], ("PC 1", "PC 2")
    else:
        points, axis_names = latents, ("z1", "z2", "z3")[:dims]
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d") if dims == 3 else fig.add_subplot()
    columns = [points[:, i].numpy() for i in range(points.shape[1])]
    if len(columns) == 1:
        columns.append(torch.zeros(len(points)).numpy())
    scatter = ax.scatter(*columns, c=labels.numpy(), cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
    ax.set_xlabel(axis_names[0])
    if len(axis_names) > 1:
        ax.set_ylabel(axis_names[1])
    if dims == 3:
        ax.set_zlabel(axis_names[2])
    ax.set_title(f"latent space ({dims}-D)")
    bar = fig.colorbar(scatter, ax=ax, ticks=range(10), shrink=0.8)
    if class_names:
        bar.ax.set_yticklabels(class_names[:10], fontsize=7)
    fig.tight_layout()
    return fig


@register_model("autoencoder")
class Autoencoder(AutoencoderModule):
    """Fully connected autoencoder: flatten -> [Linear -> activation] x hidden_sizes -> latent, mirrored back, sigmoid.

    Args:
        hidden_sizes: widths of the encoder's hidden layers; the decoder uses them in reverse.
        activation: hidden-layer nonlinearity.
        **kwargs: ``AutoencoderModule``'s arguments (``latent_dim``: 3 gives the notes' 3-D latent plot; ``noise_std``,
            ...) and ``GenerativeModule``'s (``in_channels``, ``image_size``, normalization).
    """

    def __init__(self, *, hidden_sizes: list[int] = [512, 128], activation: str = "relu", **kwargs) -> None:  # noqa: B006
        super().__init__(**kwargs)
        if any(size < 1 for size in hidden_sizes):
            raise ValueError(f"hidden_sizes must all be >= 1, got {hidden_sizes}")
        features = math.prod(self.input_shape)
        self.encoder = mlp_encoder(features, hidden_sizes, activation, self.latent_dim)  # (B, latent_dim)
        self.decoder = mlp_decoder(self.latent_dim, hidden_sizes, activation, features, sigmoid=True)  # (B, C*H*W) pixels


@register_model("conv_autoencoder")
class ConvAutoencoder(AutoencoderModule):
    """Convolutional autoencoder: two stride-2 convolutions and a linear code, mirrored by transposed convolutions.

    The image side must be a multiple of 4 (28 -> 14 -> 7).

    Args:
        channels: channels of the two convolutions.
        **kwargs: ``AutoencoderModule``'s arguments (``latent_dim``: 3 gives the notes' 3-D latent plot; ``noise_std``,
            ...) and ``GenerativeModule``'s (``in_channels``, ``image_size``, normalization).
    """

    def __init__(self, *, channels: list[int] = [32, 64], **kwargs) -> None:  # noqa: B006
        super().__init__(**kwargs)
        if self.image_size % 4:
            raise ValueError(f"ConvAutoencoder needs an image side divisible by 4, got image_size={self.image_size}")
        if len(channels) != 2 or min(channels) < 1:
            raise ValueError(f"channels takes the widths (>= 1) of the two convolutions, got {channels}")
        self.encoder = conv_encoder(self.in_channels, self.image_size, channels, self.latent_dim)  # (B, latent_dim)
        self.decoder = conv_decoder(self.latent_dim, self.in_channels, self.image_size, channels, sigmoid=True)  # (B, C, H, W) pixels
