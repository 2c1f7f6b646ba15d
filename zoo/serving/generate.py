"""``generate``: images from a generative model, as pixels in [0, 1].

    >>> images = zoo.generate("cgan.fashionmnist", labels=[0, 7], n=8, seed=0)  # doctest: +SKIP  (16, 1, 28, 28)
    >>> images = zoo.generate(vae, n=16)                                        # doctest: +SKIP  decoded prior samples
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from zoo.hub.pretrained import load_trained
from zoo.models.generative.gan_base import GANModule

__all__ = ["generate"]


@torch.no_grad()
def generate(model: Any, labels: list[int] | None = None, n: int = 1, *, seed: int | None = None) -> Tensor:
    """Images from a generative model, as pixels in [0, 1]: a GAN's generator fed seeded noise (and the labels of a
    conditional GAN), or the decoded prior samples of a model with a ``sample(n, seed=)`` method (the VAE).

    Args:
        model: a trained model (``zoo.load_checkpoint(path)``), a checkpoint path or a shipped entry name ("cgan.fashionmnist").
        labels: class ids (conditional GANs): ``n`` images of each, label by label.
        n: images per label, or in all for an unconditional model.
        seed: seed of the noise, for reproducible samples.

    Returns:
        (len(labels) * n, C, H, W), or (n, C, H, W) without labels.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_trained(model)
    is_gan = isinstance(model, GANModule) or not callable(getattr(model, "sample", None))
    if labels is not None and not (is_gan and model.conditional):
        raise ValueError(f"{type(model).__name__} is unconditional: call generate(model, n=...) without labels")
    was_training = model.training
    model.eval()
    try:
        if not is_gan:
            return model.sample(n, seed=seed)  # (n, C, H, W)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        y = torch.tensor(labels).repeat_interleave(n) if labels is not None else None  # (N,)
        count = len(y) if y is not None else n
        z = torch.randn(count, model.latent_dim, generator=generator).to(model.device)  # (N, Z)
        return model(z, y.to(model.device) if y is not None else None)  # (N, C, H, W)
    finally:
        model.train(was_training)
