"""The fast gradient sign method (Goodfellow et al., 2015): the attack, a robustness evaluation, and
FGSM adversarial training, for any zoo classifier.

Zoo classifiers read *normalized* images, ``(pixels - mean) / std``, with the statistics they recorded in
their hyperparameters (``model.hparams.mean`` / ``std``, see ``zoo.core.preprocessing.ImageInputModule``),
while the attack's budget ``epsilon`` is in *pixel* space [0, 1], where "0.1" means what it says and the
adversarial image must stay a valid image. So the attack steps and clamps in pixel space and the model
reads the renormalized result. Explicit ``mean=`` / ``std=`` arguments override what the model recorded.

    >>> adv = zoo.attacks.fgsm(model, pixels, labels, 0.1)                 # the model's own normalization  # doctest: +SKIP
    >>> adv = zoo.attacks.fgsm(net, pixels, labels, 0.1, mean=[0.286], std=[0.353])   # any nn.Module  # doctest: +SKIP

From the command line, as callbacks:

    python train.py test --config configs/lenet5_fashionmnist.yaml --ckpt_path X --trainer.callbacks+=zoo.attacks.FGSMRobustness
    python train.py fit --config configs/lenet5_fashionmnist_adv.yaml      # AdversarialTraining in the recipe
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.core.preprocessing import channel_stats
from zoo.viz.figures import run_folder
from zoo.viz.progress import progress_bar

__all__ = [
    "EPSILONS",
    "AdversarialTraining",
    "FGSMRobustness",
    "fgsm",
    "fgsm_normalized",
    "format_table",
    "plot_robustness",
    "recorded_normalization",
    "robustness",
]

log = logging.getLogger(__name__)

#: The budgets of the robustness table, in pixel units of [0, 1].
EPSILONS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def recorded_normalization(model: nn.Module) -> tuple[list[float] | None, list[float] | None]:
    """The ``(mean, std)`` a zoo model recorded in its hyperparameters; ``(None, None)`` when it recorded none."""
    hparams = getattr(model, "hparams", None) or {}
    mean, std = hparams.get("mean"), hparams.get("std")
    return (list(mean), list(std)) if mean is not None and std is not None else (None, None)


def _resolve(model: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    """Explicit ``mean``/``std`` win; else the normalization the model recorded; else none (identity)."""
    return (mean, std) if mean is not None or std is not None else recorded_normalization(model)


def _logits_loss(model: nn.Module, x: Tensor, labels: Tensor) -> Tensor:
    logits = model(x)
    if logits.shape[-1] == 1:  # a binary classifier's single logit
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


def fgsm(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    epsilon: float,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """FGSM adversarial images: ``clamp(images + epsilon * sign(grad_images loss), 0, 1)``.

    Args:
        model: a classifier returning logits; it reads ``(images - mean) / std``.
        images: (B, C, H, W) pixels in [0, 1].
        labels: (B,) true classes; the attack raises their cross-entropy.
        epsilon: L-infinity budget in pixel units.
        mean: per-channel mean of the model's input normalization; by default the one the model
            recorded (``model.hparams.mean``), none when it recorded none.
        std: per-channel std of that normalization; by default the model's ``hparams.std``.

    Returns:
        (B, C, H, W) adversarial pixels in [0, 1], detached. The model's parameter gradients are untouched.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    images = images.detach()
    if epsilon == 0:
        return images.clone()
    mean, std = _resolve(model, mean, std)
    # Test and predict loops run under inference mode: the attack needs autograd back.
    with torch.inference_mode(False), torch.enable_grad():
        m, s = channel_stats(mean, std, images)
        pixels = images.clone().requires_grad_(True)
        loss = _logits_loss(model, (pixels - m) / s, labels.clone())
        (grad,) = torch.autograd.grad(loss, pixels)  # w.r.t. the input only, not the parameters
        adversarial = (pixels + epsilon * grad.sign()).clamp_(0.0, 1.0)
    return adversarial.detach()


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
    mean, std = _resolve(model, mean, std)
    m, s = channel_stats(mean, std, x)
    pixels = (x.detach() * s + m).clamp(0.0, 1.0)
    return (fgsm(model, pixels, labels, epsilon, mean=mean, std=std) - m) / s


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


# --------------------------------------------------------------------------------------------------
# Robustness evaluation
# --------------------------------------------------------------------------------------------------
class _Tally:
    """Correct counts per epsilon and a few example images for the plot."""

    def __init__(self, epsilons: Sequence[float], num_examples: int) -> None:
        self.epsilons = list(epsilons)
        self.correct = [0] * len(self.epsilons)
        self.total = 0
        self.num_examples = num_examples
        self.examples: dict[float, tuple[Tensor, Tensor]] = {}  # eps -> (pixels, predictions)
        self.example_labels: Tensor | None = None

    @torch.no_grad()
    def update(self, model: nn.Module, x: Tensor, y: Tensor, mean, std) -> None:
        m, s = channel_stats(mean, std, x)
        pixels = (x * s + m).clamp(0.0, 1.0)  # the datamodule's batch back in pixel space
        for i, eps in enumerate(self.epsilons):
            adv = fgsm(model, pixels, y, eps, mean=mean, std=std)
            logits = model((adv - m) / s)
            pred = (logits.squeeze(-1) > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)
            self.correct[i] += int((pred == y).sum())
            if len(self.examples) < len(self.epsilons) and self.num_examples:
                k = min(self.num_examples, len(x))
                self.examples[eps] = (adv[:k].cpu(), pred[:k].cpu())
                self.example_labels = y[:k].cpu()
        self.total += len(y)

    def accuracies(self) -> dict[float, float]:
        return {eps: c / max(1, self.total) for eps, c in zip(self.epsilons, self.correct)}


def robustness(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    epsilons: Sequence[float] = EPSILONS,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    plot: str | Path | None = None,
    class_names: list[str] | None = None,
    progress: bool | None = None,
) -> dict[float, float]:
    """Accuracy under FGSM at each epsilon over normalized ``(x, y)`` batches (a datamodule's test loader
    after ``preprocess``); optionally saves the plot. The model is put in eval mode. ``mean``/``std``
    default to the normalization the model recorded. ``progress``: a bar over the batches on standard
    error (None: on a terminal only; see ``zoo.progress``)."""

    model.eval()
    mean, std = _resolve(model, mean, std)
    device = next(model.parameters()).device
    tally = _Tally(epsilons, num_examples=8 if plot else 0)
    for x, y in progress_bar(batches, desc=f"FGSM, {len(tally.epsilons)} budgets", unit="batch", progress=progress):
        tally.update(model, x.to(device), y.to(device), mean, std)
    results = tally.accuracies()
    if plot:
        plot_robustness(results, tally, plot, class_names)
    return results


def format_table(results: dict[float, float], title: str = "FGSM robustness") -> str:
    """A text table: one row per epsilon with the accuracy under attack."""
    lines = [title, f"{'epsilon':>8}  {'accuracy':>8}", f"{'-' * 8}  {'-' * 8}"]
    lines += [f"{eps:>8.2f}  {acc:>8.4f}" for eps, acc in results.items()]
    return "\n".join(lines)


def plot_robustness(results: dict[float, float], tally: _Tally | None, path: str | Path, class_names: list[str] | None = None) -> Path:
    """PNG: accuracy vs epsilon, and example adversarial images (one row per epsilon) with their predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    examples = tally.examples if tally is not None else {}
    cols = max((len(v[0]) for v in examples.values()), default=0)
    rows = len(examples)
    fig = plt.figure(figsize=(4 + 1.2 * cols, max(3.5, 1.2 * rows)))
    grid = fig.add_gridspec(max(rows, 1), 1 + max(cols, 1), width_ratios=[max(3, cols / 2)] + [1] * max(cols, 1))
    ax = fig.add_subplot(grid[:, 0])
    eps, acc = list(results), list(results.values())
    ax.plot(eps, acc, "o-")
    ax.set(xlabel="epsilon (pixels in [0, 1])", ylabel="accuracy", title="FGSM", ylim=(0, 1))
    ax.grid(alpha=0.3)
    name = (lambda c: class_names[c]) if class_names else str
    for r, (e, (images, preds)) in enumerate(examples.items()):
        for c in range(len(images)):
            sub = fig.add_subplot(grid[r, 1 + c])
            image = images[c].permute(1, 2, 0).squeeze(-1).numpy()
            sub.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            ok = int(preds[c]) == int(tally.example_labels[c])
            sub.set_title(name(int(preds[c])), fontsize=7, color="green" if ok else "red")
            sub.set_xticks([])
            sub.set_yticks([])
            if c == 0:
                sub.set_ylabel(f"eps={e:.2f}", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class FGSMRobustness(L.Callback):
    """At test time, also measure accuracy under FGSM at each epsilon; print the table, log
    ``test/fgsm_acc_<eps>`` and save ``fgsm_robustness.png`` (accuracy curve + adversarial examples).

    The normalization is ``mean``/``std`` when given, else the one the model recorded, else (a model
    that records none) the trainer's datamodule's.

    Args:
        epsilons: the attack budgets in pixel units.
        output: where to save the PNG; by default ``<log_dir>/fgsm_robustness.png``.
        mean: per-channel normalization mean; overrides the one the model recorded.
        std: per-channel normalization std; overrides the one the model recorded.
        num_examples: example images per epsilon in the plot.
    """

    def __init__(
        self,
        epsilons: list[float] = list(EPSILONS),  # noqa: B006
        output: str | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        num_examples: int = 8,
    ) -> None:
        self.epsilons = [float(e) for e in epsilons]
        self.output = output
        self.mean, self.std = mean, std
        self.num_examples = num_examples
        self.results: dict[float, float] = {}
        self.plot_path: Path | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._tally = _Tally(self.epsilons, self.num_examples)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch[0], batch[1]
        self._tally.update(pl_module, x, y, *_normalization(trainer, pl_module, self.mean, self.std))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.results = self._tally.accuracies()
        for eps, acc in self.results.items():
            pl_module.log(f"test/fgsm_acc_{eps:.2f}", acc)
        if not trainer.is_global_zero:
            return
        print(format_table(self.results, f"FGSM robustness of {type(pl_module).__name__} ({self._tally.total} test images)"), flush=True)
        folder = run_folder(trainer)  # not trainer.log_dir: a broadcast, and only rank 0 is here
        self.plot_path = Path(self.output) if self.output else Path(folder) / "fgsm_robustness.png"
        names = getattr(pl_module, "class_names", None) or getattr(getattr(trainer, "datamodule", None), "class_names", None)
        plot_robustness(self.results, self._tally, self.plot_path, names)
        print(f"FGSM plot: {self.plot_path}", flush=True)


class AdversarialTraining(L.Callback):
    """FGSM adversarial training: replace a share ``ratio`` of every training batch by FGSM examples.

    Runs in ``on_train_batch_start``, where the batch already went through the datamodule's
    ``on_after_batch_transfer`` (it is on the device and normalized): the images are attacked in pixel
    space against the current weights and written back, normalized, into the batch tensor in place, so
    the model's own ``training_step`` and loss see them. No model hyperparameter changes.

    The examples are crafted with the model in eval mode (dropout off, batch-norm statistics neither used
    from the batch nor updated by it); every submodule's mode is restored afterwards. The normalization
    is ``mean``/``std`` when given, else the one the model recorded, else the trainer's datamodule's.

    Args:
        epsilon: attack budget in pixel units.
        ratio: share of each batch replaced (0: none, 1: the whole batch).
        mean: per-channel normalization mean; overrides the one the model recorded.
        std: per-channel normalization std; overrides the one the model recorded.
    """

    def __init__(self, epsilon: float = 0.1, ratio: float = 0.5, mean: list[float] | None = None, std: list[float] | None = None) -> None:
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        self.epsilon, self.ratio = epsilon, ratio
        self.mean, self.std = mean, std

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        k = math.floor(self.ratio * len(x) + 0.5)
        if k == 0 or self.epsilon == 0:
            return
        mean, std = _normalization(trainer, pl_module, self.mean, self.std)
        modes = {module: module.training for module in pl_module.modules()}
        pl_module.eval()
        try:
            adversarial = fgsm_normalized(pl_module, x[:k], y[:k], self.epsilon, mean or [0.0], std or [1.0])
        finally:
            for module, training in modes.items():  # exactly as before, e.g. a frozen backbone's norms stay in eval
                module.training = training
        with torch.no_grad():
            x[:k] = adversarial  # the loader shuffles, so the first k are a random share
