"""The zoo as ``pip install`` gives it: a wheel built from this checkout (``pip wheel --no-deps
--no-build-isolation``, no network), installed with ``pip install --target`` into a temporary folder and run in
subprocesses with that folder on PYTHONPATH, outside the checkout, with a private torch.hub cache ($TORCH_HOME).

The wheel holds the manifest and the entries' configs but no weights file; a real HTTP server on 127.0.0.1
($ZOO_WEIGHTS_URL) plays the release assets. Every shipped entry downloads on first use and gives the checkout's
output (and the reference output its manifest row records); a second load comes from the cache with the server
stopped; a tampered file is refused and not cached; offline with nothing cached, one sentence says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.hub.conftest import WeightsServer
from zoo.evaluation.shipped_metrics import reference_output
from zoo.hub.manifest import SHIPPED_DIR
from zoo.hub.pretrained import load_pretrained, read_manifest

# Builds a wheel and runs every entry in subprocesses (about 40 s): the slow suite's.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {e["name"]: e for e in read_manifest(SHIPPED_DIR / "manifest.json")["weights"]}
MAX_WHEEL_BYTES = 1_000_000  # the code, the manifest and the configs: about 0.3 MB

# Run first in every subprocess: the zoo imported is the installed one, never the checkout's.
PRELUDE = """
import json, os, sys
from pathlib import Path
import zoo
assert Path(zoo.__file__).resolve().is_relative_to(Path(os.environ["PYTHONPATH"]).resolve()), zoo.__file__
from zoo.hub.download import cache_dir
from zoo.hub.manifest import repository_checkpoints
assert repository_checkpoints() is None  # an installed package has no checkpoints/ of a clone
"""


@dataclass(frozen=True)
class Installed:
    wheel: Path
    site: Path  # what pip install --target wrote


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel of a copy of the checkout's sources (so that no build/ or egg-info lands in the checkout), installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("zoo", "datamodules"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(src), "-w", str(root / "dist")], cwd=src)
    (wheel,) = (root / "dist").glob("*.whl")
    _run([*pip, "install", "--no-deps", "--no-index", "--target", str(root / "site"), str(wheel)])
    return Installed(wheel, root / "site")


def run_installed(installed: Installed, script: str, *, torch_home: Path, url: str) -> dict:
    """Run ``PRELUDE + script`` with the installed zoo, in a folder outside the checkout; its last line, as JSON."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_WEIGHTS_DIR", "ZOO_WEIGHTS_URL", "TORCH_HOME", "PYTHONPATH")}
    env.update(PYTHONPATH=str(installed.site), TORCH_HOME=str(torch_home), ZOO_WEIGHTS_URL=url, OMP_NUM_THREADS="1")
    workdir = torch_home.parent / "workdir"
    workdir.mkdir(exist_ok=True)
    proc = _run([sys.executable, "-c", PRELUDE + script], cwd=workdir, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def files_in(folder: Path) -> list[str]:
    """Every file in ``folder``, hidden temporary files included ([] when it does not exist)."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# Loads every entry; writes each one's reference output (zoo.evaluation.reference_output) to outputs.safetensors.
LOAD_ALL = """
from safetensors.torch import save_file
from zoo.evaluation.shipped_metrics import reference_matches, reference_output
from zoo.hub.pretrained import pretrained_entry
cached_before = zoo.list_pretrained(cached=True)
outputs, matches = {}, {}
for name in zoo.list_pretrained():
    outputs[name] = reference_output(zoo.load_pretrained(name)).contiguous()
    matches[name] = reference_matches(outputs[name], pretrained_entry(name)["reference_output"])
save_file(outputs, sys.argv[1] if len(sys.argv) > 1 else "outputs.safetensors")
print(json.dumps({"names": zoo.list_pretrained(), "cached_before": cached_before, "cached_after": zoo.list_pretrained(cached=True),
                  "matches": matches, "cache": str(cache_dir())}))
"""


@dataclass
class FirstDownload:
    result: dict
    outputs: dict[str, torch.Tensor]
    torch_home: Path
    server: WeightsServer


@pytest.fixture(scope="module")
def first_download(installed, tmp_path_factory) -> FirstDownload:
    """Every entry loaded once by the installed zoo, from a server of the checkout's checkpoints/, into an empty cache."""
    torch_home = tmp_path_factory.mktemp("first") / "torch"
    server = WeightsServer(REPO / "checkpoints")
    try:
        result = run_installed(installed, LOAD_ALL, torch_home=torch_home, url=server.url)
        yield FirstDownload(result, load_file(torch_home.parent / "workdir" / "outputs.safetensors"), torch_home, server)
    finally:
        server.stop()


def test_the_wheel_holds_the_manifest_and_configs_but_no_weights_file(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        assert wheel.read("zoo/hub/shipped/manifest.json") == (SHIPPED_DIR / "manifest.json").read_bytes()
    assert not [n for n in names if n.endswith((".safetensors", ".ckpt", ".pt", ".pth"))]
    assert {f"zoo/hub/shipped/{e['config_file']}" for e in SHIPPED.values()} <= names
    assert installed.wheel.stat().st_size < MAX_WHEEL_BYTES, f"{installed.wheel.name} is {installed.wheel.stat().st_size:,} bytes"


def test_every_entry_downloads_on_first_use_and_gives_the_checkouts_output(first_download, monkeypatch):
    result = first_download.result
    assert result["names"] == sorted(SHIPPED) and result["cached_before"] == []
    assert result["cached_after"] == sorted(SHIPPED)
    assert Path(result["cache"]) == first_download.torch_home / "hub" / "zoo"
    assert files_in(Path(result["cache"])) == sorted(e["file"] for e in SHIPPED.values())  # whole files only
    assert sorted(first_download.server.requests) == sorted(f"/{e['file']}" for e in SHIPPED.values())  # one request each
    assert result["matches"] == {name: True for name in SHIPPED}, "the manifest's reference_output differs"
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocess ran (OMP_NUM_THREADS=1): other thread counts reorder float sums
    try:
        for name in SHIPPED:  # the checkout's own load (from checkpoints/) gives the very same numbers
            assert torch.equal(first_download.outputs[name], reference_output(load_pretrained(name))), name
    finally:
        torch.set_num_threads(threads)


def test_the_second_load_comes_from_the_cache_with_the_server_stopped(installed, first_download):
    first_download.server.stop()
    requests = list(first_download.server.requests)
    result = run_installed(installed, LOAD_ALL, torch_home=first_download.torch_home, url=first_download.server.url)
    assert result["cached_before"] == sorted(SHIPPED) and all(result["matches"].values())
    outputs = load_file(first_download.torch_home.parent / "workdir" / "outputs.safetensors")
    assert outputs.keys() == first_download.outputs.keys()
    assert all(torch.equal(outputs[n], first_download.outputs[n]) for n in outputs)
    assert first_download.server.requests == requests


LOAD_ONE = """
from zoo.hub.download import PretrainedWeightsUnavailable
name = "resnet20.fashionmnist"
try:
    zoo.load_pretrained(name)
    error = None
except PretrainedWeightsUnavailable as e:
    error = {"type": type(e).__name__, "message": str(e)}
folder = cache_dir()
print(json.dumps({"error": error, "cache": str(folder), "files": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
                  "cached": zoo.list_pretrained(cached=True)}))
"""


def test_a_tampered_file_on_the_server_is_refused_and_not_cached(installed, weights_server, tmp_path):
    entry = SHIPPED["resnet20.fashionmnist"]
    data = bytearray((REPO / "checkpoints" / entry["file"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (weights_server.folder / entry["file"]).write_bytes(bytes(data))
    result = run_installed(installed, LOAD_ONE, torch_home=tmp_path / "torch", url=weights_server.url)
    assert result["error"]["type"] == "PretrainedWeightsCorrupt"
    url = f"{weights_server.url}{entry['file']}"
    assert result["error"]["message"].startswith(f"resnet20.fashionmnist: the {entry['file']} downloaded from {url} does not match the manifest")
    assert result["files"] == [] and result["cached"] == []  # not cached, no temporary file left
    assert weights_server.requests == [f"/{entry['file']}"]


def test_offline_with_nothing_cached_is_one_clear_sentence(installed, weights_server, tmp_path):
    weights_server.stop()
    result = run_installed(installed, LOAD_ONE, torch_home=tmp_path / "torch", url=weights_server.url)
    file, cache = SHIPPED["resnet20.fashionmnist"]["file"], tmp_path / "torch" / "hub" / "zoo"
    assert result["error"] == {
        "type": "PretrainedWeightsUnavailable",
        "message": f"resnet20.fashionmnist: its weights file is not on this machine and could not be downloaded from "
        f"{weights_server.url}{file} (Connection refused); download {file} elsewhere and put it in {cache} "
        f"(or in $ZOO_WEIGHTS_DIR), where it is used offline.",
    }
    assert result["cache"] == str(cache) and result["files"] == []
