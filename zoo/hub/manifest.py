"""The manifest of the shipped weights, and where each entry's files are found.

The manifest (``zoo/hub/shipped/manifest.json``) and each entry's config (``zoo/hub/shipped/<name>.json``: the
class and constructor arguments) are package data: they ship in the wheel, so ``zoo.list_pretrained()`` works
from ``pip install``. The weights files (``<name>.safetensors``) do not ship in the wheel. An entry's weights file
is looked for, in this order:

1. in ``$ZOO_WEIGHTS_DIR``, when it is set;
2. in the repository's ``checkpoints/``, in a clone (or torch.hub's copy of the repository);
3. in the download cache, ``<torch.hub.get_dir()>/zoo`` (``zoo.hub.download.cache_dir``);

and otherwise downloaded into the cache from ``<base URL><file>`` (``zoo.hub.download.weights_url``: the
project's release assets, or ``$ZOO_WEIGHTS_URL``). The first file found is checked against the manifest's
SHA-256 before anything parses it; a mismatch is refused naming the file, and a file of the cache (which the
zoo wrote) is deleted as well, so that the next load downloads it again.

A ``$ZOO_WEIGHTS_DIR`` that holds a ``manifest.json`` of its own is a complete weights folder, as
``zoo-export --out DIR`` writes it (manifest, configs and weights side by side): its manifest replaces the
package's, and its entries are looked for in that folder only (they are in no release to download from).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
from pathlib import Path
from typing import Any

from zoo.hub.download import (
    DownloadFailed,
    PretrainedWeightsCorrupt,
    PretrainedWeightsUnavailable,
    cache_dir,
    download,
    sha256_file,
    weights_url,
)

__all__ = [
    "FORMAT",
    "SHIPPED_DIR",
    "check_file",
    "config_file",
    "is_cached",
    "is_pretrained_name",
    "list_pretrained",
    "manifest_dir",
    "pretrained_entry",
    "read_manifest",
    "repository_checkpoints",
    "shipped_places",
    "weights_dir",
    "weights_file",
]

FORMAT = 1
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"  # package data: manifest.json and the entries' configs
_ROOT = Path(__file__).resolve().parents[2]  # the repository, in a clone; site-packages once installed


def repository_checkpoints() -> Path | None:
    """``checkpoints/`` of the repository holding ``zoo``: in a clone (hubconf.py beside it) only, else None."""
    return _ROOT / "checkpoints" if (_ROOT / "hubconf.py").is_file() else None


def weights_dir() -> Path:
    """Where weights files are looked for first and ``zoo-export`` writes: ``$ZOO_WEIGHTS_DIR`` if set, else the
    repository's ``checkpoints/`` (which an installed package has none of)."""
    env = os.environ.get("ZOO_WEIGHTS_DIR")
    return Path(env) if env else _ROOT / "checkpoints"


def manifest_dir() -> Path:
    """The folder of the manifest in use and its configs: ``$ZOO_WEIGHTS_DIR`` when it holds a manifest.json,
    else the package's ``zoo/hub/shipped``."""
    env = os.environ.get("ZOO_WEIGHTS_DIR")
    return Path(env) if env and (Path(env) / "manifest.json").is_file() else SHIPPED_DIR


def read_manifest(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest (``manifest_dir()/manifest.json`` by default); an absent file is an empty manifest."""
    path = Path(path) if path is not None else manifest_dir() / "manifest.json"
    if not path.is_file():
        return {"format": FORMAT, "description": "", "weights": []}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("weights"), list):
        raise ValueError(f"{path} is not a format-{FORMAT} zoo manifest ({{'format': 1, 'weights': [...]}})")
    return manifest


def _entries() -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in read_manifest()["weights"]}


def _unknown(name: str, entries: dict[str, Any]) -> KeyError:
    close = difflib.get_close_matches(name, entries, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    known = ", ".join(sorted(entries)) or f"none (the manifest in {manifest_dir()} lists no weights)"
    return KeyError(f"no pretrained weights named {name!r}.{hint} Available: {known}")


def pretrained_entry(name: str) -> dict[str, Any]:
    """The manifest row of entry ``name``, with ``url`` (where its weights file downloads from) added; a
    ``KeyError`` listing close matches and every entry otherwise."""
    entries = _entries()
    if name not in entries:
        raise _unknown(name, entries)
    entry = dict(entries[name])
    if any(not isinstance(entry.get(k), str) or Path(entry[k]).name != entry[k] for k in ("file", "config_file")):
        raise PretrainedWeightsCorrupt(f"{name}: the manifest's file names must be plain file names, got {entry.get('file')!r}")
    if manifest_dir() == SHIPPED_DIR:
        entry["url"] = weights_url(entry["file"])
    return entry


def is_pretrained_name(name: Any) -> bool:
    """Whether ``name`` is the name of an entry in the manifest."""
    return isinstance(name, str) and name in _entries()


# -- where the files are ----------------------------------------------------------------------------------
def shipped_places() -> list[Path]:
    """The folders searched for a shipped entry's weights file, in order: $ZOO_WEIGHTS_DIR (when set), the
    repository's checkpoints/ (in a clone), the download cache."""
    env = os.environ.get("ZOO_WEIGHTS_DIR")
    return [p for p in (Path(env) if env else None, repository_checkpoints(), cache_dir()) if p is not None]


def _found(file: str) -> Path | None:
    places = shipped_places() if manifest_dir() == SHIPPED_DIR else [manifest_dir()]
    return next((folder / file for folder in places if (folder / file).is_file()), None)


def is_cached(name: str) -> bool:
    """Whether entry ``name``'s weights file is on this machine ($ZOO_WEIGHTS_DIR, checkpoints/ or the download
    cache), so that loading it downloads nothing. Its hash is checked when it loads, not here."""
    return _found(pretrained_entry(name)["file"]) is not None


def list_pretrained(pattern: str = "*", *, cached: bool | None = None) -> list[str]:
    """Sorted names of the shipped entries matching a shell-style ``pattern`` (``"resnet*"``, ``"*.fashionmnist"``).

    Args:
        pattern: shell-style pattern of entry names.
        cached: None lists every entry; True only those whose weights file is on this machine already (they load
            offline), False only those that the first load downloads.
    """
    entries = _entries()
    names = sorted(n for n in entries if fnmatch.fnmatchcase(n, pattern))
    return names if cached is None else [n for n in names if (_found(str(entries[n]["file"])) is not None) == cached]


def check_file(path: Path, sha256: str, name: str, *, delete: bool = False) -> None:
    """Raise ``PretrainedWeightsCorrupt`` naming ``path`` unless its SHA-256 is ``sha256`` (deleting it if ``delete``)."""
    digest = sha256_file(path)
    if digest != sha256:
        if delete:
            path.unlink(missing_ok=True)
        gone = " It was deleted from the cache; the next load downloads it again." if delete else ""
        raise PretrainedWeightsCorrupt(
            f"{path} does not match the manifest: its SHA-256 is {digest}, the manifest says {sha256}. "
            f"The file is damaged or was replaced, and nothing of {name} was loaded.{gone}"
        )


def config_file(entry: dict[str, Any]) -> Path:
    """The entry's checked config (``<name>.json``, beside the manifest in use)."""
    path = manifest_dir() / entry["config_file"]
    if not path.is_file():
        raise PretrainedWeightsUnavailable(f"{entry['name']}: its config {path.name} is missing; it should be at {path}")
    check_file(path, entry["config_sha256"], entry["name"])
    return path


def weights_file(entry: dict[str, Any], *, progress: bool | None = None) -> Path:
    """The entry's weights file, checked against its SHA-256: found on this machine, else downloaded into the cache.

    Args:
        entry: a row of ``pretrained_entry``.
        progress: the download's progress bar: True, False, or None for "on a terminal".

    Raises:
        PretrainedWeightsUnavailable: not on this machine and not downloadable; one sentence names the entry,
            the URL and the folder to put the file in.
        PretrainedWeightsCorrupt: the file found (or downloaded) differs from the manifest's SHA-256.
    """
    name, file, sha256 = entry["name"], entry["file"], entry["sha256"]
    cache = cache_dir()
    found = _found(file)
    if found is not None:
        check_file(found, sha256, name, delete=found.parent == cache)
        return found
    if manifest_dir() != SHIPPED_DIR:
        raise PretrainedWeightsUnavailable(
            f"{name}: {file} is missing; it should be at {manifest_dir() / file} (the manifest in $ZOO_WEIGHTS_DIR "
            f"names files beside it)"
        )
    url = weights_url(file)
    try:
        return download(url, cache / file, sha256, label=name, progress=progress)
    except DownloadFailed as e:
        raise PretrainedWeightsUnavailable(
            f"{name}: its weights file is not on this machine and could not be downloaded from {url} ({e.reason}); "
            f"download {file} elsewhere and put it in {cache} (or in $ZOO_WEIGHTS_DIR), where it is used offline."
        ) from None
