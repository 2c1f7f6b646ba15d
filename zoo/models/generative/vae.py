"""Variational autoencoder (Kingma & Welling, 2014, "Auto-Encoding Variational Bayes"): MLP or convolutional.

The encoder gives q(z|x) = N(mu, diag(exp(logvar))), the prior is p(z) = N(0, I), and the decoder gives the
parameters of p(x|z) for every pixel:

* ``likelihood="bernoulli"``: decoder logits; the data are *dynamically binarized* pixels (each pixel is 1
  with probability its grey value, drawn afresh for every training batch; at validation and test with a seed
  per batch, so the evaluated set is the same on every run). log p(x|z) is minus the binary cross-entropy
  summed over pixels, so the ELBO is in nats per binarized image.
* ``likelihood="gaussian"``: decoder means sigmoid(output) in [0, 1] on the grey pixels; the standard
  deviation is fixed (``gaussian_std`` > 0) or learned, one per pixel shared by all images, floored at 0.01
  (``gaussian_std=0``). A density, not a probability: its nats are not comparable with Bernoulli figures.

Training minimizes recon NLL + beta * KL per image (the beta-VAE, Higgins et al., 2017; beta=1 is the ELBO).
Logged per stage: ``loss``, ``elbo`` (always with beta = 1: -recon NLL - KL, summed over pixels, averaged over
images, one z sample per image), ``kl``, ``recon_nll``, MSE/PSNR of the decoded mean; at test also
``log_likelihood_iw``, the importance-sampled estimate log (1/k) sum_i p(x, z_i) / q(z_i|x) with k =
``iw_samples`` (Burda et al., 2016), a tighter lower bound that rises towards log p(x) as k grows.

``forward(x)`` is deterministic, as for the other autoencoders: normalized images -> the decoded mean at the
posterior mean, pixels in [0, 1]. ``sample(n)`` (and ``zoo.generate``) decode draws from the prior.
At the end of each validation the run logs reconstructions, prior samples, a traversal of the first two
latent dimensions over the prior's quantiles (the whole latent space when ``latent_dim=2``), and the
latent scatter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.registry import register_model
from zoo.models.generative.autoencoder import AutoencoderModule, latent_scatter
from zoo.models.generative.base import figure_to_image, save_or_log_image
from zoo.models.generative.bodies import conv_decoder, conv_encoder, mlp_decoder, mlp_encoder
from zoo.viz.figures import should_draw

__all__ = ["VAE", "gaussian_kl"]

_LIKELIHOODS = ("bernoulli", "gaussian")
_ENCODERS = ("mlp", "conv")
_MIN_STD = 0.01  # floor of the learned Gaussian std: the density of an all-black background pixel stays bounded
_IW_CHUNK = 4096  # decoder inputs per pass of the importance-sampled estimate


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over the latent dimensions: (B, D) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


class VAE(AutoencoderModule):
    """Variational autoencoder with an MLP or a convolutional encoder/decoder; see the module docstring.

    Args:
        encoder: "mlp" (flatten -> hidden_sizes -> 2 x latent_dim, mirrored back) or "conv" (two stride-2
            convolutions of ``channels``, mirrored by transposed convolutions; image side divisible by 4).
        hidden_sizes: widths of the MLP encoder's hidden layers; the decoder uses them in reverse.
        activation: hidden-layer nonlinearity of the MLP.
        channels: channels of the two convolutions (``encoder="conv"``).
        likelihood: "bernoulli" (dynamically binarized pixels) or "gaussian" (grey pixels).
        gaussian_std: the Gaussian likelihood's standard deviation in pixel units; 0 learns one per pixel.
        beta: weight of the KL term in the training loss (1: the ELBO; the logged ELBO always uses 1).
        iw_samples: k of the importance-sampled log-likelihood logged at test (0: not computed).
        latent_dim: size of z (2 gives a traversal of the whole latent space).
        **kwargs: ``AutoencoderModule``'s arguments (``noise_std`` must stay 0: the ELBO is a bound on the
            likelihood of the image the encoder reads; ``num_logged_images`` sets the sample grids too) and
            ``GenerativeModule``'s (``in_channels``, ``image_size``, normalization).
    """

    def __init__(
        self,
        *,
        encoder: str = "mlp",
        hidden_sizes: list[int] = [512, 256],  # noqa: B006  (never mutated; a list so the CLI shows it as one)
        activation: str = "relu",
        channels: list[int] = [32, 64],  # noqa: B006
        likelihood: str = "bernoulli",
        gaussian_std: float = 0.0,
        beta: float = 1.0,
        iw_samples: int = 100,
        latent_dim: int = 20,
        **kwargs,
    ) -> None:
        super().__init__(latent_dim=latent_dim, **kwargs)
        if encoder not in _ENCODERS:
            raise ValueError(f"encoder must be one of {_ENCODERS}, got {encoder!r}")
        if likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {_LIKELIHOODS}, got {likelihood!r}")
        if gaussian_std < 0:
            raise ValueError(f"gaussian_std must be >= 0 (0 learns it), got {gaussian_std}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if iw_samples < 0:
            raise ValueError(f"iw_samples must be >= 0, got {iw_samples}")
        if self.noise_std != 0:
            raise ValueError(f"VAE takes no noise_std (got {self.noise_std}): its ELBO bounds the likelihood of the image the encoder reads")
        self.likelihood = likelihood
        self.beta = beta
        if encoder == "mlp":
            if any(size < 1 for size in hidden_sizes):
                raise ValueError(f"hidden_sizes must all be >= 1, got {hidden_sizes}")
            features = math.prod(self.input_shape)
            self.encoder = mlp_encoder(features, hidden_sizes, activation, 2 * latent_dim)  # (B, 2D): mu and logvar
            self.decoder = mlp_decoder(latent_dim, hidden_sizes, activation, features, sigmoid=False)  # (B, C*H*W) likelihood parameters
        else:
            if self.image_size % 4:
                raise ValueError(f"encoder='conv' needs an image side divisible by 4, got image_size={self.image_size}")
            if len(channels) != 2 or min(channels) < 1:
                raise ValueError(f"channels takes the widths (>= 1) of the two convolutions, got {channels}")
            self.encoder = conv_encoder(self.in_channels, self.image_size, channels, 2 * latent_dim)  # (B, 2D): mu and logvar
            self.decoder = conv_decoder(latent_dim, self.in_channels, self.image_size, channels, sigmoid=False)  # (B, C, H, W) likelihood parameters
        if likelihood == "gaussian" and gaussian_std == 0:
            self.log_std = nn.Parameter(torch.zeros(self.input_shape))  # (C, H, W), one learned std per pixel
        self._images: dict[str, Tensor] = {}

    # -- the probabilistic model ------------------------------------------------------------------------
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalized images (B, C, H, W) -> q(z|x)'s mean and log-variance, each (B, latent_dim)."""
        mu, logvar = self.encoder(self.check_input(x)).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: Tensor) -> Tensor:
        """Normalized images (B, C, H, W) -> the posterior mean (B, latent_dim)."""
        return self.posterior(x)[0]

    def decoder_output(self, z: Tensor) -> Tensor:
        """Codes (..., latent_dim) -> the likelihood's parameters (..., C, H, W): logits or pre-sigmoid means."""
        lead = z.shape[:-1]
        return self.decoder(z.reshape(-1, self.latent_dim)).view(*lead, *self.input_shape)

    def decode(self, z: Tensor) -> Tensor:
        """Codes (B, latent_dim) -> the mean of p(x|z), pixels (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decoder_output(z))

    def observe(self, pixels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The data the likelihood models: binarized pixels (bernoulli), or the pixels themselves (gaussian)."""
        if self.likelihood == "bernoulli":
            return torch.bernoulli(pixels, generator=generator)
        return pixels

    def log_likelihood(self, output: Tensor, target: Tensor) -> Tensor:
        """log p(x|z) summed over pixels: decoder output and target (..., C, H, W) -> (...)."""
        if self.likelihood == "bernoulli":
            log_p = -F.binary_cross_entropy_with_logits(output, target.expand_as(output), reduction="none")
        else:
            std_log = self.log_std.clamp(min=math.log(_MIN_STD)) if hasattr(self, "log_std") else math.log(self.hparams.gaussian_std)
            std_log = torch.as_tensor(std_log, dtype=output.dtype, device=output.device)
            log_p = -0.5 * ((target - torch.sigmoid(output)) * torch.exp(-std_log)).pow(2) - std_log - 0.5 * math.log(2 * math.pi)
        return log_p.flatten(-3).sum(-1)

    def elbo_terms(self, target: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction NLL (B,), analytic KL (B,) and the decoder output of one reparameterized sample.

        Args:
            target: the modelled images (B, C, H, W) in [0, 1] (binarized for the Bernoulli likelihood).
            eps: the standard normal noise (B, latent_dim) of the sample; drawn when None.
        """
        mu, logvar = self.posterior(self.to_input(target))  # (B, D) each
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + torch.exp(0.5 * logvar) * eps  # reparameterization: gradients reach mu and logvar
        output = self.decoder_output(z)  # (B, C, H, W)
        return -self.log_likelihood(output, target), gaussian_kl(mu, logvar), output

    @torch.no_grad()
    def log_likelihood_iw(self, target: Tensor, k: int = 100, eps: Tensor | None = None) -> Tensor:
        """Importance-sampled estimate of log p(x) with k posterior samples per image, (B, C, H, W) -> (B,).

        log (1/k) sum_i exp(log p(x|z_i) + log p(z_i) - log q(z_i|x)), z_i ~ q(z|x): a lower bound on
        log p(x) in expectation, never below the ELBO's (k = 1) and tighter as k grows.

        Args:
            target: the modelled images in [0, 1] (binarized for the Bernoulli likelihood).
            k: importance samples per image.
            eps: their standard normal noise (k, B, latent_dim); drawn when None.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        mu, logvar = self.posterior(self.to_input(target))  # (B, D)
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype) if eps is None else eps
        std = torch.exp(0.5 * logvar)
        z = mu + std * eps  # (k, B, D)
        normal = -0.5 * math.log(2 * math.pi)
        log_q = (normal - 0.5 * eps.pow(2) - 0.5 * logvar).sum(-1)  # (k, B): log N(z; mu, std) = log N(eps; 0, 1) - log std
        log_prior = (normal - 0.5 * z.pow(2)).sum(-1)  # (k, B)
        per_pass = max(1, _IW_CHUNK // len(target))
        log_px = torch.cat([self.log_likelihood(self.decoder_output(chunk), target) for chunk in z.split(per_pass)])  # (k, B)
        return torch.logsumexp(log_px + log_prior - log_q, dim=0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None) -> Tensor:
        """n images decoded from z ~ N(0, I): the means of p(x|z), pixels (n, C, H, W) in [0, 1]."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.latent_dim, generator=generator).to(self.device)  # (n, D)
        return self.decode(z)

    @torch.no_grad()
    def latent_traversal(self, steps: int = 15) -> Tensor:
        """Decoded means over a steps x steps grid of (z1, z2) at the prior's quantiles 0.05 .. 0.95, other
        dimensions 0 (the whole latent space when latent_dim = 2): (steps^2, C, H, W), row by row in z2."""
        if self.latent_dim < 2:
            raise ValueError(f"a latent traversal needs latent_dim >= 2, got {self.latent_dim}")
        values = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, steps))  # (steps,)
        z = torch.zeros(steps, steps, self.latent_dim)
        z[..., 0] = values[None, :]
        z[..., 1] = values.flip(0)[:, None]  # z2 grows upwards, as on a plot
        return self.decode(z.view(-1, self.latent_dim).to(self.device))

    # -- steps ---------------------------------------------------------------------------------------
    def _vae_step(self, batch: tuple[Tensor, Tensor], stage: str, batch_idx: int) -> Tensor:
        x, y = batch
        pixels = self.to_pixels(x)  # (B, C, H, W) in [0, 1]
        # Training draws a fresh binarization every batch; evaluation draws a fixed one (seeded by the batch index).
        generator = None if stage == "train" else torch.Generator(device=pixels.device).manual_seed(batch_idx)
        target = self.observe(pixels, generator)
        recon_nll, kl, output = self.elbo_terms(target)
        loss = (recon_nll + self.beta * kl).mean()
        n = len(x)
        log = dict(on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(f"{stage}/loss", loss, prog_bar=True, **{**log, "on_step": stage == "train"})
        self.log(f"{stage}/elbo", -(recon_nll + kl).mean(), prog_bar=stage != "train", **log)
        self.log(f"{stage}/kl", kl.mean(), **log)
        self.log(f"{stage}/recon_nll", recon_nll.mean(), **log)
        recon = torch.sigmoid(output).detach()
        metrics = self._metrics(stage)
        metrics.update(recon, target)  # logged at the end of the epoch
        if stage == "test" and self.hparams.iw_samples:
            self.log("test/log_likelihood_iw", self.log_likelihood_iw(target, self.hparams.iw_samples).mean(), prog_bar=True, **log)
        if stage == "val" and not self.trainer.sanity_checking:
            self._collect(target, recon, self.encode(self.to_input(target)).detach(), y)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._vae_step(batch, "train", batch_idx)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._vae_step(batch, "val", batch_idx)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._vae_step(batch, "test", batch_idx)

    # -- figures at the end of validation ---------------------------------------------------------------
    def _collect(self, target: Tensor, recon: Tensor, z: Tensor, y: Tensor) -> None:  # type: ignore[override]
        if "reconstructions" not in self._images:
            n = min(self.hparams.num_logged_images, len(target))
            self._images["reconstructions"] = torch.cat([target[:n], recon[:n]]).cpu()  # (2n, C, H, W)
        if sum(len(t) for t in self._latents) < self.hparams.num_latent_points:
            self._latents.append(z.float().cpu())
            self._labels.append(y.detach().cpu())

    def on_validation_epoch_end(self) -> None:  # replaces the autoencoder's figures with the VAE's
        self._log_epoch_metrics("val")
        from torchvision.utils import make_grid

        grid, self._images = self._images.get("reconstructions"), {}
        latents, labels, self._latents, self._labels = self._latents, self._labels, [], []
        if grid is None or not should_draw(self):  # rank 0 with a logger, outside smoke tests
            return
        n = len(grid) // 2
        save_or_log_image(self, "val/reconstructions", make_grid(grid, nrow=n, padding=2, pad_value=1.0))
        samples = self.sample(n * n, seed=0).float().cpu()
        save_or_log_image(self, "val/samples", make_grid(samples, nrow=n, padding=2, pad_value=1.0))
        if self.latent_dim >= 2:
            steps = 15
            save_or_log_image(self, "val/latent_traversal", make_grid(self.latent_traversal(steps).float().cpu(), nrow=steps, padding=0))
        names = self.class_names or getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        points = self.hparams.num_latent_points
        save_or_log_image(self, "val/latent_space", figure_to_image(latent_scatter(torch.cat(latents)[:points], torch.cat(labels)[:points], names)))


# -- variants -------------------------------------------------------------------------------------------
@register_model("vae")
def vae(**kwargs) -> VAE:
    """MLP VAE (784-512-256-z and back), Bernoulli likelihood on dynamically binarized pixels, z of 20 dimensions."""
    return VAE(**{"encoder": "mlp", **kwargs})


@register_model("conv_vae")
def conv_vae(**kwargs) -> VAE:
    """Convolutional VAE (two stride-2 convolutions of 32 and 64 channels and back), Bernoulli likelihood."""
    return VAE(**{"encoder": "conv", **kwargs})
