"""Checkpoints and shipped entries of every family, written by an earlier zoo, load today with the outputs they gave then.

tests/fixtures/legacy/families/ was written by tests/support/write_family_fixtures.py at the commit its
index.json names, before the weight-averaging and Hugging Face folder changes: one tiny model per family, as a
training checkpoint (``<fixture>.ckpt``) and as a shipped entry (``<arch>.fixture.safetensors`` + ``.json``).
A change of state-dict keys or hyperparameters needs a migration in the loaders; these tests are its proof.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo

FAMILIES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "families"
INDEX = json.loads((FAMILIES / "index.json").read_text())["fixtures"]
OUTPUTS = load_file(FAMILIES / "outputs.safetensors")


def test_every_family_has_a_fixture():
    assert {f["family"] for f in INDEX.values()} == {"vision", "sequence", "generative", "selfsupervised", "rl", "regression"}
    for fixture, info in INDEX.items():
        assert (FAMILIES / f"{fixture}.ckpt").is_file()
        assert (FAMILIES / f"{info['entry']}.safetensors").is_file() and (FAMILIES / f"{info['entry']}.json").is_file()


def assert_same_outputs(model: zoo.ZooModule, fixture: str) -> None:
    assert not model.training
    with torch.no_grad():
        out = model(OUTPUTS[f"{fixture}.input"])
    torch.testing.assert_close(out, OUTPUTS[f"{fixture}.output"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("fixture", sorted(INDEX))
def test_old_training_checkpoint_loads_with_identical_outputs(fixture):
    path = FAMILIES / f"{fixture}.ckpt"
    model = zoo.load_checkpoint(path)
    assert type(model).__name__ == INDEX[fixture]["class"]
    recorded = torch.load(path, weights_only=True)["hyper_parameters"]
    assert {k: v for k, v in dict(model.hparams).items() if k in recorded} == {k: recorded[k] for k in recorded if k in model.hparams}
    assert_same_outputs(model, fixture)


@pytest.mark.parametrize("fixture", sorted(INDEX))
def test_old_shipped_entry_loads_with_identical_outputs(fixture):
    model = zoo.load_pretrained(FAMILIES / f"{INDEX[fixture]['entry']}.safetensors")
    assert type(model).__name__ == INDEX[fixture]["class"]
    assert_same_outputs(model, fixture)


@pytest.mark.parametrize("fixture", sorted(INDEX))
def test_old_training_checkpoint_loads_through_lightning(fixture):
    """``Class.load_from_checkpoint``, the path ``fit --ckpt_path`` and Lightning users take."""
    cls = zoo.get_model_class(INDEX[fixture]["arch"])
    model = cls.load_from_checkpoint(FAMILIES / f"{fixture}.ckpt", weights_only=True).eval()
    assert_same_outputs(model, fixture)


@pytest.mark.parametrize("fixture", sorted(INDEX))
def test_old_files_become_hugging_face_folders_with_identical_outputs(fixture, tmp_path):
    """What the old files hold is enough for today's folder format: no key or argument is missing."""
    for i, model in enumerate([zoo.load_checkpoint(FAMILIES / f"{fixture}.ckpt"), zoo.load_pretrained(FAMILIES / f"{INDEX[fixture]['entry']}.safetensors")]):
        folder = model.save_pretrained(tmp_path / str(i), arch=INDEX[fixture]["arch"])
        assert_same_outputs(zoo.ZooModule.from_pretrained(folder), fixture)
