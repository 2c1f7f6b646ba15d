"""Fine-tuning: a new model starts from the weights of a trained one, ``init_from_pretrained(model, source)``.

    >>> model = zoo.create_model("resnet20", in_channels=1, image_size=28, num_classes=10,  # doctest: +SKIP
    ...                          pretrained="resnet20.fashionmnist")
    python train.py fit --config configs/resnet20_digits_finetune.yaml --model.init_args.pretrained best.ckpt

Every zoo model takes ``pretrained=`` (``ZooModule``), but its constructor loads nothing: the builders build
the model from its own arguments (those the CLI links from the datamodule among them) and then hand it the
weights with ``apply_pretrained`` (``zoo.create_model``, the CLI's ``--model.init_args.pretrained``, hubconf). Only weights travel: the optimizer,
its schedule, the epoch and the global step start afresh. Resuming a run (``fit --ckpt_path``) is another
thing, Lightning's restoring of all of those, and its weights win: they are loaded after construction.

The source is a shipped entry name or a ``.safetensors`` path (``zoo.pretrained.load_pretrained``), or a
training checkpoint (``zoo.load_checkpoint``: weights only). It must hold the model's class, and its weights
must fit key for key and shape for shape, with two exceptions, both logged:

* ``num_classes`` differs (a classifier): the head (``head.*``) keeps its fresh initialisation;
* the source is a self-supervised encoder (``SimCLR``) whose ``backbone`` is of the model's class: the
  backbone's weights are copied and the head keeps its fresh initialisation (the encoder trained none);
* ``in_channels`` differs (an image classifier): the first convolution's kernel is adapted as
  ``ImageClassifier.adapt_input_channels`` adapts it (``zoo.image.adapt_conv_weight``).

Training progress kept in buffers (``ZooModule.training_state``: DQN's replay buffer and counters, the GANs'
update counters, Seq2Seq's teacher-forcing schedule) is not copied: it starts afresh, as the optimizer does.

Anything else (say a ViT built for another image size) is a ``ValueError`` listing the mismatching keys
and shapes and the hyperparameters that differ. What the source records for using the model on its own
(normalization, class names, tokenizers) is copied where the model records none; a model whose recorded
tokenizer differs from the source's is refused, since its embedding rows would stand for other tokens.
"""

from __future__ import annotations

import contextvars
import logging
import os

from torch import Tensor

from zoo.core.base import ClassifierModule, ZooModule
from zoo.core.image import ImageClassifier, adapt_channel_stats, adapt_conv_weight
from zoo.hub.pretrained import load_trained
from zoo.models.sequence.bert import BertClassifier, BertForMaskedLM

__all__ = ["apply_pretrained", "init_from_pretrained", "load_source"]

log = logging.getLogger(__name__)

_TOKENIZERS = ("tokenizer", "src_tokenizer", "tgt_tokenizer")
# Arguments that shape training or preprocessing, not the weights: left out of a mismatch's diagnosis.
_NOT_ARCHITECTURE = {
    "optimizer", "lr", "weight_decay", "momentum", "scheduler", "pretrained", "mean", "std", "class_names",
    "freeze_backbone", "dropout", "label_smoothing", "resize_size", "beam_size", "max_decode_len", *_TOKENIZERS,
}  # fmt: skip


def load_source(source: str | os.PathLike | ZooModule) -> ZooModule:
    """The trained model behind ``pretrained=``: a checkpoint file, a ``.safetensors`` file or a shipped entry name
    (``zoo.hub.pretrained.load_trained``, the one resolver)."""
    if isinstance(source, ZooModule):
        return source
    # Under LightningCLI the model is built inside a context that hands the CLI's arguments to every
    # LightningModule constructed meanwhile (Lightning's ``_given_hyperparameters``), the source included,
    # which would then load its own source again, and so on. An empty context lets it record its own.
    return contextvars.Context().run(load_trained, os.fspath(source))


def _head_keys(model: ZooModule, keys: list[str]) -> list[str]:
    return [k for k in keys if k.startswith("head.")] if isinstance(model, ClassifierModule) else []


def _training_state_keys(model: ZooModule, keys: list[str]) -> list[str]:
    names = model.training_state
    return [k for k in keys if any(k == n or (n.endswith(".") and k.startswith(n)) for n in names)]


def _differing_hparams(model: ZooModule, src: ZooModule) -> list[str]:
    out = []
    for key, value in model.hparams.items():
        if key.startswith("_") or key in _NOT_ARCHITECTURE or key not in src.hparams:
            continue
        if src.hparams[key] != value:
            out.append(f"{key}={value!r} (source: {src.hparams[key]!r})")
    return out


def _check_fit(model: ZooModule, src: ZooModule, incoming: dict[str, Tensor], target: dict[str, Tensor], label: str) -> None:
    missing = [k for k in target if k not in incoming]
    extra = [k for k in incoming if k not in target]
    shapes = [
        f"{k}: {tuple(incoming[k].shape)} in the source, {tuple(target[k].shape)} here"
        for k in incoming
        if k in target and incoming[k].shape != target[k].shape
    ]
    if not (missing or extra or shapes):
        return
    lines = [f"the weights of {label} do not fit this {type(model).__name__}:"]
    if shapes:
        lines.append("  shapes differ: " + "; ".join(shapes))
    if missing:
        lines.append("  missing from the source: " + ", ".join(missing))
    if extra:
        lines.append("  not in this model: " + ", ".join(extra))
    differing = _differing_hparams(model, src)
    if differing:
        lines.append("  arguments that differ: " + ", ".join(differing))
    lines.append("Build the model with the source's configuration; only num_classes and in_channels may differ.")
    raise ValueError("\n".join(lines))


def _copy_recorded(model: ZooModule, src: ZooModule, head_copied: bool, label: str) -> None:
    """Normalization, class names and tokenizers the source records, where the model records none."""
    hp, src_hp = model.hparams, src.hparams
    for key in _TOKENIZERS:
        ours, theirs = hp.get(key), src_hp.get(key)
        if ours and theirs and ours != theirs:
            raise ValueError(
                f"{key} differs from the one {label} was trained with: its embedding rows would stand for other "
                "tokens. Fine-tune on data encoded with the source's vocabulary (or build the vocabulary from it)."
            )
        if key in hp and not ours and theirs:
            hp[key] = theirs
    if getattr(model, "image_input", None) is None:  # reads no images (zoo.core.preprocessing.ImageInput)
        return
    if hp.get("mean") is None and src_hp.get("mean") is not None:
        mean, std = src_hp["mean"], src_hp["std"]
        if isinstance(model, ImageClassifier):
            mean, std = adapt_channel_stats(mean, std, model.in_channels)
        model.record_preprocessing(mean, std)
    if head_copied and hp.get("class_names") is None and src_hp.get("class_names") is not None:
        hp["class_names"] = list(src_hp["class_names"])


def init_from_pretrained(model: ZooModule, source: str | os.PathLike | ZooModule, *, label: str | None = None) -> None:
    """Copy the weights of ``source`` into ``model``, in place (see the module's docstring for the rules).

    Args:
        model: a freshly built zoo model.
        source: a shipped entry name, a ``.safetensors`` or ``.ckpt`` path, or a zoo model of the same class.
        label: how messages name the source (default: ``pretrained=<source>``).

    Raises:
        ValueError: the source holds another class, or its weights do not fit (keys and shapes listed).
    """
    if label is None:
        label = f"pretrained={os.fspath(source)!r}" if not isinstance(source, ZooModule) else f"the given {type(source).__name__}"
    src = load_source(source)
    # A self-supervised encoder (SimCLR) holds its backbone as ``backbone``: a model of this class gives its
    # weights, with a fresh head (the encoder never trained one).
    encoder = getattr(src, "backbone", None)
    from_encoder = type(src) is not type(model) and isinstance(encoder, ZooModule) and type(encoder) is type(model)
    if from_encoder:
        log.info("%s: taking the %s backbone of %s (%s)", type(model).__name__, type(encoder).__name__, label, type(src).__name__)
        src = encoder
    if type(src) is not type(model):
        raise ValueError(
            f"{label} holds a {type(src).__name__}, but this model is a {type(model).__name__}: "
            f"weights are copied only between models of the same class (choose {type(src).__name__}, or another source)"
        )
    target = model.state_dict()
    incoming = dict(src.state_dict())
    name = type(model).__name__

    for key in _training_state_keys(model, list(incoming)):
        del incoming[key]
    for key in _training_state_keys(model, list(target)):
        incoming[key] = target[key]  # counters and schedules start afresh

    head_copied = True
    if isinstance(model, ClassifierModule) and (from_encoder or (src.num_outputs, src.binary) != (model.num_outputs, model.binary)):
        head_copied = False
        for key in _head_keys(model, list(incoming)):
            del incoming[key]
        for key in _head_keys(model, list(target)):
            incoming[key] = target[key]  # the fresh head stays
        if from_encoder:
            log.info("%s: %s trained no classifier head: a new %d-class head is initialised", name, label, model.num_classes)
        else:
            log.info("%s: %s was trained for %d classes: its head is dropped, a new %d-class head is initialised",
                     name, label, src.num_classes, model.num_classes)  # fmt: skip

    if isinstance(model, ImageClassifier) and model.stem_conv and src.in_channels != model.in_channels:
        key = f"{model.stem_conv}.weight"
        if key in incoming:
            incoming[key] = adapt_conv_weight(incoming[key], model.in_channels)
            log.info("%s: the first convolution of %s adapted from %d to %d input channels", name, label, src.in_channels, model.in_channels)

    _check_fit(model, src, incoming, target, label)
    model.load_state_dict(incoming, strict=True)
    _copy_recorded(model, src, head_copied, label)
    log.info("%s: weights initialised from %s", name, label)



def apply_pretrained(model: ZooModule, source: str | os.PathLike | ZooModule) -> ZooModule:
    """What every builder does with ``pretrained=``: copy the weights of ``source`` into the freshly built ``model``
    and record the source in ``model.hparams["pretrained"]``, so its checkpoints say where it started.

    A ``BertClassifier`` started from a ``BertForMaskedLM`` takes its encoder (``BertClassifier.load_encoder``);
    every other pair follows ``init_from_pretrained``. Returns ``model``.
    """
    label = f"pretrained={os.fspath(source)!r}" if not isinstance(source, ZooModule) else f"the given {type(source).__name__}"
    src = load_source(source)
    if isinstance(model, BertClassifier) and isinstance(src, BertForMaskedLM):
        model.load_encoder(src, label=label)
    else:
        init_from_pretrained(model, src, label=label)
    if not isinstance(source, ZooModule):
        model.hparams["pretrained"] = os.fspath(source)
    return model
