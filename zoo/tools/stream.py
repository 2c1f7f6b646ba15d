"""``python -m zoo.tools.stream``: write a zoo image dataset as a streaming copy (litdata chunks) that
``StreamingImageDataModule`` reads without holding it in memory.

    python -m zoo.tools.stream --source FashionMNISTDataModule --out data/streaming/fashionmnist
    python -m zoo.tools.stream --source CIFAR10DataModule --data-dir ~/data --out /mnt/big/cifar10 --val-fraction 0.1

The splits are the source datamodule's (``--val-fraction``, ``--seed``); the folder appears whole or not
at all. Upload it anywhere litdata reads (``s3://...``) to stream it from there.
The library function is ``datamodules.streaming.write_streaming_dataset``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from datamodules.streaming import METADATA, source_datamodules, write_streaming_dataset


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m zoo.tools.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, choices=sorted(source_datamodules()), help="zoo image datamodule")
    parser.add_argument("--out", required=True, help="folder to create (must not exist)")
    parser.add_argument("--data-dir", default=None, help="the source's data_dir (default: its own)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="training data held out for validation")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/val split")
    parser.add_argument("--chunk-bytes", default="64MB", help="size of each chunk file")
    args = parser.parse_args(argv)
    options = {} if args.data_dir is None else {"data_dir": args.data_dir}
    dm = source_datamodules()[args.source](val_fraction=args.val_fraction, seed=args.seed, **options)
    out = write_streaming_dataset(dm, args.out, chunk_bytes=args.chunk_bytes)
    sizes = json.loads((out / METADATA).read_text())["sizes"]
    print(f"wrote {out}: " + ", ".join(f"{split} {n}" for split, n in sizes.items()))
    return out


if __name__ == "__main__":
    main()
