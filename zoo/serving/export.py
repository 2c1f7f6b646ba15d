"""Serving files: a model as an ONNX file (onnxruntime, TensorRT, ...) or a ``torch.export`` program (``.pt2``).

    >>> model = zoo.create_model("lenet5", pretrained="fashionmnist")
    >>> zoo.export_onnx(model, "lenet5.onnx")                      # doctest: +SKIP
    >>> zoo.export_program(model, "lenet5.pt2")                    # doctest: +SKIP
    >>> zoo.read_export_metadata("lenet5.onnx")["class_names"]     # doctest: +SKIP
    ['T-shirt/top', 'Trouser', ...]

What each family exports, the batch size always dynamic:

==========================  =========================================================================
classifiers                 ``input`` (B, *input_shape), normalized -> ``logits`` (B, num_classes)
                            (token ids (B, T) for the TransformerClassifier; T dynamic too)
autoencoders                ``input`` (B, C, H, W), normalized -> ``reconstruction`` pixels in [0, 1]
GANs (the generator only)   ``noise`` (B, latent_dim) [+ ``labels`` (B,) int64, conditional] ->
                            ``images`` (B, C, H, W) pixels in [0, 1]
DQN (the Q-network only)    ``input`` (B, obs_dim) -> ``output`` action values (B, num_actions)
regressors                  ``input`` (B, *input_shape) -> ``output``
==========================  =========================================================================

Refused with a ValueError: the translation models (Seq2Seq, Transformer), which decode token by token
with a beam search around the network, and recurrent classifiers of token ids, which run packed
sequences of per-sample lengths. Their Python API (``zoo.translate``, ``model(ids)``) serves them.

The file records what a user needs next to the model (ONNX ``metadata_props``; the ``.pt2``'s extra file
``zoo_metadata.json``): the model class, its hyperparameters, input shape and dtype, what the output is,
and for image models the preprocessing (``model.transforms()``: size, mean, std, class names) that turns a
raw image into the input. ``read_export_metadata(path)`` reads it back from either kind of file.

Both writers go through a temporary file in the target's folder and ``os.replace``: an export that fails
or is interrupted leaves no file, or the previous one untouched.

ONNX has two exporters in torch: the TorchScript tracer (``dynamo=False``; deprecated by torch, still
shipped) and the ``torch.export``-based one (``dynamo=True``, torch's default since 2.9). The default here,
``dynamo=None``, takes the tracer, 2-30x cheaper on these models (CPU seconds: ResNet-20 0.9 vs 2.7, the
LSTM 0.1 vs 3.9, ResNet-50 4.5 vs 7.1), and the dynamo exporter where the tracer cannot do the job. Both
give PyTorch's outputs within 1e-4 of their scale at any batch size (tests/serving/test_deploy.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.core.base import ClassifierModule
from zoo.hub.pretrained import _write_atomic, clean_hparams
from zoo.models.generative.autoencoder import AutoencoderModule
from zoo.models.generative.gan_base import GANModule
from zoo.models.rl.dqn import DQN
from zoo.models.sequence.decoding import TranslationModule
from zoo.version import __version__

__all__ = ["ServedModel", "export_onnx", "export_program", "read_export_metadata"]

log = logging.getLogger(__name__)

METADATA_FILE = "zoo_metadata.json"  # the extra file of a .pt2 that holds the metadata


class _Generator(nn.Module):
    """A GAN as served: noise (B, latent_dim) [and class ids (B,)] -> pixels (B, C, H, W) in [0, 1].

    Only the generator travels (no discriminator, no optimizer state). ``GAN.forward`` checks the labels'
    values, which a traced graph cannot keep; the graph takes any id in [0, num_classes).
    """

    def __init__(self, gan: nn.Module) -> None:
        super().__init__()
        self.generator = gan.generator

    def forward(self, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        return (self.generator(noise, labels) + 1) / 2  # tanh's [-1, 1] -> pixels in [0, 1]


class ServedModel:
    """What is exported for a zoo model: the module, example inputs, names, dynamic axes and the metadata.

    Args:
        model: a zoo model; see the module docstring for the families that export.
    """

    def __init__(self, model: nn.Module) -> None:

        name = type(model).__name__
        if not isinstance(model, nn.Module):
            raise TypeError(f"export takes a zoo model (an nn.Module), got {name}")
        if isinstance(model, TranslationModule):
            raise ValueError(
                f"{name} is a translation model: it decodes token by token with a beam search around the network, "
                "which one exported graph does not hold; serve it with zoo.translate. Exportable: classifiers "
                "(images, or token ids for the TransformerClassifier), autoencoders, GAN generators, the DQN, regressors"
            )
        if getattr(model, "takes_tokens", False):
            raise ValueError(
                f"this {name} reads token ids as packed sequences of per-sample lengths, which the exporters "
                "cannot trace; export a recurrent classifier of float sequences or images (vocab_size=0), "
                "or use the TransformerClassifier for text"
            )
        self.model = model
        self.kind = "model"
        if isinstance(model, GANModule):
            self.kind, self.module = "generator", _Generator(model)
            noise = torch.zeros(2, model.latent_dim)  # (B=2, latent_dim)
            self.inputs = (noise, torch.tensor([0, 1])) if model.conditional else (noise,)  # [+ labels (B,)]
            self.input_names = ["noise", "labels"][: len(self.inputs)]
            self.output_name, self.output = "images", "generated pixels (B, C, H, W) in [0, 1]"
        elif isinstance(model, DQN):
            self.kind, self.module = "q_network", model.q_net
            self.inputs, self.input_names = (model.example_input_array,), ["input"]
            self.output_name, self.output = "output", "action values (B, num_actions)"
        else:
            example = getattr(model, "example_input_array", None)
            if not isinstance(example, Tensor):
                raise TypeError(f"{name} has no single example input tensor (example_input_array), so it cannot be exported")
            self.module, self.inputs, self.input_names = model, (example,), ["input"]
            if isinstance(model, ClassifierModule):
                self.kind, self.output_name = "classifier", "logits"
                self.output = "logit (B, 1) of class 1" if model.binary else "logits (B, num_classes); softmax gives probabilities"
            elif isinstance(model, AutoencoderModule):
                self.kind, self.output_name, self.output = "autoencoder", "reconstruction", "reconstructed pixels (B, C, H, W) in [0, 1]"
            else:
                self.output_name, self.output = "output", "the model's forward output"
        device = next(model.parameters()).device
        self.inputs = tuple(x.to(device) for x in self.inputs)
        # Batch dynamic everywhere; token ids (B, T) have a dynamic length too.
        self.takes_tokens = self.kind != "generator" and not self.inputs[0].is_floating_point()
        self.dynamic = [{0: "batch", 1: "tokens"} if self.takes_tokens else {0: "batch"} for x in self.inputs]

    def metadata(self) -> dict[str, Any]:
        """JSON-able facts a user needs to feed the exported model and read its output."""

        model = self.model
        data: dict[str, Any] = {
            "zoo_version": __version__,
            "model": type(model).__name__,
            "exported": self.kind,
            "inputs": {name: _describe(x, axes) for name, x, axes in zip(self.input_names, self.inputs, self.dynamic)},
            "output": self.output,
        }
        with contextlib.suppress(Exception):  # hparams that are not primitives are left out, not fatal
            data["hparams"] = clean_hparams(model)
        for key in ("num_classes", "latent_dim", "class_names"):
            value = getattr(model, key, None)
            if value is not None:
                data[key] = value
        if self.kind in ("classifier", "autoencoder") and hasattr(model, "transforms"):
            with contextlib.suppress(ValueError):  # a model of features or token ids has no image preprocessing
                pre = model.transforms().to_dict()
                data["preprocessing"] = pre
                data["mean"], data["std"] = pre["mean"], pre["std"]
        return data


def _describe(x: Tensor, axes: dict[int, str]) -> dict[str, Any]:
    """An input's shape with its dynamic axes named ("batch", "tokens"), and its dtype."""
    return {"shape": [axes.get(d, size) for d, size in enumerate(x.shape)], "dtype": str(x.dtype).removeprefix("torch.")}


def _batch_dims(served: ServedModel) -> tuple[dict[int, Any], ...]:
    """torch.export's dynamic shapes: one Dim per named axis, shared by the inputs that name it."""
    dims: dict[str, Any] = {}
    for axes in served.dynamic:
        for axis, name in axes.items():
            if name not in dims:
                longest = served.model.hparams.get("max_len") if name == "tokens" else None  # the position table's length
                dims[name] = torch.export.Dim(name, min=1, max=longest) if longest else torch.export.Dim(name, min=1)
    return tuple({axis: dims[name] for axis, name in axes.items()} for axes in served.dynamic)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode for the export, then every submodule's own mode back (a frozen norm layer stays frozen)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _torchscript_onnx(served: ServedModel, opset_version: int | None):
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # chosen on purpose (see the module docstring); shape checks trace as constants
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1")  # packed sequences only
        torch.onnx.export(
            served.module, served.inputs, buffer, dynamo=False, input_names=served.input_names,
            output_names=[served.output_name], opset_version=opset_version,
            dynamic_axes={**dict(zip(served.input_names, served.dynamic)), served.output_name: {0: "batch"}},
        )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def _dynamo_onnx(served: ServedModel, opset_version: int | None):
    program = torch.onnx.export(
        served.module, served.inputs, dynamo=True, dynamic_shapes=_batch_dims(served), input_names=served.input_names,
        output_names=[served.output_name], opset_version=opset_version, verbose=False,
    )  # fmt: skip
    return program.model_proto


def export_onnx(model: nn.Module, path: str | os.PathLike, *, dynamo: bool | None = None, opset_version: int | None = None) -> Path:
    """Write ``model`` as an ONNX file with a dynamic batch size, its metadata in ``metadata_props``.

    Args:
        model: a classifier, an autoencoder, a GAN (its generator is exported), the DQN (its Q-network)
            or a regressor; translation models and token-id recurrent classifiers raise a ValueError.
        path: the ``.onnx`` file to write (its folder is created); written atomically.
        dynamo: which of torch's exporters: False the TorchScript tracer (fast), True the
            ``torch.export``-based one (2-30x slower here, the same outputs). None (default): the tracer,
            and the dynamo exporter where the tracer cannot do the job: models of token ids (the tracer
            fixes the sequence length) and operators it refuses (an adaptive pooling that upsamples).
        opset_version: ONNX opset; None takes the exporter's default.

    Returns:
        The path written. Run it with ``onnxruntime.InferenceSession(str(path))``.
    """
    import onnx

    served = ServedModel(model)
    path = Path(path)
    use_dynamo = served.takes_tokens if dynamo is None else dynamo
    with _eval_mode(served.model):
        proto = None
        if not use_dynamo:
            try:
                proto = _torchscript_onnx(served, opset_version)
            except torch.onnx.errors.OnnxExporterError as e:
                if dynamo is False:
                    raise
                log.info("%s: the TorchScript ONNX exporter refused (%s); using the dynamo exporter", type(model).__name__, str(e).splitlines()[0])
        if proto is None:
            proto = _dynamo_onnx(served, opset_version)
    del proto.metadata_props[:]
    for key, value in served.metadata().items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    proto.doc_string = f"{type(model).__name__} exported by the zoo: {served.output}"
    onnx.checker.check_model(proto)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            onnx.save(proto, f)

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, write)
    return path


def export_program(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model`` as a ``torch.export`` program (``torch.export.save``) with a dynamic batch size.

    Load it with ``torch.export.load(path).module()``: a plain ``nn.Module`` needing neither the zoo nor
    Lightning. The metadata is the extra file ``zoo_metadata.json`` (``read_export_metadata``).

    Args:
        model: as for ``export_onnx``.
        path: the file to write, by convention ``.pt2`` (its folder is created); written atomically.

    Returns:
        The path written.
    """
    served = ServedModel(model)
    path = Path(path)
    with _eval_mode(served.model):
        program = torch.export.export(served.module, served.inputs, dynamic_shapes=_batch_dims(served))
    extra = {METADATA_FILE: json.dumps(served.metadata())}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            torch.export.save(program, f, extra_files=extra)

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, write)
    return path


def read_export_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata that ``export_onnx`` or ``export_program`` recorded in ``path`` (by its content, not its suffix)."""
    path = Path(path)
    if zipfile.is_zipfile(path):  # a .pt2 is a zip archive; an ONNX file a protobuf
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if n.endswith(f"/extra/{METADATA_FILE}")), None)
            if member is None:
                raise ValueError(f"{path} is a torch.export program without the zoo's metadata ({METADATA_FILE})")
            return json.loads(archive.read(member))
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in proto.metadata_props}
