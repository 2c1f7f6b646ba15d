"""The attacks as Lightning callbacks: the robustness table at test time, and adversarial training.

    python train.py test --config configs/lenet5_fashionmnist.yaml --ckpt_path X --trainer.callbacks+=zoo.attacks.FGSMRobustness
    python train.py fit --config configs/resnet9_fast_fashionmnist_robust.yaml   # AdversarialTraining in the recipe
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import lightning as L
import torch

from zoo.evaluation.attacks.perturbation import ATTACKS, _normalization, check_budget, pgd_normalized
from zoo.evaluation.attacks.plot import plot_robustness
from zoo.evaluation.attacks.robustness import CO_MARGIN, EPSILONS, PGD_EPSILONS, Robustness, _Tally, format_table
from zoo.viz.figures import run_folder

__all__ = ["AdversarialTraining", "FGSMRobustness"]

log = logging.getLogger(__name__)


class FGSMRobustness(L.Callback):
    """At test time, also measure accuracy under FGSM at each epsilon and under PGD at ``pgd_epsilons``; print
    the table, log ``test/fgsm_acc_<eps>`` and ``test/pgd_acc_<eps>``, warn when catastrophic overfitting is
    suspected (PGD more than ``margin`` below FGSM, see ``zoo.evaluation.attacks.robustness``), and save
    ``fgsm_robustness.png`` (accuracy curves + FGSM examples).

    The normalization is ``mean``/``std`` when given, else the one the model recorded, else (a model
    that records none) the trainer's datamodule's.

    Args:
        epsilons: FGSM's budgets in pixel units.
        pgd_epsilons: PGD's budgets in pixel units (empty: no PGD).
        pgd_steps: PGD's steps.
        pgd_alpha: PGD's step size in pixel units; None: ``2.5 * eps / pgd_steps`` (0.025 at eps 0.1, 10 steps).
        margin: accuracy points (a fraction) PGD may fall below FGSM before the warning.
        output: where to save the PNG; by default ``<log_dir>/fgsm_robustness.png``.
        mean: per-channel normalization mean; overrides the one the model recorded.
        std: per-channel normalization std; overrides the one the model recorded.
        num_examples: example images per epsilon in the plot.
        seed: seeds PGD's random starts.
    """

    def __init__(
        self,
        epsilons: list[float] = list(EPSILONS),  # noqa: B006
        pgd_epsilons: list[float] = list(PGD_EPSILONS),  # noqa: B006
        pgd_steps: int = 10,
        pgd_alpha: float | None = None,
        margin: float = CO_MARGIN,
        output: str | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        num_examples: int = 8,
        seed: int = 0,
    ) -> None:
        self.epsilons = [float(e) for e in epsilons]
        self.pgd_epsilons = [float(e) for e in pgd_epsilons]
        for e in [*self.epsilons, *self.pgd_epsilons]:
            check_budget(e, pgd_steps, pgd_alpha)
        if not 0 <= margin <= 1:
            raise ValueError(f"margin is a fraction of accuracy in [0, 1], got {margin}")
        self.pgd_steps, self.pgd_alpha, self.margin = pgd_steps, pgd_alpha, margin
        self.output = output
        self.mean, self.std = mean, std
        self.num_examples, self.seed = num_examples, seed
        self.results: Robustness | None = None
        self.plot_path: Path | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._tally = _Tally(self.epsilons, self.pgd_epsilons, self.pgd_steps, self.pgd_alpha, self.num_examples, self.seed)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch[0], batch[1]
        self._tally.update(pl_module, x, y, *_normalization(trainer, pl_module, self.mean, self.std))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.results = self._tally.result()
        self.results.margin = self.margin
        for eps, acc in self.results.fgsm.items():
            pl_module.log(f"test/fgsm_acc_{eps:.2f}", acc)
        for eps, acc in self.results.pgd.items():
            pl_module.log(f"test/pgd_acc_{eps:.2f}", acc)
        for message in self.results.warnings():
            warnings.warn(message, stacklevel=1)
        if not trainer.is_global_zero:
            return
        title = f"Robustness of {type(pl_module).__name__} ({self._tally.total} test images)"
        print(format_table(self.results, title), flush=True)
        folder = run_folder(trainer)  # not trainer.log_dir: a broadcast, and only rank 0 is here
        self.plot_path = Path(self.output) if self.output else Path(folder) / "fgsm_robustness.png"
        names = getattr(pl_module, "class_names", None) or getattr(getattr(trainer, "datamodule", None), "class_names", None)
        plot_robustness(self.results, self._tally, self.plot_path, names)
        print(f"Robustness plot: {self.plot_path}", flush=True)


class AdversarialTraining(L.Callback):
    """Adversarial training: replace a share ``ratio`` of every training batch by adversarial examples.

    ``attack`` picks how they are crafted (budget ``epsilon`` in pixel units):

    - ``"fgsm"`` (the default): one step of ``epsilon`` from the clean image (Goodfellow et al., 2015). Known to
      overfit catastrophically: the model can learn to mask its gradient at the clean point.
    - ``"fgsm_rs"``: one step of ``alpha`` (default ``1.25 * epsilon``) from a uniform start in the ball,
      projected back into it and clipped to [0, 1] (Wong et al., 2020, "Fast is better than free").
    - ``"pgd"``: ``steps`` (default 10) steps of ``alpha`` (default ``2.5 * epsilon / steps``) from a random start
      (Madry et al., 2018); ``steps`` times the cost of a single-step attack.

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
        attack: ``"fgsm"``, ``"fgsm_rs"`` or ``"pgd"``.
        alpha: step size in pixel units (``fgsm_rs`` and ``pgd``); None: the attack's default.
        steps: gradient steps (``pgd`` only); None: 10.
    """

    def __init__(
        self,
        epsilon: float = 0.1,
        ratio: float = 0.5,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        attack: str = "fgsm",
        alpha: float | None = None,
        steps: int | None = None,
    ) -> None:
        if attack not in ATTACKS:
            raise ValueError(f"unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        if attack == "fgsm" and alpha is not None:
            raise ValueError("attack='fgsm' steps by epsilon: alpha applies to attack='fgsm_rs' or 'pgd'")
        if attack != "pgd" and steps not in (None, 1):
            raise ValueError(f"attack={attack!r} takes one step: steps={steps} applies to attack='pgd'")
        steps = (10 if attack == "pgd" else 1) if steps is None else steps
        check_budget(epsilon, steps, alpha)
        self.epsilon, self.ratio = epsilon, ratio
        self.mean, self.std = mean, std
        self.attack, self.alpha, self.steps = attack, alpha, steps

    def _alpha(self) -> float | None:
        if self.alpha is not None or self.attack == "pgd":
            return self.alpha  # pgd's own default: 2.5 * epsilon / steps
        return 1.25 * self.epsilon if self.attack == "fgsm_rs" else self.epsilon

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        x, y = batch[0], batch[1]  # (B, C, H, W) normalized, (B,)
        k = math.floor(self.ratio * len(x) + 0.5)
        if k == 0 or self.epsilon == 0:
            return
        mean, std = _normalization(trainer, pl_module, self.mean, self.std)
        modes = {module: module.training for module in pl_module.modules()}
        pl_module.eval()
        try:
            adversarial = pgd_normalized(pl_module, x[:k], y[:k], self.epsilon, mean or [0.0], std or [1.0],
                                         steps=self.steps, alpha=self._alpha(), random_start=self.attack != "fgsm")  # fmt: skip
        finally:
            for module, training in modes.items():  # exactly as before, e.g. a frozen backbone's norms stay in eval
                module.training = training
        with torch.no_grad():
            x[:k] = adversarial  # the loader shuffles, so the first k are a random share
