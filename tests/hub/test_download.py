"""Shipped entries whose weights file is not on this machine: downloaded on first use from the base URL into
torch.hub's cache (zoo.hub.download, zoo.hub.manifest), from a real HTTP server on 127.0.0.1.

The package's manifest is replaced by one of a tiny LeNet-5 (``lenet5.tiny``) and the zoo by one installed
elsewhere (no repository checkpoints/), so that its weights file exists only on the server. The same behaviour
from an installed wheel is tested in tests/hub/test_installed_wheel.py."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import safetensors.torch
import torch

import zoo
import zoo.hub.download
import zoo.hub.manifest
import zoo.hub.pretrained
from tests.hub.conftest import WeightsServer
from zoo.hub.download import RELEASE, REPOSITORY, WEIGHTS_URL, download, sha256_file, weights_url
from zoo.hub.pretrained import PretrainedWeightsCorrupt, PretrainedWeightsUnavailable, list_pretrained, load_pretrained, save_pretrained

NAME, FILE = "lenet5.tiny", "lenet5.tiny.safetensors"


@dataclass
class Packaged:
    model: zoo.ZooModule
    server: WeightsServer
    cache: Path  # <torch.hub.get_dir()>/zoo

    def flip_a_byte(self, path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))


@pytest.fixture
def packaged(tmp_path, monkeypatch, torch_hub, weights_server) -> Packaged:
    """``lenet5.tiny`` in the package's manifest (its config beside it), its weights file on the server only."""
    torch.manual_seed(0)
    model = zoo.create_model("lenet5", image_size=28, in_channels=1, num_classes=10).eval()
    weights, config = save_pretrained(model, tmp_path / "exported", NAME)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.move(config, shipped / config.name)
    shutil.move(weights, weights_server.folder / FILE)
    row = {"name": NAME, "arch": "lenet5", "zoo_class": "LeNet5", "file": FILE, "sha256": sha256_file(weights_server.folder / FILE),
           "config_file": config.name, "config_sha256": sha256_file(shipped / config.name)}  # fmt: skip
    (shipped / "manifest.json").write_text(json.dumps({"format": 1, "description": "test", "weights": [row]}))
    monkeypatch.setattr(zoo.hub.manifest, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(zoo.hub.manifest, "_ROOT", tmp_path / "site-packages")  # installed: no repository checkpoints/
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
    return Packaged(model, weights_server, torch_hub.checkpoints.parent / "zoo")


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def files_in(folder: Path) -> list[str]:
    """Every file in ``folder`` (hidden temporary files included), or [] when it does not exist."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_the_first_load_downloads_into_the_cache_and_the_next_needs_no_server(packaged):
    assert list_pretrained() == [NAME] and list_pretrained(cached=True) == [] and list_pretrained(cached=False) == [NAME]
    assert outputs_equal(load_pretrained(NAME), packaged.model)
    assert packaged.server.requests == [f"/{FILE}"]
    assert files_in(packaged.cache) == [FILE]  # no temporary file left beside it
    assert sha256_file(packaged.cache / FILE) == sha256_file(packaged.server.folder / FILE)
    assert list_pretrained(cached=True) == [NAME] and zoo.hub.pretrained.is_cached(NAME)

    packaged.server.stop()
    assert outputs_equal(zoo.create_model("lenet5", pretrained="tiny"), packaged.model)
    assert packaged.server.requests == [f"/{FILE}"]


def test_a_tampered_file_on_the_server_is_refused_never_parsed_and_not_cached(packaged, monkeypatch):
    packaged.flip_a_byte(packaged.server.folder / FILE)

    def never(*args, **kwargs):
        raise AssertionError("a downloaded file was parsed before its hash was checked")

    monkeypatch.setattr(safetensors.torch, "load_model", never)
    monkeypatch.setattr(zoo.hub.pretrained, "resolve_model_class", never)
    with pytest.raises(PretrainedWeightsCorrupt, match=rf"{NAME}: the {FILE} downloaded from {packaged.server.url}{FILE} does not match"):
        load_pretrained(NAME)
    assert files_in(packaged.cache) == []


def test_a_download_cut_midway_leaves_no_partial_file(packaged):
    packaged.server.cut.add(FILE)
    size = (packaged.server.folder / FILE).stat().st_size
    with pytest.raises(PretrainedWeightsUnavailable, match=rf"the connection closed after {size // 2:,} of {size:,} bytes") as info:
        load_pretrained(NAME)
    assert not isinstance(info.value, PretrainedWeightsCorrupt)
    assert files_in(packaged.cache) == []
    packaged.server.cut.clear()  # the next try starts afresh and succeeds
    assert outputs_equal(load_pretrained(NAME), packaged.model) and files_in(packaged.cache) == [FILE]


def test_a_404_names_the_entry_the_url_and_the_folder(packaged):
    (packaged.server.folder / FILE).unlink()
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        load_pretrained(NAME)
    url = f"{packaged.server.url}{FILE}"
    assert str(info.value) == (
        f"{NAME}: its weights file is not on this machine and could not be downloaded from {url} (the server answered "
        f"HTTP 404 (File not found)); download {FILE} elsewhere and put it in {packaged.cache} (or in $ZOO_WEIGHTS_DIR), "
        f"where it is used offline."
    )
    assert files_in(packaged.cache) == []


def test_offline_with_nothing_cached_is_one_sentence(packaged):
    packaged.server.stop()
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        zoo.create_model("lenet5", pretrained="tiny")
    message = str(info.value)
    assert message.startswith(f"{NAME}: its weights file is not on this machine and could not be downloaded from {packaged.server.url}{FILE} (")
    assert f"put it in {packaged.cache} " in message and "refused" in message.lower()
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")  # one sentence
    packaged.cache.mkdir(parents=True, exist_ok=True)  # the file put where the message says: used offline
    shutil.copy(packaged.server.folder / FILE, packaged.cache / FILE)
    assert outputs_equal(load_pretrained(NAME), packaged.model)


def test_a_changed_cached_file_is_refused_and_deleted_then_downloaded_again(packaged):
    load_pretrained(NAME)
    packaged.flip_a_byte(packaged.cache / FILE)
    with pytest.raises(PretrainedWeightsCorrupt, match=rf"{packaged.cache / FILE} does not match the manifest.*It was deleted from the cache"):
        load_pretrained(NAME)
    assert files_in(packaged.cache) == []
    assert outputs_equal(load_pretrained(NAME), packaged.model) and len(packaged.server.requests) == 2


def test_zoo_weights_dir_then_the_repository_checkpoints_come_before_the_cache_and_the_server(packaged, tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    (clone / "checkpoints").mkdir(parents=True)
    (clone / "hubconf.py").write_text("")
    shutil.copy(packaged.server.folder / FILE, clone / "checkpoints" / FILE)
    monkeypatch.setattr(zoo.hub.manifest, "_ROOT", clone)
    assert list_pretrained(cached=True) == [NAME]
    assert outputs_equal(load_pretrained(NAME), packaged.model)  # from the clone's checkpoints/

    own = tmp_path / "own"  # $ZOO_WEIGHTS_DIR without a manifest: a folder of files, searched first
    own.mkdir()
    shutil.copy(packaged.server.folder / FILE, own / FILE)
    packaged.flip_a_byte(own / FILE)
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(own))
    assert list_pretrained() == [NAME]  # the package's manifest still
    with pytest.raises(PretrainedWeightsCorrupt, match=rf"{own / FILE} does not match the manifest"):
        load_pretrained(NAME)
    assert (own / FILE).is_file()  # a file the zoo did not write is refused, not deleted
    assert packaged.server.requests == [] and files_in(packaged.cache) == []


def test_the_base_url_is_one_constant_that_zoo_weights_url_replaces(packaged, monkeypatch):
    monkeypatch.delenv("ZOO_WEIGHTS_URL")
    assert WEIGHTS_URL == f"https://github.com/{REPOSITORY}/releases/download/{RELEASE}/"
    assert weights_url(FILE) == WEIGHTS_URL + FILE
    assert zoo.hub.pretrained.pretrained_entry(NAME)["url"] == WEIGHTS_URL + FILE
    monkeypatch.setenv("ZOO_WEIGHTS_URL", "https://mirror.example/zoo")
    assert weights_url(FILE) == "https://mirror.example/zoo/" + FILE
    monkeypatch.setenv("ZOO_WEIGHTS_URL", "mirror.example/zoo")
    with pytest.raises(ValueError, match=r"\$ZOO_WEIGHTS_URL='mirror.example/zoo' is not an http://, https:// or file:// URL"):
        load_pretrained(NAME)


def test_a_folder_as_a_file_url_is_a_mirror(packaged, monkeypatch):
    monkeypatch.setenv("ZOO_WEIGHTS_URL", packaged.server.folder.as_uri())
    assert outputs_equal(load_pretrained(NAME), packaged.model)
    assert packaged.server.requests == [] and files_in(packaged.cache) == [FILE]


def test_the_progress_bar_shows_when_asked_and_not_on_a_pipe(packaged, tmp_path, capsys):
    sha = sha256_file(packaged.server.folder / FILE)
    download(packaged.server.url + FILE, tmp_path / "shown" / FILE, sha, progress=True)
    assert FILE in capsys.readouterr().err
    download(packaged.server.url + FILE, tmp_path / "hidden" / FILE, sha)  # None: standard error is no terminal here
    assert capsys.readouterr().err == ""
    assert sha256_file(tmp_path / "hidden" / FILE) == sha


@pytest.mark.parametrize("file", ["../../outside.safetensors", "sub/lenet5.tiny.safetensors", "/etc/passwd"])
def test_a_manifest_file_name_with_a_path_is_refused_before_any_lookup_or_download(packaged, file):
    manifest_path = zoo.hub.manifest.SHIPPED_DIR / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["weights"][0]["file"] = file
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PretrainedWeightsCorrupt, match="the manifest's file names must be plain file names"):
        load_pretrained(NAME)
    assert packaged.server.requests == [] and files_in(packaged.cache) == []


def test_a_cache_folder_that_cannot_be_written_is_a_clear_error(packaged):
    packaged.cache.parent.mkdir(parents=True, exist_ok=True)
    packaged.cache.write_text("a file where the cache folder should be")
    with pytest.raises(PretrainedWeightsUnavailable, match=rf"{NAME}: cannot write the download into {packaged.cache} .*set \$TORCH_HOME"):
        load_pretrained(NAME)
    assert packaged.server.requests == []
