"""Where the shipped weights files come from when they are not on this machine: the project's release assets.

    WEIGHTS_URL          https://github.com/<REPOSITORY>/releases/download/<RELEASE>/: the one base URL of every file
    $ZOO_WEIGHTS_URL     replaces it (a mirror, a folder as file:///..., a test server)
    cache_dir()          <torch.hub.get_dir()>/zoo: where downloads are kept ($TORCH_HOME/hub/zoo)
    download(url, dest, sha256)

A download is written to a temporary file beside ``dest`` and hashed while it arrives; it is moved into place
with ``os.replace`` only when it is complete and its SHA-256 is the manifest's. Anything else (a connection
cut midway, an HTTP error, a hash mismatch, Ctrl-C) deletes the temporary file: the cache holds whole,
checked files or nothing. The progress bar shows on a terminal only (``zoo.viz.progress``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlparse
from urllib.request import Request, urlopen

from zoo.viz.progress import progress_bar

__all__ = [
    "DownloadFailed",
    "PretrainedWeightsCorrupt",
    "PretrainedWeightsUnavailable",
    "RELEASE",
    "REPOSITORY",
    "WEIGHTS_URL",
    "cache_dir",
    "download",
    "sha256_file",
    "weights_base_url",
    "weights_url",
]

# The GitHub repository whose release assets hold the weights files. A placeholder until the project has a public
# home: change it here (and nowhere else) when it does; $ZOO_WEIGHTS_URL overrides the whole base URL meanwhile.
REPOSITORY = "lightning-zoo/lightning-zoo"
# The release whose assets are the files of the manifest; a new file set (say, retrained entries) is a new tag.
RELEASE = "weights-v1"
WEIGHTS_URL = f"https://github.com/{REPOSITORY}/releases/download/{RELEASE}/"
TIMEOUT_S = 60.0  # seconds without a byte before a download is given up
_CHUNK = 1 << 20


class PretrainedWeightsUnavailable(RuntimeError):
    """A weights file is not where it should be (or cannot be downloaded); the message says where to put it."""


class PretrainedWeightsCorrupt(PretrainedWeightsUnavailable):
    """A weights or config file does not match its recorded SHA-256, or is not a plain weights file."""


class DownloadFailed(OSError):
    """A download did not complete (offline, an HTTP error, a connection cut); ``reason`` says why. Nothing was kept."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not download {url}: {reason}")
        self.url, self.reason = url, reason


def sha256_file(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def weights_base_url() -> str:
    """``$ZOO_WEIGHTS_URL`` if set, else ``WEIGHTS_URL``; always ending in "/"."""
    base = os.environ.get("ZOO_WEIGHTS_URL") or WEIGHTS_URL
    if urlparse(base).scheme not in ("http", "https", "file"):
        raise ValueError(f"$ZOO_WEIGHTS_URL={base!r} is not an http://, https:// or file:// URL of a folder of weights files")
    return base if base.endswith("/") else base + "/"


def weights_url(file: str) -> str:
    """The download URL of a weights file named in the manifest: the base URL, then the file name."""
    return weights_base_url() + quote(file)


def cache_dir() -> Path:
    """``<torch.hub.get_dir()>/zoo``: downloaded weights files, kept for the next load ($TORCH_HOME/hub/zoo)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "zoo"


def _reason(error: BaseException | str) -> str:
    if isinstance(error, HTTPError):
        return f"the server answered HTTP {error.code} ({error.reason})"
    if isinstance(error, URLError):
        error = error.reason  # an OSError (connection refused, no DNS) or a string
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _fetch(url: str, out, name: str, progress: bool | None, timeout: float) -> str:
    """Stream ``url`` into the open file ``out``; the hex SHA-256 of what arrived. Raises DownloadFailed."""
    from zoo.version import __version__

    digest, received, expected = hashlib.sha256(), 0, None
    try:
        with urlopen(Request(url, headers={"User-Agent": f"lightning-zoo/{__version__}"}), timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with progress_bar(total=expected, desc=name, unit="B", unit_scale=True, progress=progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (URLError, OSError, http.client.HTTPException) as e:  # HTTPError is a URLError; a timeout an OSError
        raise DownloadFailed(url, _reason(e)) from e
    if expected is not None and received != expected:  # http.client ends a cut body quietly: count the bytes
        raise DownloadFailed(url, f"the connection closed after {received:,} of {expected:,} bytes")
    return digest.hexdigest()


def download(
    url: str, dest: Path, sha256: str, *, label: str = "", progress: bool | None = None, timeout: float = TIMEOUT_S
) -> Path:
    """Download ``url`` to ``dest``, atomically and only when its SHA-256 is ``sha256``.

    Args:
        url: an http(s):// or file:// URL.
        dest: where the checked file goes (its folder is created); it is replaced only by a complete, checked file.
        sha256: the hex SHA-256 the manifest records.
        label: the entry name, for messages.
        progress: True shows a progress bar, False hides it, None shows it when standard error is a terminal.
        timeout: seconds without a byte before giving up.

    Raises:
        DownloadFailed: offline, an HTTP error, a connection cut midway; nothing is left behind.
        PretrainedWeightsUnavailable: the folder of ``dest`` cannot be written.
        PretrainedWeightsCorrupt: the file arrived whole but its SHA-256 differs; it is deleted, never parsed.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    except OSError as e:
        raise PretrainedWeightsUnavailable(
            f"{label or dest.name}: cannot write the download into {dest.parent} ({e.strerror or e}); set $TORCH_HOME to a "
            f"writable folder, or put {dest.name} in $ZOO_WEIGHTS_DIR"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, dest.name, progress, timeout)
        if digest != sha256:
            raise PretrainedWeightsCorrupt(
                f"{label or dest.name}: the {dest.name} downloaded from {url} does not match the manifest: its SHA-256 is "
                f"{digest}, the manifest says {sha256}. It was deleted, and nothing of it was cached or loaded."
            )
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would follow the file into the cache
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
