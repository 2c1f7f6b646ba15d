"""zoo.export_onnx and zoo.export_program: every registered model either exports and gives PyTorch's
outputs back (onnxruntime; torch.export.load) at two batch sizes, or is refused with a ValueError; the
files carry their metadata; an interrupted export leaves no file.

The ImageNet-size models run here at reduced width (the same layers, fewer channels: the same graph);
one model of each class runs by default, the other variants and more of the dynamo ONNX exporter under
``-m slow`` (the TransformerClassifier goes through it: the tracer would fix its sequence length).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.serving.export import ServedModel, read_export_metadata

ort = pytest.importorskip("onnxruntime")

# The models that serve some other way (beam-search decoding): export_onnx refuses them.
REFUSED = {"seq2seq", "transformer"}
# ImageNet-size models at reduced width (the layers of the full model, fewer channels); full size under -m slow.
_RESNET = {"widths": [8, 16, 32, 64], "image_size": 64, "num_classes": 10}
_VGG = {"width": 8, "classifier_width": 64, "image_size": 32, "pool_size": 1, "num_classes": 10}
REDUCED = {
    "alexnet": {"classifier_width": 64, "num_classes": 10},
    **{name: _RESNET for name in ("resnet18", "resnet34", "resnet50")},
    **{name: _VGG for name in zoo.list_models("vgg1?") + zoo.list_models("vgg1?_bn")},
}
# One model of each class (and input kind) in the default suite; every other registered model under -m slow.
DEFAULT_ONNX = {
    "lenet5", "simple_cnn", "mlp", "lstm", "vit_tiny", "resnet20", "vgg11_small", "alexnet_small",
    "autoencoder", "conv_autoencoder", "cgan", "dcgan", "dqn", "linear_regression", "lstm_forecaster",
}  # fmt: skip
DEFAULT_PROGRAM = {"lenet5", "cgan", "conv_autoencoder", "dqn", "mlp"}
EXPORTABLE = [n for n in zoo.list_models() if n not in REFUSED]
BATCHES = (1, 5)  # exported with a batch of 2: both differ from it


def _params(default: set[str]) -> list:
    return [pytest.param(n, marks=() if n in default else pytest.mark.slow) for n in EXPORTABLE]


def _build(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo.create_model(name, **{**REDUCED.get(name, {}), **overrides}).eval()


def _inputs(model: torch.nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    """Random inputs of the exported signature, ``batch`` samples."""
    g = torch.Generator().manual_seed(batch)
    served = ServedModel(model)
    out = []
    for x in served.inputs:
        if x.is_floating_point():
            out.append(torch.randn(batch, *x.shape[1:], generator=g))
        elif served.kind == "generator":  # class ids
            out.append(torch.randint(0, model.num_classes, (batch,), generator=g))
        else:  # token ids, 7 of them then padding in the last sample: a length other than the example's
            ids = torch.randint(1, model.hparams.vocab_size, (batch, 9), generator=g)
            ids[-1, 7:] = 0
            out.append(ids)
    return tuple(out)


def _reference(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    with torch.no_grad():
        return ServedModel(model).module(*inputs).numpy()


def _assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Within 1e-4 relative to the output's scale (an untrained ResNet-56's logits reach ~1e3)."""
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * scale)


def _run_onnx(path: Path, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)[0]


def _check_onnx(model: torch.nn.Module, path: Path) -> None:
    for batch in BATCHES:
        inputs = _inputs(model, batch)
        _assert_close(_run_onnx(path, inputs), _reference(model, inputs))


@pytest.mark.parametrize("name", _params(DEFAULT_ONNX))
def test_onnx_matches_pytorch_at_two_batch_sizes(name, tmp_path):
    model = _build(name)
    path = zoo.export_onnx(model, tmp_path / f"{name}.onnx")
    _check_onnx(model, path)
    assert read_export_metadata(path)["inputs"][ServedModel(model).input_names[0]]["shape"][0] == "batch"


@pytest.mark.parametrize("name", _params(DEFAULT_PROGRAM))
def test_torch_export_matches_pytorch_at_two_batch_sizes(name, tmp_path):
    model = _build(name)
    path = zoo.export_program(model, tmp_path / f"{name}.pt2")
    program = torch.export.load(path).module()
    for batch in BATCHES:
        inputs = _inputs(model, batch)
        with torch.no_grad():
            _assert_close(program(*inputs).numpy(), _reference(model, inputs))


@pytest.mark.parametrize("name", ["mlp", pytest.param("dcgan", marks=pytest.mark.slow)])
def test_dynamo_exporter_matches_pytorch(name, tmp_path):
    model = _build(name)
    _check_onnx(model, zoo.export_onnx(model, tmp_path / f"{name}.onnx", dynamo=True))


@pytest.mark.slow
def test_operators_the_tracer_refuses_go_through_the_dynamo_exporter(tmp_path):
    # VGG's 7x7 adaptive pooling of a 1x1 map (32 px images) upsamples: the TorchScript exporter refuses it.
    model = _build("vgg11", **{**_VGG, "pool_size": 7})
    with pytest.raises(torch.onnx.errors.OnnxExporterError, match="adaptive_avg_pool2d"):
        zoo.export_onnx(model, tmp_path / "vgg.onnx", dynamo=False)
    _check_onnx(model, zoo.export_onnx(model, tmp_path / "vgg.onnx"))


def test_export_restores_training_mode(tmp_path):
    model = zoo.create_model("lenet5").train()
    zoo.export_onnx(model, tmp_path / "m.onnx")
    zoo.export_program(model, tmp_path / "m.pt2")
    assert model.training


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: zoo.create_model("seq2seq"), "translation model"),
        (lambda: zoo.create_model("transformer"), "translation model"),
        (lambda: zoo.create_model("lstm", vocab_size=50, seq_len=0), "packed sequences"),
    ],
    ids=["seq2seq", "transformer", "lstm-tokens"],
)
@pytest.mark.parametrize("export", [zoo.export_onnx, zoo.export_program], ids=["onnx", "program"])
def test_unsupported_models_are_refused_by_name(build, message, export, tmp_path):
    with pytest.raises(ValueError, match=message):
        export(build(), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_non_module_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="nn.Module"):
        zoo.export_onnx("lenet5", tmp_path / "m.onnx")


# -- metadata --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped_lenet():
    return zoo.create_model("lenet5", pretrained="fashionmnist")


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_metadata_records_preprocessing_and_class_names(shipped_lenet, suffix, tmp_path):
    export = zoo.export_onnx if suffix == ".onnx" else zoo.export_program
    meta = read_export_metadata(export(shipped_lenet, tmp_path / f"m{suffix}"))
    assert meta["class_names"] == shipped_lenet.class_names and len(meta["class_names"]) == 10
    assert meta["mean"] == shipped_lenet.hparams.mean and meta["std"] == shipped_lenet.hparams.std
    assert meta["preprocessing"]["crop_size"] == 28 and meta["preprocessing"]["channels"] == 1
    assert meta["inputs"] == {"input": {"shape": ["batch", 1, 28, 28], "dtype": "float32"}}
    assert meta["model"] == "LeNet5" and meta["hparams"]["num_classes"] == 10


def test_onnx_file_and_its_metadata_alone_predict_like_zoo_predict(shipped_lenet, tmp_path):
    """A user with only the .onnx file: normalize raw pixels with its mean/std, softmax its logits."""
    path = zoo.export_onnx(shipped_lenet, tmp_path / "lenet5.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
    pixels = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    x = (pixels.numpy() / 255.0 - np.array(meta["mean"]).reshape(1, -1, 1, 1)) / np.array(meta["std"]).reshape(1, -1, 1, 1)
    logits = session.run(None, {"input": x.astype(np.float32)})[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = zoo.predict(shipped_lenet, pixels, topk=3)
    for row, top in zip(probs, expected):
        order = np.argsort(-row)[:3]
        assert [meta["class_names"][i] for i in order] == [label for label, _ in top]
        np.testing.assert_allclose(row[order], [p for _, p in top], atol=1e-5)


def test_generator_metadata_names_its_inputs(tmp_path):
    meta = read_export_metadata(zoo.export_onnx(_build("cgan"), tmp_path / "cgan.onnx"))
    assert meta["exported"] == "generator" and meta["latent_dim"] == 100 and meta["num_classes"] == 10
    assert "preprocessing" not in meta  # it makes images; it does not read them
    assert meta["inputs"] == {"noise": {"shape": ["batch", 100], "dtype": "float32"}, "labels": {"shape": ["batch"], "dtype": "int64"}}


# -- atomic writes ---------------------------------------------------------------------------------
def _interrupted(obj, f, *args, **kwargs):
    """A writer that writes part of a file, then fails, as a full disk or a kill mid-write would."""
    f.write(b"\x08\x07partial")
    f.flush()
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_interrupted_export_leaves_no_file(suffix, tmp_path, monkeypatch):
    import onnx

    if suffix == ".onnx":
        monkeypatch.setattr(onnx, "save", _interrupted)
        export = zoo.export_onnx
    else:
        monkeypatch.setattr(torch.export, "save", _interrupted)
        export = zoo.export_program
    model = zoo.create_model("lenet5")
    with pytest.raises(OSError, match="No space"):
        export(model, tmp_path / f"new{suffix}")
    assert os.listdir(tmp_path) == []
    previous = tmp_path / f"old{suffix}"
    previous.write_bytes(b"the previous export")
    with pytest.raises(OSError, match="No space"):
        export(model, previous)
    assert os.listdir(tmp_path) == [previous.name] and previous.read_bytes() == b"the previous export"
