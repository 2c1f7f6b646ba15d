"""Measuring models: the test metric of shipped entries, feature evaluation, GAN metrics, adversarial attacks.

``shipped_metrics``  the one number per family that the manifest records for a shipped entry (``evaluate``)
``feature_eval``     linear-probe and k-NN accuracy of a frozen encoder (``python -m zoo.evaluation.feature_eval``)
``results_file``     the JSON results files measuring commands write and docs pages render: rows, machine, versions
``gan_metrics``      class accuracy and FID of generated images, judged by a classifier
``attacks``          FGSM / PGD robustness and adversarial training (``zoo.attacks`` in recipes)

Before the packages, ``zoo.evaluation`` was the module now called ``shipped_metrics``; its names are still
served from here, imported on first use (importing it reads ``datamodules``, which ``import zoo`` does not need).
"""

from __future__ import annotations

import importlib
from typing import Any

#: The old ``zoo.evaluation`` module's public names, now in ``zoo.evaluation.shipped_metrics``.
LEGACY_EVALUATION_NAMES = (
    "DEFAULT_JUDGE", "GAN_SAMPLES", "evaluate", "is_better", "load_judge", "metric_spec", "reference_matches",
    "reference_output", "resolve_datamodule_class", "summarize_reference", "build_datamodule",
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in LEGACY_EVALUATION_NAMES:
        return getattr(importlib.import_module("zoo.evaluation.shipped_metrics"), name)
    raise AttributeError(f"module 'zoo.evaluation' has no attribute {name!r}")
