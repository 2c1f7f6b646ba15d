"""The L-infinity attacks: projected gradient descent (Madry et al., 2018) and its one-step case, the fast
gradient sign method (Goodfellow et al., 2015). One implementation: ``fgsm`` is ``pgd`` with one step of size
``epsilon`` from the clean image, and FGSM from a random start (Wong et al., 2020) is ``pgd`` with one step
from a uniform start in the ball.

The budget ``epsilon`` is in *pixel* space [0, 1], where the adversarial image must stay a valid image;
zoo classifiers read *normalized* images ``(pixels - mean) / std`` with the statistics they recorded in their
hyperparameters. So the attack steps, projects and clamps in pixel space and the model reads the renormalized
result; explicit ``mean=`` / ``std=`` arguments override what the model recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.preprocessing import channel_stats

__all__ = ["ATTACKS", "fgsm", "fgsm_normalized", "pgd", "pgd_normalized", "recorded_normalization"]

#: the attack names a training recipe may choose (``AdversarialTraining(attack=...)``)
ATTACKS: tuple[str, ...] = ("fgsm", "fgsm_rs", "pgd")


def recorded_normalization(model: nn.Module) -> tuple[list[float] | None, list[float] | None]:
    """The ``(mean, std)`` a zoo model recorded in its hyperparameters; ``(None, None)`` when it recorded none."""
    hparams = getattr(model, "hparams", None) or {}
    mean, std = hparams.get("mean"), hparams.get("std")
    return (list(mean), list(std)) if mean is not None and std is not None else (None, None)


def _resolve(model: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """Explicit ``mean``/``std`` win; else the normalization the model recorded; else none (identity)."""
    return (mean, std) if mean is not None or std is not None else recorded_normalization(model)


def _normalization(
    trainer: L.Trainer | None, model: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None
) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """What a callback attacks with: explicit ``mean``/``std``, else the model's recorded normalization,
    else (a model that records none) the trainer's datamodule's, which normalized the batch."""
    mean, std = _resolve(model, mean, std)
    if mean is not None or std is not None:
        return mean, std
    norm = getattr(getattr(trainer, "datamodule", None), "normalization", None) if trainer is not None else None
    return (norm["mean"], norm["std"]) if norm else (None, None)


def _logits_loss(model: nn.Module, x: Tensor, labels: Tensor) -> Tensor:
    logits = model(x)
    if logits.shape[-1] == 1:  # a binary classifier's single logit
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


def check_budget(epsilon: float, steps: int, alpha: float | None) -> None:
    """A clear error for a budget no attack can run with."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0 (an L-infinity budget in pixel units), got {epsilon}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if alpha is not None and alpha <= 0:
        raise ValueError(f"alpha (the step size in pixel units) must be > 0, got {alpha}")


def pgd(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    epsilon: float,
    *,
    steps: int = 10,
    alpha: float | None = None,
    random_start: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """PGD adversarial images in the L-infinity ball of radius ``epsilon`` around ``images``.

    From ``images`` (or, with ``random_start``, a uniform point of the ball), ``steps`` times: step by
    ``alpha * sign(grad loss)``, project back into the ball, clamp to [0, 1].

    Args:
        model: a classifier returning logits; it reads ``(images - mean) / std``.
        images: (B, C, H, W) pixels in [0, 1].
        labels: (B,) true classes; the attack raises their cross-entropy.
        epsilon: L-infinity budget in pixel units.
        steps: gradient steps.
        alpha: step size in pixel units; None: ``2.5 * epsilon / steps`` (Madry et al.; 0.025 for 10 steps at 0.1).
        random_start: start from ``images`` plus uniform noise in [-epsilon, epsilon] (clamped to [0, 1]).
        mean: per-channel mean of the model's input normalization; by default the one the model
            recorded (``model.hparams.mean``), none when it recorded none.
        std: per-channel std of that normalization; by default the model's ``hparams.std``.
        generator: the random start's generator (on any device); None: torch's global one of ``images``' device.

    Returns:
        (B, C, H, W) adversarial pixels in [0, 1], detached. The model's parameter gradients are untouched.
    """
    check_budget(epsilon, steps, alpha)
    images = images.detach()
    if epsilon == 0:
        return images.clone()
    alpha = 2.5 * epsilon / steps if alpha is None else alpha
    mean, std = _resolve(model, mean, std)
    # Test and predict loops run under inference mode: the attack needs autograd back.
    with torch.inference_mode(False), torch.enable_grad():
        images = images.clone()  # a normal tensor, not an inference one
        m, s = channel_stats(mean, std, images)
        labels = labels.clone()
        pixels = images
        if random_start:
            device = generator.device if generator is not None else images.device  # the global generator of the batch's device
            noise = torch.rand(images.shape, generator=generator, dtype=images.dtype, device=device)  # (B, C, H, W) in [0, 1)
            pixels = (images + (2 * noise.to(images.device) - 1) * epsilon).clamp(0.0, 1.0)
        for _ in range(steps):
            pixels = pixels.detach().requires_grad_(True)
            loss = _logits_loss(model, (pixels - m) / s, labels)
            (grad,) = torch.autograd.grad(loss, pixels)  # w.r.t. the input only, not the parameters
            pixels = pixels + alpha * grad.sign()
            pixels = torch.min(torch.max(pixels, images - epsilon), images + epsilon).clamp(0.0, 1.0)  # project
    return pixels.detach()


def fgsm(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    epsilon: float,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """FGSM adversarial images: ``clamp(images + epsilon * sign(grad_images loss), 0, 1)``, which is
    ``pgd(..., steps=1, alpha=epsilon, random_start=False)``.

    Args:
        model: a classifier returning logits; it reads ``(images - mean) / std``.
        images: (B, C, H, W) pixels in [0, 1].
        labels: (B,) true classes; the attack raises their cross-entropy.
        epsilon: L-infinity budget in pixel units.
        mean: per-channel mean of the model's input normalization; by default the one the model recorded.
        std: per-channel std of that normalization; by default the model's ``hparams.std``.

    Returns:
        (B, C, H, W) adversarial pixels in [0, 1], detached. The model's parameter gradients are untouched.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0 (an L-infinity budget in pixel units), got {epsilon}")
    return pgd(model, images, labels, epsilon, steps=1, alpha=epsilon or None, random_start=False, mean=mean, std=std)


def pgd_normalized(
    model: nn.Module,
    x: Tensor,
    labels: Tensor,
    epsilon: float,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **attack,
) -> Tensor:
    """``pgd`` on a batch the way a datamodule hands it to the model: normalized in, normalized out (with
    ``mean``/``std``, by default the normalization the model recorded). ``attack``: ``pgd``'s keywords."""
    mean, std = _resolve(model, mean, std)
    m, s = channel_stats(mean, std, x)
    pixels = (x.detach() * s + m).clamp(0.0, 1.0)
    return (pgd(model, pixels, labels, epsilon, mean=mean, std=std, **attack) - m) / s


def fgsm_normalized(
    model: nn.Module,
    x: Tensor,
    labels: Tensor,
    epsilon: float,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """FGSM on a batch the way a datamodule hands it to the model: normalized in, normalized out
    (with ``mean``/``std``, by default the normalization the model recorded)."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0 (an L-infinity budget in pixel units), got {epsilon}")
    return pgd_normalized(model, x, labels, epsilon, mean, std, steps=1, alpha=epsilon or None, random_start=False)
