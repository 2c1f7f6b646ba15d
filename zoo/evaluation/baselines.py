"""Linear baselines: the bar a shipped classifier has to clear.

A network that does not beat logistic regression on the raw pixels by a clear margin has not learned what
its architecture exists for, so ``zoo-export`` refuses to ship a classifier below ``baseline + SHIPPING_MARGIN``
(``check_shipping_bar``), and the learning tests put their thresholds above the same figures.

Each baseline is multinomial logistic regression (scikit-learn, lbfgs) trained on the datamodule's training
images scaled to [0, 1] and scored on its test split, measured once by the command recorded next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LINEAR_BASELINES", "SHIPPING_MARGIN", "LinearBaseline", "check_shipping_bar", "linear_baseline"]

#: points (as a fraction) a shipped classifier must score above its dataset's linear baseline
SHIPPING_MARGIN = 0.02


@dataclass(frozen=True)
class LinearBaseline:
    """Test accuracy of logistic regression on raw pixels, and the command that measured it.

    Args:
        dataset: the dataset's name as the manifest's rows give it.
        value: test accuracy in [0, 1].
        command: the command that prints ``value``.
    """

    dataset: str
    value: float
    command: str


_SKLEARN = (
    "python -c \"from sklearn.linear_model import LogisticRegression; from datamodules import {dm} as D; "
    "dm = D({args}); dm.setup(); (x, y), (u, v) = dm.train_set.tensors, dm.test_set.tensors; "
    "print(LogisticRegression(max_iter={iters}).fit(x.flatten(1).numpy() / 255, y).score(u.flatten(1).numpy() / 255, v))\""
)

#: keyed by the datamodule's class path, as recipes and manifest rows name it
LINEAR_BASELINES: dict[str, LinearBaseline] = {
    # lbfgs converged in 625 iterations (scikit-learn 1.9); a torch linear softmax fitted by L-BFGS: 0.8444
    "datamodules.FashionMNISTDataModule": LinearBaseline(
        "Fashion-MNIST", 0.8440, _SKLEARN.format(dm="FashionMNISTDataModule", args="val_fraction=0.0", iters=1000)
    ),
    # the 8x8 originals, the split every digits recipe uses (test: 359 images held out with seed 42)
    "datamodules.DigitsDataModule": LinearBaseline(
        "scikit-learn digits", 0.9666, _SKLEARN.format(dm="DigitsDataModule", args="image_size=8, val_fraction=0.0", iters=5000)
    ),
}


def linear_baseline(data_class_path: str) -> LinearBaseline | None:
    """The linear baseline of a datamodule (``"datamodules.FashionMNISTDataModule"``), or None when unmeasured."""
    return LINEAR_BASELINES.get(data_class_path)


def check_shipping_bar(metric: dict[str, Any], data: dict[str, Any]) -> str | None:
    """Why a classifier's measured ``metric`` may not ship on ``data``, or None when it may.

    Args:
        metric: the manifest row's ``metric`` (``name``, ``value``).
        data: the manifest row's ``data`` (``class_path``, ``init_args``).
    """
    if metric.get("name") != "test/acc":
        return None
    baseline = linear_baseline(str(data.get("class_path", "")))
    if baseline is None:
        return None
    bar = baseline.value + SHIPPING_MARGIN
    if metric["value"] >= bar:
        return None
    return (
        f"test/acc {metric['value']:.2%} is below the shipping bar {bar:.2%}: logistic regression on the raw pixels "
        f"of {baseline.dataset} scores {baseline.value:.2%} (measured by: {baseline.command}), and a shipped classifier "
        f"must beat it by {SHIPPING_MARGIN * 100:.0f} points"
    )
