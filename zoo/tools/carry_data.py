"""A dataset's files in parts small enough to travel to a machine without internet, and back into one folder there.

A GPU machine lent for a few minutes reaches nothing outside itself, and what travels with one call is limited
(64 MiB with the repository's ~47 MB of tracked files). Fashion-MNIST's four gzipped files are 31 MB, so they go
as one tar archive cut into parts, each in a folder of its own that one call carries:

    python -m zoo.tools.carry_data split /usr/share/datasets/fashion-mnist .carry --name fashion-mnist
    # -> .carry/fashion-mnist-1/fashion-mnist.tar.1, .carry/fashion-mnist-2/fashion-mnist.tar.2 + fashion-mnist.json

    python -m zoo.tools.carry_data join .carry /tmp/fashion-mnist --name fashion-mnist   # there, once every part arrived

``join`` checks that every part is there and that the archive's SHA-256 is the one ``split`` recorded, then
unpacks into the destination (members are plain files, no paths); a missing part is one error naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

__all__ = ["CarryError", "join_parts", "split_files"]

#: Part size: two parts of Fashion-MNIST, each under what one call carries beside the tracked files.
DEFAULT_PART_BYTES = 16_000_000


class CarryError(RuntimeError):
    """Parts missing, damaged or inconsistent; the message names what and how to fix it."""


def split_files(source: str | Path, carry_root: str | Path, *, name: str, part_bytes: int = DEFAULT_PART_BYTES) -> list[Path]:
    """Pack the regular files of ``source`` into one tar archive and write it as ``<carry_root>/<name>-<i>/<name>.tar.<i>``
    (i = 1, 2, ...) of at most ``part_bytes`` each, plus ``<name>.json`` (part count, SHA-256) beside every part.

    Returns the part folders, one per call that carries them.
    """
    source, carry_root = Path(source), Path(carry_root)
    files = sorted(p for p in source.iterdir() if p.is_file())
    if not files:
        raise CarryError(f"{source} holds no files to carry")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:  # the files are gzipped already: no second compression
        for path in files:
            tar.add(path, arcname=path.name)
    data = buffer.getvalue()
    chunks = [data[i : i + part_bytes] for i in range(0, len(data), part_bytes)]
    index = {"name": name, "parts": len(chunks), "sha256": hashlib.sha256(data).hexdigest(), "files": [p.name for p in files]}
    folders = []
    for i, chunk in enumerate(chunks, start=1):
        folder = carry_root / f"{name}-{i}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.tar.{i}").write_bytes(chunk)
        (folder / f"{name}.json").write_text(json.dumps(index, indent=2) + "\n")
        folders.append(folder)
    return folders


def join_parts(carry_root: str | Path, dest: str | Path, *, name: str) -> Path:
    """Unpack the parts ``split_files`` wrote under ``carry_root`` into ``dest``; returns ``dest``.

    Raises ``CarryError`` when no part is found, a part is missing, or the joined archive is not the one split.
    """
    carry_root, dest = Path(carry_root), Path(dest)
    indexes = sorted(carry_root.glob(f"{name}-*/{name}.json"))
    if not indexes:
        raise CarryError(f"no parts of {name} under {carry_root} (looked for {name}-*/{name}.json); write them with "
                         f"`python -m zoo.tools.carry_data split <folder> {carry_root} --name {name}`")  # fmt: skip
    index = json.loads(indexes[0].read_text())
    parts = [carry_root / f"{name}-{i}" / f"{name}.tar.{i}" for i in range(1, index["parts"] + 1)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise CarryError(f"{name}: {len(missing)} of {len(parts)} parts missing: {', '.join(missing)}. "
                         "Each part travels with its own call (carry its folder); the machine must stay warm in between.")  # fmt: skip
    data = b"".join(p.read_bytes() for p in parts)
    if hashlib.sha256(data).hexdigest() != index["sha256"]:
        raise CarryError(f"{name}: the joined parts are not the archive that was split (SHA-256 differs); split again")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar.getmembers():
            if not member.isfile() or Path(member.name).name != member.name:
                raise CarryError(f"{name}: archive member {member.name!r} is not a plain file name; refused")
            (dest / member.name).write_bytes(tar.extractfile(member).read())
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.tools.carry_data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("split", help="write SOURCE's files as parts under CARRY_ROOT")
    split.add_argument("source")
    split.add_argument("carry_root")
    split.add_argument("--name", required=True)
    split.add_argument("--part-bytes", type=int, default=DEFAULT_PART_BYTES)
    join = sub.add_parser("join", help="unpack the parts under CARRY_ROOT into DEST")
    join.add_argument("carry_root")
    join.add_argument("dest")
    join.add_argument("--name", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "split":
            for folder in split_files(args.source, args.carry_root, name=args.name, part_bytes=args.part_bytes):
                print(f"{folder} ({sum(p.stat().st_size for p in folder.iterdir()):,} bytes)")
        else:
            print(join_parts(args.carry_root, args.dest, name=args.name))
    except (CarryError, OSError) as e:
        sys.exit(f"error: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
