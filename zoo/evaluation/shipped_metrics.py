"""The test metric of a shipped entry, measured the same way by the export tool and by CI.

    >>> result = evaluate(model, {"class_path": "datamodules.FashionMNISTDataModule", "init_args": {}})  # doctest: +SKIP
    >>> result["name"], result["value"]                                        # ("test/acc", 0.9312)

``evaluate`` rebuilds the test set from a datamodule spec (``{"class_path", "init_args"}``, the ``data:``
section of a recipe; the class is looked up among ``datamodules``' own classes, nothing named by a
string is imported) and measures one number per family:

| family | metric | better | tolerance in CI |
|---|---|---|---|
| classifiers | ``test/acc`` | higher | 0.003 (0.3 points, the issue's) |
| VAE | ``test/log_likelihood_iw`` (nats per image, k = ``iw_samples``), and ``test/elbo`` | higher | 0.1 nat |
| autoencoders | ``test/psnr`` (dB) | higher | 0.05 dB |
| DQN | ``test/return``, the held-out test seeds | higher | 5.0 (one of 100 episodes ending 500 steps early) |
| Seq2Seq, Transformer | ``test/exact_match`` (beam search) | higher | 0.003 |
| SimCLR | ``test/linear_probe_acc`` of the frozen features (and ``test/knn_acc``) | higher | 0.003 |
| forecaster, regressors | ``test/mae`` (scaled units), and the last-value forecast's | lower | 0.001 |
| conditional GAN | ``test/class_acc`` of generated images, judged by a classifier | higher | 0.003 |
| unconditional GAN | ``test/fid`` in that classifier's feature space | lower | 1% of the value |

Everything random is seeded (``seed``): the autoencoders' denoising noise, the GANs' noise (10,000
images, 1,000 per class), so a re-measurement on the same software gives the same number up to float
rounding; the tolerances leave room for other CPUs' rounding only. The global random state is left as it was.
``reference_output(model)`` is the model's output on a fixed seeded input, stored in the manifest.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

import datamodules
from zoo.core.base import ClassifierModule, RegressorModule, ZooModule
from zoo.core.tokenizer import BOS_ID
from zoo.evaluation.gan_metrics import classifier_input, frechet_distance
from zoo.hub.pretrained import load_trained
from zoo.models.generative.autoencoder import AutoencoderModule
from zoo.models.generative.gan_base import GANModule
from zoo.models.generative.vae import VAE
from zoo.models.rl.dqn import DQN
from zoo.models.selfsupervised.simclr import SimCLR
from zoo.models.sequence.bert import BertForMaskedLM
from zoo.models.sequence.decoding import TranslationModule

__all__ = [
    "DEFAULT_JUDGE",
    "GAN_SAMPLES",
    "evaluate",
    "is_better",
    "load_judge",
    "metric_spec",
    "reference_matches",
    "reference_output",
    "resolve_datamodule_class",
    "summarize_reference",
]

#: The classifier that judges the GANs' samples when none is passed: the shipped Fashion-MNIST ResNet-20.
DEFAULT_JUDGE = "resnet20.fashionmnist"
#: Images generated per GAN measurement (1,000 per class for a 10-class conditional GAN).
GAN_SAMPLES = 10_000

# family -> (metric, higher is better, tolerance); the first row the model is an instance of wins.
_METRICS: list[tuple[type, str, bool, float]] = [
    (ClassifierModule, "test/acc", True, 0.003),
    (VAE, "test/log_likelihood_iw", True, 0.1),  # nats per image, k = iw_samples; the row also records the ELBO
    (AutoencoderModule, "test/psnr", True, 0.05),
    (DQN, "test/return", True, 5.0),
    (TranslationModule, "test/exact_match", True, 0.003),
    (BertForMaskedLM, "test/mlm_acc", True, 0.003),  # the test split's masks are drawn with a fixed seed
    (SimCLR, "test/linear_probe_acc", True, 0.003),  # the frozen features' probe (full-batch L-BFGS: deterministic)
    (RegressorModule, "test/mae", False, 0.001),
]
_FID_RELATIVE_TOLERANCE = 0.01


def metric_spec(model: ZooModule) -> dict[str, Any]:
    """``{"name", "higher_is_better", "tolerance"}`` of ``model``'s family (the tolerance of a FID is relative)."""
    if isinstance(model, GANModule):
        if model.conditional:
            return {"name": "test/class_acc", "higher_is_better": True, "tolerance": 0.003}
        return {"name": "test/fid", "higher_is_better": False, "tolerance": None}
    for family, name, higher, tolerance in _METRICS:
        if isinstance(model, family):
            return {"name": name, "higher_is_better": higher, "tolerance": tolerance}
    raise ValueError(f"no test metric is defined for {type(model).__name__}; families: {[f.__name__ for f, *_ in _METRICS]}, GANModule")


def resolve_datamodule_class(class_path: str) -> type:
    """A class of the ``datamodules`` package from "FashionMNISTDataModule", "datamodules.FashionMNISTDataModule"
    or "datamodules.vision.FashionMNISTDataModule". Never imports anything named by the string."""

    name = class_path.rsplit(".", 1)[-1]
    cls = getattr(datamodules, name, None) if name in datamodules.__all__ else None
    module = class_path.rsplit(".", 1)[0] if "." in class_path else None
    if (
        not isinstance(cls, type)
        or not issubclass(cls, L.LightningDataModule)
        or (module is not None and module not in ("datamodules", cls.__module__))
    ):
        known = sorted(n for n in datamodules.__all__ if isinstance(getattr(datamodules, n), type) and issubclass(getattr(datamodules, n), L.LightningDataModule))
        raise ValueError(f"{class_path!r} is not one of the datamodules package's datamodules: {', '.join(known)}")
    return cls


def build_datamodule(data: dict[str, Any]) -> L.LightningDataModule:
    """The datamodule a spec ``{"class_path", "init_args"}`` describes."""
    if not isinstance(data, dict) or "class_path" not in data:
        raise ValueError(f"expected a datamodule spec {{'class_path': ..., 'init_args': {{...}}}}, got {data!r}")
    return resolve_datamodule_class(data["class_path"])(**dict(data.get("init_args") or {}))


# -- the fixed input --------------------------------------------------------------------------------
@torch.no_grad()
def reference_output(model: ZooModule, *, seed: int = 0, batch: int = 4) -> Tensor:
    """``model``'s output, in eval mode, on a fixed input drawn with ``seed``: noise of ``input_shape``
    (images, rows, windows, observations), token ids below the vocabulary size (with bos first for a
    decoder), latent noise (and the classes in turn) for a generator. Returns the float output, flattened to (N,)."""
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, GANModule):
            z = torch.randn(batch, model.latent_dim, generator=g)
            labels = torch.arange(batch) % model.num_classes if model.conditional else None
            out = model(z.to(model.device), None if labels is None else labels.to(model.device))
        elif isinstance(model, TranslationModule):
            hp = model.hparams
            src = torch.randint(4, hp.src_vocab_size, (batch, 12), generator=g)  # (B, S)
            tgt = torch.randint(4, hp.tgt_vocab_size, (batch, 10), generator=g)  # (B, T)
            tgt[:, 0] = BOS_ID
            out = model(src.to(model.device), tgt.to(model.device))  # (B, T, V)
        else:
            example = model.example_input_array
            if example.dtype == torch.long:  # token ids: the vocabulary is the model's
                vocab = int(model.hparams.get("vocab_size") or 2)
                x = torch.randint(1, max(2, vocab), (batch, *example.shape[1:]), generator=g)
            else:
                x = torch.randn(batch, *example.shape[1:], generator=g)
            out = model(x.to(model.device))
    finally:
        model.train(was_training)
    return out.detach().float().flatten().cpu()


def summarize_reference(output: Tensor, *, atol: float = 1e-4, rtol: float = 1e-4) -> dict[str, Any]:
    """The manifest's ``reference_output``: the sum and the first 8 values of ``reference_output(model)``."""
    return {"sum": float(output.double().sum()), "first": [float(v) for v in output[:8]], "atol": atol, "rtol": rtol}


def reference_matches(output: Tensor, reference: dict[str, Any]) -> bool:
    """True when ``output`` agrees with a stored summary: |a - b| <= atol + rtol * |b| for the sum and each first value."""
    got = summarize_reference(output)
    atol, rtol = float(reference["atol"]), float(reference.get("rtol", 0.0))
    pairs = [(got["sum"], reference["sum"])] + list(zip(got["first"], reference["first"], strict=True))
    return all(abs(a - b) <= atol + rtol * abs(b) for a, b in pairs)


# -- measuring --------------------------------------------------------------------------------------
def _trainer() -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


@torch.no_grad()
def _naive_forecast_mae(dm: L.LightningDataModule) -> float:
    """MAE (scaled units) of the last-value forecast on the test windows, averaged like ``test/mae``."""
    total, count = 0.0, 0
    for x, y in dm.test_dataloader():
        total += float((dm.naive_forecast(x) - y).abs().sum())
        count += y.numel()
    return total / max(1, count)


def load_judge(classifier: ClassifierModule | str | None) -> tuple[ClassifierModule, str]:
    """The classifier that judges generated images and a label for it: a module, a shipped entry's name
    (default ``DEFAULT_JUDGE``) or a ``.ckpt`` path (``zoo.hub.pretrained.load_trained``)."""
    if isinstance(classifier, ClassifierModule):
        return classifier.eval(), type(classifier).__name__
    name = classifier or DEFAULT_JUDGE
    model = load_trained(name)  # a checkpoint or .safetensors file, else a shipped entry
    label = Path(name).name if Path(name).is_file() else name
    if not isinstance(model, ClassifierModule):
        raise ValueError(f"{name} holds a {type(model).__name__}, not a classifier to judge generated images")
    return model.eval(), label


@torch.no_grad()
def _gan_metrics(model: GANModule, dm: L.LightningDataModule, judge: ClassifierModule, seed: int, num_samples: int) -> dict[str, float]:
    """Class accuracy (conditional) and FID of ``num_samples`` generated images against the test images,
    both in ``judge``'s eyes; the noise is drawn from ``seed``, the classes in turn."""

    model.eval()
    fid = frechet_distance(judge)
    dm.setup("test")
    for batch in dm.test_dataloader():
        x = dm.on_after_batch_transfer(batch, 0)[0]  # (B, C, H, W) normalized, as the GAN was trained on
        fid.update(classifier_input(judge, model, model.to_pixels(x)), real=True)
    g = torch.Generator().manual_seed(seed)
    correct = torch.zeros(model.num_classes, dtype=torch.long)  # (K,) per asked class
    asked = torch.zeros(model.num_classes, dtype=torch.long)
    made = 0
    while made < num_samples:
        n = min(500, num_samples - made)
        z = torch.randn(n, model.latent_dim, generator=g)
        labels = torch.arange(made, made + n) % model.num_classes if model.conditional else None
        images = classifier_input(judge, model, model(z, labels))  # generated pixels as the judge reads them
        fid.update(images, real=False)
        if labels is not None:
            hits = (judge(images).argmax(dim=1) == labels).long()  # (n,)
            correct += torch.bincount(labels, weights=hits, minlength=model.num_classes).long()
            asked += torch.bincount(labels, minlength=model.num_classes)
        made += n
    out = {"test/fid": float(fid.compute())}
    if model.conditional:
        out["test/class_acc"] = int(correct.sum()) / made
        for k in range(model.num_classes):  # the share of class k's samples the judge puts in class k
            out[f"test/class_acc_{k}"] = int(correct[k]) / max(1, int(asked[k]))
    return out


def evaluate(
    model: ZooModule,
    data: dict[str, Any],
    *,
    classifier: ClassifierModule | str | None = None,
    seed: int = 0,
    num_samples: int = GAN_SAMPLES,
) -> dict[str, Any]:
    """Measure ``model``'s test metric on the test split that ``data`` describes.

    Args:
        model: a zoo model (its weights are not changed; it is left on the CPU, in eval mode).
        data: ``{"class_path": "datamodules.X", "init_args": {...}}``, a recipe's ``data:`` section.
        classifier: GANs only: the judge, a classifier module, a shipped entry's name or a ``.ckpt``
            path; default the shipped ``resnet20.fashionmnist``.
        seed: seed of everything random in the measurement (denoising noise, generated images).
        num_samples: GANs only: images generated.

    Returns:
        ``{"name", "value", "higher_is_better", "tolerance", "metrics"}``: the family's metric, its tolerance
        for re-verification, and every test metric measured; a forecaster adds ``"baseline"`` (the
        last-value forecast's MAE), a GAN ``"judge"`` (which classifier judged), a conditional GAN ``"fid"``
        and ``"per_class"`` (each asked class's accuracy, in label order).
    """
    spec = metric_spec(model)
    model.cpu()  # measured on the CPU, as CI measures it
    dm = build_datamodule(data)
    result: dict[str, Any] = dict(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(model, GANModule):
            judge, result["judge"] = load_judge(classifier)
            judge.cpu()
            metrics = _gan_metrics(model, dm, judge, seed, num_samples)
        else:
            metrics = _floats(_trainer().test(model, datamodule=dm, verbose=False)[0])
    model.eval()
    if spec["name"] not in metrics:
        raise RuntimeError(f"{type(model).__name__} logged no {spec['name']} at test; it logged {sorted(metrics)}")
    result["value"] = metrics[spec["name"]]
    if result["tolerance"] is None:  # a FID: relative
        result["tolerance"] = round(max(_FID_RELATIVE_TOLERANCE * result["value"], 1e-3), 6)
    result["metrics"] = metrics
    if "test/elbo" in metrics and spec["name"] != "test/elbo":  # a VAE: the bound next to the tighter estimate
        result["elbo"] = metrics["test/elbo"]
    if spec["name"] == "test/class_acc":  # a conditional GAN: its FID and each class's accuracy beside it
        result["fid"] = metrics["test/fid"]
        result["per_class"] = [metrics[f"test/class_acc_{k}"] for k in range(model.num_classes)]
    if hasattr(dm, "naive_forecast"):
        naive = _naive_forecast_mae(dm)
        result["baseline"] = {"name": "last-value forecast test/mae", "value": naive}
        if hasattr(dm, "target_std"):
            result["baseline"]["value_units"] = naive * dm.target_std
    result["num_test_samples"] = _test_size(model, dm)
    return result


def _test_size(model: ZooModule, dm: L.LightningDataModule) -> int | None:
    if isinstance(model, DQN):
        return int(model.hparams.eval_episodes)
    test_set = getattr(dm, "test_set", None)
    return len(test_set) if test_set is not None else None


def is_better(new: float, old: float, higher_is_better: bool) -> bool:
    """Strictly better: a tie does not replace a shipped file."""
    if math.isnan(new):
        return False
    return new > old if higher_is_better else new < old
