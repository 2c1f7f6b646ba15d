"""Robustness evaluation: accuracy under FGSM at each budget and under PGD at a few, and the check for
catastrophic overfitting.

A model trained with single-step attacks can learn to mask its input gradient at the clean point: FGSM, which
follows that gradient, then stays harmless while a multi-step attack from a random start (PGD) breaks the model
(Wong et al., 2020, "Fast is better than free"; Andriushchenko & Flammarion, 2020). Under this *catastrophic
overfitting* PGD accuracy falls to about 0 while FGSM accuracy stays high; for a genuinely robust model PGD-10
lands a few points below FGSM. So the zoo measures both and says so when PGD is more than ``CO_MARGIN`` below
FGSM while FGSM keeps at least half the clean accuracy (``overfitting_suspected``). A model that FGSM already
breaks (a plain one: FGSM 16%, PGD 1%) claims no robustness and is not flagged.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from zoo.core.preprocessing import channel_stats
from zoo.evaluation.attacks.perturbation import _resolve, check_budget, pgd
from zoo.evaluation.attacks.plot import plot_robustness
from zoo.viz.progress import progress_bar

__all__ = ["CO_MARGIN", "EPSILONS", "PGD_EPSILONS", "Robustness", "format_table", "overfitting_suspected", "robustness"]

#: The budgets of the FGSM table, in pixel units of [0, 1].
EPSILONS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
#: The budgets PGD is measured at by default (each costs ``steps`` FGSMs).
PGD_EPSILONS: tuple[float, ...] = (0.1,)
#: Accuracy points (as a fraction) PGD may fall below FGSM before catastrophic overfitting is suspected.
CO_MARGIN = 0.10


def overfitting_suspected(clean: float, fgsm: float, pgd: float, margin: float = CO_MARGIN) -> bool:
    """Whether FGSM accuracy ``fgsm`` looks high only because the gradient at the clean point misleads: PGD
    accuracy is more than ``margin`` below it while FGSM keeps at least half the ``clean`` accuracy."""
    return fgsm >= 0.5 * clean and pgd < fgsm - margin


@dataclass
class Robustness:
    """Accuracies of one model under attack (fractions in [0, 1]), keyed by the budget in pixel units.

    Args:
        clean: accuracy on the unperturbed images.
        fgsm: accuracy under FGSM at each budget.
        pgd: accuracy under PGD (``pgd_steps`` steps from a random start) at each of its budgets.
        pgd_steps: PGD's steps.
        total: images evaluated.
        margin: the catastrophic-overfitting margin (``CO_MARGIN``).
    """

    clean: float
    fgsm: dict[float, float]
    pgd: dict[float, float] = field(default_factory=dict)
    pgd_steps: int = 10
    total: int = 0
    margin: float = CO_MARGIN

    @property
    def suspected(self) -> list[float]:
        """The budgets where catastrophic overfitting is suspected (both attacks measured there)."""
        return [e for e, acc in self.pgd.items() if e in self.fgsm and overfitting_suspected(self.clean, self.fgsm[e], acc, self.margin)]

    def warnings(self) -> list[str]:
        """One sentence per suspected budget."""
        return [
            f"catastrophic overfitting suspected at eps={e:g}: PGD-{self.pgd_steps} accuracy {self.pgd[e]:.4f} is far below "
            f"FGSM accuracy {self.fgsm[e]:.4f} (more than {self.margin * 100:g} points): FGSM follows a masked gradient; "
            "train with attack='fgsm_rs' or 'pgd'"
            for e in self.suspected
        ]


class _Tally:
    """Correct counts per budget and attack, and a few example images for the plot."""

    def __init__(self, epsilons: Sequence[float], pgd_epsilons: Sequence[float], steps: int, alpha: float | None,
                 num_examples: int, seed: int = 0) -> None:  # fmt: skip
        for e in [*epsilons, *pgd_epsilons]:
            check_budget(e, steps, alpha)
        self.epsilons, self.pgd_epsilons = list(epsilons), list(pgd_epsilons)
        self.steps, self.alpha = steps, alpha
        self.clean, self.fgsm, self.pgd = 0, [0] * len(self.epsilons), [0] * len(self.pgd_epsilons)
        self.total = 0
        self.num_examples = num_examples
        self.examples: dict[float, tuple[Tensor, Tensor]] = {}  # eps -> (pixels, predictions) under FGSM
        self.example_labels: Tensor | None = None
        self.generator = torch.Generator().manual_seed(seed)  # PGD's random starts: the same table every run

    @staticmethod
    def _predict(model: nn.Module, x: Tensor) -> Tensor:
        logits = model(x)
        return (logits.squeeze(-1) > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)  # (B,)

    @torch.no_grad()
    def update(self, model: nn.Module, x: Tensor, y: Tensor, mean, std) -> None:
        m, s = channel_stats(mean, std, x)
        pixels = (x * s + m).clamp(0.0, 1.0)  # the datamodule's batch back in pixel space
        self.clean += int((self._predict(model, (pixels - m) / s) == y).sum())
        for i, eps in enumerate(self.epsilons):
            adv = pgd(model, pixels, y, eps, steps=1, alpha=eps or None, random_start=False, mean=mean, std=std)  # FGSM
            pred = self._predict(model, (adv - m) / s)
            self.fgsm[i] += int((pred == y).sum())
            if len(self.examples) < len(self.epsilons) and self.num_examples:
                k = min(self.num_examples, len(x))
                self.examples[eps] = (adv[:k].cpu(), pred[:k].cpu())
                self.example_labels = y[:k].cpu()
        for i, eps in enumerate(self.pgd_epsilons):
            adv = pgd(model, pixels, y, eps, steps=self.steps, alpha=self.alpha, mean=mean, std=std, generator=self.generator)
            self.pgd[i] += int((self._predict(model, (adv - m) / s) == y).sum())
        self.total += len(y)

    def result(self) -> Robustness:
        n = max(1, self.total)
        return Robustness(
            clean=self.clean / n,
            fgsm={e: c / n for e, c in zip(self.epsilons, self.fgsm)},
            pgd={e: c / n for e, c in zip(self.pgd_epsilons, self.pgd)},
            pgd_steps=self.steps,
            total=self.total,
        )


def robustness(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    *,
    epsilons: Sequence[float] = EPSILONS,
    pgd_epsilons: Sequence[float] = PGD_EPSILONS,
    pgd_steps: int = 10,
    pgd_alpha: float | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    plot: str | Path | None = None,
    class_names: list[str] | None = None,
    progress: bool | None = None,
    seed: int = 0,
    margin: float = CO_MARGIN,
) -> Robustness:
    """Accuracy under FGSM at each of ``epsilons`` and under PGD at each of ``pgd_epsilons`` over normalized
    ``(x, y)`` batches (a datamodule's test loader after ``preprocess``); warns when catastrophic overfitting
    is suspected; optionally saves the plot. The model is put in eval mode.

    Args:
        model: the classifier.
        batches: normalized ``(x, y)`` batches.
        epsilons: FGSM's budgets in pixel units.
        pgd_epsilons: PGD's budgets in pixel units (empty: no PGD).
        pgd_steps: PGD's steps.
        pgd_alpha: PGD's step size; None: ``2.5 * eps / pgd_steps``.
        mean: per-channel normalization mean; by default the one the model recorded.
        std: per-channel normalization std; by default the one the model recorded.
        plot: where to save the PNG (accuracy curves and FGSM examples); None: no plot.
        class_names: the titles of the example images.
        progress: a bar over the batches on standard error (None: on a terminal only; see ``zoo.progress``).
        seed: seeds PGD's random starts.
        margin: accuracy points (a fraction) PGD may fall below FGSM before catastrophic overfitting is suspected.
    """
    if not 0 <= margin <= 1:
        raise ValueError(f"margin is a fraction of accuracy in [0, 1], got {margin}")
    model.eval()
    mean, std = _resolve(model, mean, std)
    device = next(model.parameters()).device
    tally = _Tally(epsilons, pgd_epsilons, pgd_steps, pgd_alpha, num_examples=8 if plot else 0, seed=seed)
    desc = f"FGSM, {len(tally.epsilons)} budgets" + (f"; PGD-{pgd_steps}, {len(tally.pgd_epsilons)}" if tally.pgd_epsilons else "")
    for x, y in progress_bar(batches, desc=desc, unit="batch", progress=progress):
        tally.update(model, x.to(device), y.to(device), mean, std)
    results = tally.result()
    results.margin = margin
    for message in results.warnings():
        warnings.warn(message, stacklevel=2)
    if plot:
        plot_robustness(results, tally, plot, class_names)
    return results


def format_table(results: Robustness, title: str = "Robustness") -> str:
    """A text table: one row per budget with the accuracy under FGSM and under PGD (blank where not measured),
    then a line per suspected catastrophic overfitting."""
    pgd_name = f"PGD-{results.pgd_steps}"
    lines = [title, f"{'epsilon':>8}  {'FGSM':>8}  {pgd_name:>8}", f"{'-' * 8}  {'-' * 8}  {'-' * 8}"]
    for eps in sorted({*results.fgsm, *results.pgd}):
        cells = [f"{results.fgsm[eps]:>8.4f}" if eps in results.fgsm else " " * 8, f"{results.pgd[eps]:>8.4f}" if eps in results.pgd else ""]
        lines.append(f"{eps:>8.2f}  {cells[0]}  {cells[1]}".rstrip())
    lines += [f"WARNING: {w}" for w in results.warnings()]
    return "\n".join(lines)
