"""Adversarial attacks for any zoo classifier: FGSM (Goodfellow et al., 2015) and PGD (Madry et al., 2018), the
robustness evaluation with its check for catastrophic overfitting, and adversarial training (FGSM, FGSM from a
random start as in Wong et al., 2020, or PGD).

Zoo classifiers read *normalized* images, ``(pixels - mean) / std``, with the statistics they recorded in
their hyperparameters (``model.hparams.mean`` / ``std``, see ``zoo.core.preprocessing.ImageInput``),
while the attack's budget ``epsilon`` is in *pixel* space [0, 1], where "0.1" means what it says and the
adversarial image must stay a valid image. So the attacks step and clamp in pixel space and the model
reads the renormalized result. Explicit ``mean=`` / ``std=`` arguments override what the model recorded.

    >>> adv = zoo.attacks.fgsm(model, pixels, labels, 0.1)                 # the model's own normalization  # doctest: +SKIP
    >>> adv = zoo.attacks.pgd(model, pixels, labels, 0.1, steps=10)        # 10 steps of 0.025, random start  # doctest: +SKIP
    >>> adv = zoo.attacks.fgsm(net, pixels, labels, 0.1, mean=[0.286], std=[0.353])   # any nn.Module  # doctest: +SKIP
    >>> report = zoo.attacks.robustness(model, test_batches)   # .clean, .fgsm, .pgd, .suspected  # doctest: +SKIP

From the command line, as callbacks:

    python train.py test --config configs/lenet5_fashionmnist.yaml --ckpt_path X --trainer.callbacks+=zoo.attacks.FGSMRobustness
    python train.py fit --config configs/resnet9_fast_fashionmnist_robust.yaml   # AdversarialTraining(attack="fgsm_rs")

Modules, by role: ``perturbation`` (the attacks), ``robustness`` (the evaluation and the overfitting check),
``plot`` (the figure), ``callbacks`` (``FGSMRobustness``, ``AdversarialTraining``).
"""

from zoo.evaluation.attacks.callbacks import AdversarialTraining, FGSMRobustness
from zoo.evaluation.attacks.perturbation import ATTACKS, fgsm, fgsm_normalized, pgd, pgd_normalized, recorded_normalization
from zoo.evaluation.attacks.plot import plot_robustness
from zoo.evaluation.attacks.robustness import (
    CO_MARGIN,
    EPSILONS,
    PGD_EPSILONS,
    Robustness,
    format_table,
    overfitting_suspected,
    robustness,
)

__all__ = [
    "ATTACKS",
    "CO_MARGIN",
    "EPSILONS",
    "PGD_EPSILONS",
    "AdversarialTraining",
    "FGSMRobustness",
    "Robustness",
    "fgsm",
    "fgsm_normalized",
    "format_table",
    "overfitting_suspected",
    "pgd",
    "pgd_normalized",
    "plot_robustness",
    "recorded_normalization",
    "robustness",
]
