"""``zoo-export --name <entry> --hf-folder DIR``: every shipped entry as a Hugging Face folder that loads back the same."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from zoo.tools.export import main as export


@pytest.mark.parametrize("name", zoo.list_pretrained())
def test_every_shipped_entry_becomes_a_folder_that_loads_the_same_weights(name, tmp_path, capsys):
    assert export(["--name", name, "--hf-folder", str(tmp_path / name)]) == 0
    assert f"{name} -> {tmp_path / name}" in capsys.readouterr().out
    shipped = zoo.load_pretrained(name)
    loaded = type(shipped).from_pretrained(tmp_path / name)
    assert loaded.state_dict().keys() == shipped.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in shipped.state_dict().items())
    entry = zoo.hub.pretrained.pretrained_entry(name)
    config = json.loads((tmp_path / name / "config.json").read_text())
    assert config["zoo"]["metrics"] == {entry["metric"]["name"]: entry["metric"]["value"]}
    assert config["zoo"]["arch"] == entry["arch"]


def test_mistakes_end_with_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no pretrained weights named 'lenet5.nowhere'"):
        export(["--name", "lenet5.nowhere", "--hf-folder", str(tmp_path / "x")])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "README.md").write_text("mine")
    with pytest.raises(SystemExit, match="README.md, which save_pretrained did not write"):
        export(["--name", "lenet5.digits", "--hf-folder", str(tmp_path / "taken")])
    assert (tmp_path / "taken" / "README.md").read_text() == "mine"
    with pytest.raises(SystemExit):  # argparse: neither a checkpoint nor --hf-folder
        export(["--name", "lenet5.digits"])
    assert "give a checkpoint to export, or --hf-folder" in capsys.readouterr().err
