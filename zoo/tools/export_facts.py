"""What a manifest row records about a checkpoint: the hardware it trained on, the test data its recipe
names, the dataset's name and license, and what chose the checkpoint. ``zoo.tools.export`` writes the row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from zoo.evaluation.results_file import cpu_name as _cpu_name  # the CPU line every results file records

__all__ = ["ExportRefused", "describe_dataset", "detect_hardware", "read_data_spec", "selection"]


class ExportRefused(ValueError):
    """The entry is not written: not better than the shipped one, too large, or inconsistent."""



# datamodule class -> (dataset name, license)
_DATASETS: dict[str, tuple[str, str]] = {
    "FashionMNISTDataModule": ("Fashion-MNIST", "MIT"),
    "MNISTDataModule": ("MNIST", "CC BY-SA 3.0"),
    "CIFAR10DataModule": ("CIFAR-10", "no license stated (Krizhevsky, 2009)"),
    "DigitsDataModule": ("scikit-learn digits (UCI optical recognition of handwritten digits)", "CC BY 4.0"),
    "EnvironmentDataModule": ("Gymnasium environment", "MIT"),
    "TranslationDataModule": ("number words, generated with num2words", "LGPL-2.1 (num2words)"),
    "TimeSeriesDataModule": ("Mauna Loa weekly CO2 (statsmodels)", "public domain"),
    "IMDBDataModule": ("IMDB Large Movie Review Dataset", "research use (Maas et al., 2011)"),
    "TextCorpusDataModule": ("Debian fortunes", "BSD (fortune-mod)"),
    "MaskedLMDataModule": ("Debian fortunes and GCIDE definitions", "BSD (fortune-mod); GPL (GCIDE)"),
}

# -- what the manifest row records ------------------------------------------------------------------------


def detect_hardware(checkpoint: str | os.PathLike) -> str:
    """"GPU: <name>" when the checkpoint's tensors were saved from a CUDA device, else "CPU: <model name>, N cores"."""
    locations: set[str] = set()

    def record(storage, location):  # torch.load calls this for every storage, with where it was saved
        locations.add(str(location))
        return storage

    torch.load(checkpoint, map_location=record, weights_only=True)
    if any(loc.startswith("cuda") for loc in locations):
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CUDA device (pass --hardware to name it)"
        return f"GPU: {name}"
    return f"CPU: {_cpu_name()}, {os.cpu_count()} cores"


def read_data_spec(config: str | os.PathLike) -> dict[str, Any]:
    """The ``data:`` section of a recipe or of a run's saved config.yaml, as ``{"class_path", "init_args"}``."""
    import yaml

    text = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    data = text.get("data")
    if isinstance(data, str):
        data = {"class_path": data}
    if not isinstance(data, dict) or "class_path" not in data:
        raise ExportRefused(f"{config} has no data: section with a class_path; the test set cannot be rebuilt")
    class_path = str(data["class_path"])
    if "." not in class_path:
        class_path = f"datamodules.{class_path}"
    return {"class_path": class_path, "init_args": dict(data.get("init_args") or {})}


def describe_dataset(model, data: dict[str, Any], measured: dict[str, Any]) -> dict[str, str]:
    """``{"name", "license", "split"}`` for the manifest, from the datamodule's class and the test set's size."""
    cls = data["class_path"].rsplit(".", 1)[-1]
    name, license_ = _DATASETS.get(cls, (cls, "unknown"))
    args, n = data["init_args"], measured.get("num_test_samples")
    if cls == "EnvironmentDataModule":
        env, seed = model.hparams.env_id, model.hparams.test_seed
        return {"name": f"{env} (Gymnasium)", "license": license_, "split": f"test, {n} episodes, seeds {seed}-{seed + n - 1}"}
    if cls == "TranslationDataModule":
        lang = args.get("lang", "fr")
        name = f"number words en→{lang}, generated with num2words"
        return {"name": name, "license": license_, "split": f"test, {n:,} pairs (numbers held out of training)"}
    if cls == "TimeSeriesDataModule":
        return {"name": name, "license": license_, "split": f"test, {n:,} windows (the end of the series)"}
    if cls in ("TextCorpusDataModule", "MaskedLMDataModule"):
        return {"name": name, "license": license_, "split": f"test, {n:,} texts held out" if n is not None else "test"}
    if cls in ("DigitsDataModule", "BlobsDataModule", "LinearRegressionDataModule"):
        seed = args.get("seed", 42)
        return {"name": name, "license": license_, "split": f"test, {n:,} samples held out with seed {seed}"}
    return {"name": name, "license": license_, "split": f"test, {n:,} images" if n is not None else "test"}


# -- writing ----------------------------------------------------------------------------------------------
def selection(raw: dict[str, Any]) -> dict[str, Any] | None:
    """What chose the checkpoint: the ``ModelCheckpoint``'s monitored metric and its best value, from its state."""
    for key, state in (raw.get("callbacks") or {}).items():
        if str(key).startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor"):
            score = state.get("best_model_score")
            value = round(float(score), 6) if score is not None else None
            return {"monitor": str(state["monitor"]), "value": value}
    return None
