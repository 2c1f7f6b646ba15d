"""Files from disk are never unpickled unchecked: ImageNet weights in torch.hub's cache, CIFAR-10 batches.

Each attack is a pickle whose ``__reduce__`` would create a marker file when unpickled: the tests
assert that loading refuses it and that the marker never appears.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import torch
import torchvision

import datamodules.vision as vision
import zoo
from zoo.hub.imagenet import PretrainedWeightsCorrupt, get_weights


class _WritesMarker:
    """Unpickling this object calls ``Path(marker).touch()``: arbitrary code run by ``pickle.load``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def malicious_pickle(marker: Path) -> bytes:
    """A torch.save file (zip format) whose data pickle runs code: what a planted checkpoint looks like."""
    buffer = io.BytesIO()
    torch.save({"conv1.weight": _WritesMarker(marker)}, buffer)
    return buffer.getvalue()


def resnet18_weights_file() -> tuple[torch.nn.Module, bytes]:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    return reference, buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# ImageNet weights in torch.hub's cache
# --------------------------------------------------------------------------------------------------
def test_a_pickle_planted_in_the_hub_cache_is_refused_and_never_runs(torch_hub, tmp_path):
    marker = tmp_path / "pwned"
    path = Path(get_weights("resnet18", "IMAGENET1K_V1").cache_path)  # resnet18-f37072fd.pth, torchvision's name
    path.parent.mkdir(parents=True)
    path.write_bytes(malicious_pickle(marker))
    with pytest.raises(PretrainedWeightsCorrupt, match=r"(?s)resnet18-f37072fd\.pth is not torchvision's .*Delete it"):
        zoo.create_model("resnet18", weights="IMAGENET1K_V1")
    assert not marker.exists()
    assert isinstance(PretrainedWeightsCorrupt("x"), zoo.PretrainedWeightsUnavailable)  # one except clause catches both


def test_a_pickle_whose_name_matches_its_hash_is_still_not_unpickled(torch_hub, tmp_path):
    """The hash only proves the file is the one named; the weights-only reader refuses code in it all the same."""
    marker = tmp_path / "pwned"
    torch_hub.publish("resnet18", malicious_pickle(marker))
    with pytest.raises(PretrainedWeightsCorrupt, match="not a plain weights file"):
        zoo.create_model("resnet18", weights="IMAGENET1K_V1")
    assert not marker.exists()


def test_real_weights_with_a_wrong_hash_prefix_are_refused(torch_hub):
    _, data = resnet18_weights_file()
    path = Path(get_weights("resnet18").cache_path)  # the published name, whose prefix is not this file's hash
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with pytest.raises(PretrainedWeightsCorrupt, match=r"its SHA-256 starts with [0-9a-f]{8}, its name says f37072fd"):
        get_weights("resnet18").get_state_dict()


def test_weights_whose_name_matches_their_hash_load_on_every_call(torch_hub):
    reference, data = resnet18_weights_file()
    path = torch_hub.publish("resnet18", data)
    model = zoo.create_model("resnet18", weights="IMAGENET1K_V1").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # damaged after the first load: the next load checks again
    with pytest.raises(PretrainedWeightsCorrupt, match="damaged or was replaced"):
        get_weights("resnet18").get_state_dict()


# --------------------------------------------------------------------------------------------------
# CIFAR-10 batches
# --------------------------------------------------------------------------------------------------
def test_a_tampered_cifar_batch_is_refused_before_unpickling(vision_root, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in (vision_root.root / "cifar-10-batches-py").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps(_WritesMarker(marker), protocol=2))
    dm = vision.CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(ValueError, match=r"data_batch_3 is not CIFAR-10's: its MD5 is [0-9a-f]{32}, expected [0-9a-f]{32}"):
        dm.setup()
    assert not marker.exists()


def test_the_known_md5s_are_torchvisions():
    expected = dict(torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list)
    assert vision.CIFAR10_MD5 == expected
    assert set(expected) == set(vision.CIFAR10DataModule.train_batches + vision.CIFAR10DataModule.test_batches)


# --------------------------------------------------------------------------------------------------
# Dependency floors: every documented load is weights-only
# --------------------------------------------------------------------------------------------------
def test_dependency_floors_make_every_documented_load_weights_only():
    """torch 2.6 unpickles weights-only by default; Lightning 2.6.6's load_from_checkpoint honours
    weights_only and refuses a checkpoint's _instantiator outside its allowlist."""
    import re

    from packaging.requirements import Requirement
    from packaging.version import Version

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    dependencies = pyproject.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]
    floors = {}
    for line in re.findall(r'^\s*"([^"]+)",', dependencies, re.M):
        req = Requirement(line)
        floors[req.name] = min((Version(s.version) for s in req.specifier if s.operator == ">="), default=None)
    assert floors["torch"] >= Version("2.6") and floors["torchvision"] >= Version("0.21")
    assert floors["lightning"] >= Version("2.6.6")
    assert floors["torch"] <= Version("2.14.1") and floors["torchvision"] <= Version("0.29.1")
