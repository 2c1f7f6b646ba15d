"""``python -m zoo.tools.model_card``: the generated blocks of README.md and docs/, from the registry,
configs/ and the manifest.

    python -m zoo.tools.model_card            # rewrites every generated block
    python -m zoo.tools.model_card --check    # exits 1 when a block differs, writing nothing

The blocks are listed in ``zoo.tools.docs_tables.TARGETS``: README.md's model table, the recipes table of
docs/guides/training.md, the table of shipped weights in docs/guides/pretrained.md (``render`` here,
between ``<!-- model-card:start -->`` and ``<!-- model-card:end -->``) and the model cards of
docs/model-cards.md. Nothing outside the markers is touched. The shipped-weights table's columns: name,
architecture, dataset, metric (with the target when it was not reached), params, size, hardware, and the
command that reproduces the entry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from zoo.hub.manifest import SHIPPED_DIR, read_manifest
from zoo.tools.docs_tables import END, START, format_metric, render, update
from zoo.tools.docs_tables import replace_card_block as replace_block

__all__ = ["END", "START", "format_metric", "main", "render", "replace_block"]

ROOT = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.tools.model_card", description="Generate the tables of README.md and docs/.")
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated block is out of date, writing nothing")
    parser.add_argument("--root", default=str(ROOT), help="the repository holding README.md, docs/ and configs/ (default: this one)")
    parser.add_argument("--manifest", help="the manifest (default: the package's, zoo/hub/shipped/manifest.json)")
    args = parser.parse_args(argv)

    stale = update(Path(args.root), read_manifest(args.manifest or SHIPPED_DIR / "manifest.json"), check=args.check)
    for path in stale:
        if args.check:
            print(f"{path} is out of date: run python -m zoo.tools.model_card", file=sys.stderr)
        else:
            print(f"updated {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
