"""``python -m zoo.tools.release --out dist/weights``: the manifest's weights files, ready to upload as release assets.

    python -m zoo.tools.release --out dist/weights
    # then, as printed (once per release tag, the first command creates it):
    gh release create weights-v1 --repo <owner>/<repo> --title "Pretrained weights (weights-v1)" --notes "..."
    gh release upload weights-v1 dist/weights/<file> ... --repo <owner>/<repo> --clobber

The wheel ships the manifest but no weights file: ``zoo.load_pretrained`` downloads each file on first use from
``zoo.hub.download.WEIGHTS_URL`` (``https://github.com/<REPOSITORY>/releases/download/<RELEASE>/<file>``). This
tool writes exactly the files the package's manifest names into ``--out``, each copied from where loading finds
it on this machine ($ZOO_WEIGHTS_DIR, the repository's checkpoints/, the download cache; nothing is downloaded)
and checked against its SHA-256, then prints the ``gh`` commands that publish them there. It runs nothing
against GitHub. A folder holding anything else is refused, so that no stale file is uploaded.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from zoo.hub.download import RELEASE, REPOSITORY, WEIGHTS_URL, sha256_file
from zoo.hub.manifest import SHIPPED_DIR, read_manifest, shipped_places

__all__ = ["ReleaseRefused", "main", "upload_commands", "write_release"]


class ReleaseRefused(ValueError):
    """The release folder is not written: a file is missing, differs from its SHA-256, or the folder holds others."""


def _copy_checked(src: Path, dest: Path, sha256: str) -> None:
    """Copy ``src`` to ``dest`` through a temporary file, moved into place only when its SHA-256 is ``sha256``."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        digest = sha256_file(tmp)
        if digest != sha256:
            raise ReleaseRefused(f"{src} does not match the manifest (SHA-256 {digest}, the manifest says {sha256}); it is not released")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_release(out: str | os.PathLike, manifest: str | os.PathLike | None = None) -> list[Path]:
    """Write the weights file of every manifest entry into ``out``, checked; returns their paths, sorted.

    Args:
        out: the release folder (created if absent); it may hold only files that the manifest names.
        manifest: the manifest (default: the package's, ``zoo/hub/shipped/manifest.json``).

    Raises:
        ReleaseRefused: ``out`` holds other files, a file is on no searched folder, or a file differs from its hash.
    """
    entries = read_manifest(manifest if manifest is not None else SHIPPED_DIR / "manifest.json")["weights"]
    files = {e["file"]: e for e in entries}
    if any(Path(f).name != f for f in files):
        raise ReleaseRefused("the manifest's file names must be plain file names")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stale = sorted(p.name for p in out.iterdir() if p.name not in files)
    if stale:
        raise ReleaseRefused(
            f"{out} holds files the manifest does not name: {', '.join(stale)}; empty it or choose another --out, "
            f"so that the upload holds the manifest's files and nothing else"
        )
    places = shipped_places()
    sources = {f: next((d / f for d in places if (d / f).is_file()), None) for f in files}
    missing = sorted(f for f, src in sources.items() if src is None)
    if missing:
        where = ", ".join(str(p) for p in places)
        raise ReleaseRefused(f"not on this machine: {', '.join(missing)} (searched {where}); release from a clone with its checkpoints/")
    written = []
    for file, entry in sorted(files.items()):
        dest = out / file
        if not (dest.is_file() and sha256_file(dest) == entry["sha256"]):
            _copy_checked(sources[file], dest, entry["sha256"])
        written.append(dest)
    return written


def upload_commands(files: Sequence[Path], *, repository: str = REPOSITORY, tag: str = RELEASE) -> list[str]:
    """The ``gh`` commands that create the release ``tag`` (once) and upload ``files`` as its assets."""
    notes = f"The weights files of the zoo manifest: zoo.load_pretrained downloads each from {WEIGHTS_URL}<file>"
    create = ["gh", "release", "create", tag, "--repo", repository, "--title", f"Pretrained weights ({tag})", "--notes", notes]
    upload = ["gh", "release", "upload", tag, *map(str, files), "--repo", repository, "--clobber"]
    return [shlex.join(create), shlex.join(upload)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.tools.release", description="Write the manifest's weights files into a folder and print the upload commands."
    )
    parser.add_argument("--out", required=True, help="the release folder, e.g. dist/weights (only the manifest's files may be in it)")
    parser.add_argument("--manifest", help="the manifest (default: the package's, zoo/hub/shipped/manifest.json)")
    args = parser.parse_args(argv)
    try:
        files = write_release(args.out, args.manifest)
    except (ReleaseRefused, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    size = sum(p.stat().st_size for p in files)
    print(f"{len(files)} files, {size / 1e6:.1f} MB, checked against the manifest, in {args.out}")
    print(f"Publish them where the downloads look ({WEIGHTS_URL}); the first command only if the release does not exist yet:")
    for command in upload_commands(files):
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
