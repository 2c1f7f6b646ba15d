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
from typing import Any

__all__ = ["END", "START", "format_metric", "main", "render", "replace_block"]

START = "<!-- model-card:start -->"
END = "<!-- model-card:end -->"
ROOT = Path(__file__).resolve().parents[2]

_PERCENT = ("acc", "exact_match", "class_acc")
_HEADER = "| name | architecture | dataset | metric | params | size | hardware | reproduce |\n|---|---|---|---|---|---|---|---|"


def _value(name: str, value: float) -> str:
    """A metric value as a reader expects it: accuracies in percent, PSNR in dB, the rest with 4 significant digits."""
    short = name.rsplit("/", 1)[-1]
    if short in _PERCENT:
        return f"{100 * value:.2f}%"
    if short == "psnr":
        return f"{value:.2f} dB"
    if short == "return":
        return f"{value:.1f}"
    return f"{value:.4g}"


def format_metric(entry: dict[str, Any]) -> str:
    """``test/acc 93.12%``, plus the last-value baseline of a forecaster, the judge of a GAN, and the target
    when it was not reached."""
    m = entry["metric"]
    text = f"{m['name']} {_value(m['name'], m['value'])}"
    if "baseline" in m:
        text += f" (last-value forecast: {_value(m['name'], m['baseline']['value'])})"
    if "judge" in m:
        text += f", judged by `{m['judge']['name']}`"
    target = entry.get("target")
    if target and not target.get("reached"):
        reference = f"; {target['reference']}" if target.get("reference") else ""
        text += f"; target {_value(m['name'], target['value'])} not reached{reference}"
    return text


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "wall time not recorded"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(1, minutes)} min"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(manifest: dict[str, Any]) -> str:
    """The Markdown table of ``manifest``'s entries (sorted by name), or a line saying none ship yet."""
    entries = sorted(manifest.get("weights", []), key=lambda e: e["name"])
    if not entries:
        return "No weights ship yet: `checkpoints/manifest.json` lists none."
    rows = [_HEADER]
    for e in entries:
        r = e["reproduce"]
        chosen = r.get("checkpoint_epoch", r["epochs"])
        at = f", checkpoint of epoch {chosen}" if chosen != r["epochs"] else ""
        reproduce = f"`{r['command']}` ({r['epochs']} epochs{at}, {_duration(r.get('wall_time_s'))})"
        cells = [
            f"`{e['name']}`",
            f"`{e['arch']}` (`zoo.{e['zoo_class']}`)",
            f"{e['dataset']['name']}; {e['dataset']['license']}",
            format_metric(e),
            f"{e['params']:,}",
            _size(e["size_bytes"]),
            r["hardware"],
            reproduce,
        ]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def replace_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"the page needs exactly one {START} ... {END} block")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.tools.model_card", description="Generate the tables of README.md and docs/.")
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated block is out of date, writing nothing")
    parser.add_argument("--root", default=str(ROOT), help="the repository holding README.md, docs/ and configs/ (default: this one)")
    parser.add_argument("--manifest", help="the manifest (default: the weights directory's manifest.json)")
    args = parser.parse_args(argv)

    stale = update(Path(args.root), read_manifest(args.manifest), check=args.check)
    for path in stale:
        if args.check:
            print(f"{path} is out of date: run python -m zoo.tools.model_card", file=sys.stderr)
        else:
            print(f"updated {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
