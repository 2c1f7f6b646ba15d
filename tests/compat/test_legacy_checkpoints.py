"""Checkpoints written by the zoo before its packages moved still load, and give the outputs they gave then.

The files in tests/fixtures/legacy were written by the flat ``zoo/`` layout (commit 207e37c): their
``_class_path`` names ``zoo.LeNet5`` (as the recipes do) or the module path ``zoo.resnet.ResNet``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
OUTPUTS = load_file(LEGACY / "outputs.safetensors")
CHECKPOINTS = sorted(LEGACY.glob("*.ckpt"))


def test_fixtures_are_present():
    assert {p.stem for p in CHECKPOINTS} == {"lenet5_cli", "mlp_python", "resnet_modpath_cli"}


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.stem)
def test_old_checkpoint_loads_with_identical_outputs(path):
    model = zoo.load_checkpoint(path)
    assert isinstance(model, zoo.ZooModule)
    with torch.no_grad():
        out = model(OUTPUTS[f"{path.stem}.input"])
    torch.testing.assert_close(out, OUTPUTS[f"{path.stem}.output"], rtol=0, atol=1e-6)


def test_recorded_module_path_resolves_to_todays_class():
    checkpoint = torch.load(LEGACY / "resnet_modpath_cli.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["_class_path"] == "zoo.resnet.ResNet"
    assert zoo.load_checkpoint(LEGACY / "resnet_modpath_cli.ckpt").__class__ is zoo.ResNet
