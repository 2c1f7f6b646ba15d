"""``zoo-export`` (or ``python -m zoo.tools.export``): a training checkpoint becomes a shipped entry.

    zoo-export runs/resnet20/checkpoints/best.ckpt --name resnet20.fashionmnist \\
        --config configs/resnet20_fashionmnist.yaml --wall-time 5400 \\
        --command "python train.py fit --config configs/resnet20_fashionmnist.yaml --trainer.max_epochs=30" \\
        --target 0.945 --target-reference "ResNet-18 94.9%"

The checkpoint loads through ``zoo.load_checkpoint``; its test metric is measured with
``zoo.evaluation.evaluate`` on the test split that the config's ``data:`` section describes; then
``<name>.safetensors`` and ``<name>.json`` (``zoo.hub.pretrained.save_pretrained``) and the manifest row
(sha256s, size, parameters, dataset, metric with its tolerance, reference output, and what reproduces it:
config, command, epochs, wall time, hardware, versions, date) are written:

* by default, into the repository's shipped layout: the weights file into ``checkpoints/``, the config and the
  manifest row into the package's ``zoo/hub/shipped/`` (which the wheel ships); ``python -m zoo.tools.release``
  then collects the weights files to upload as release assets;
* with ``--out DIR`` (or ``$ZOO_WEIGHTS_DIR`` set), all three into ``DIR``: a weights folder of your own, which
  ``$ZOO_WEIGHTS_DIR=DIR`` loads.

* An existing entry is replaced only when the new metric is strictly better (``--force`` overrides);
  the old files stay in git history.
* A classifier below its dataset's linear baseline plus 2 points (``zoo.evaluation.baselines``) is refused,
  ``--force`` or not.
* A weights file over ``MAX_WEIGHTS_BYTES`` (20 MB) or weights over ``MAX_TOTAL_BYTES`` (100 MB) in all is refused.
* A checkpoint written with weight averaging (``--weight_averaging ema|swa``) is exported with its averaged weights,
  and the row records it: ``"weight_averaging": {"method": "ema", "decay": 0.999}`` (None: plain weights).
* ``--hf-folder DIR`` also writes the entry as a Hugging Face folder (``config.json``, ``model.safetensors``, a
  ``README.md`` card with the measured metric: ``zoo.hub.folder``); without a checkpoint, ``zoo-export --name
  resnet20.fashionmnist --hf-folder DIR`` writes a shipped entry in that form.
* Nothing is half-written: the files are prepared in a staging folder beside the weights and moved into
  place with ``os.replace``, the manifest last; a failure while moving puts the previous files back.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from zoo.core.registry import get_model_class, list_models
from zoo.evaluation.baselines import check_shipping_bar
from zoo.evaluation.shipped_metrics import DEFAULT_JUDGE, GAN_SAMPLES, evaluate, is_better, reference_output, summarize_reference
from zoo.hub.checkpoint import load_checkpoint
from zoo.hub.folder import save_entry_folder, save_folder
from zoo.hub.manifest import SHIPPED_DIR, repository_checkpoints
from zoo.hub.pretrained import pretrained_entry, read_manifest, save_pretrained, sha256_file
from zoo.models.generative.gan_base import GANModule
from zoo.training.weight_averaging import averaging_record
from zoo.tools.export_facts import ExportRefused, _cpu_name, describe_dataset, detect_hardware, read_data_spec, selection

__all__ = ["ExportRefused", "MAX_TOTAL_BYTES", "MAX_WEIGHTS_BYTES", "detect_hardware", "export_checkpoint", "main"]

MAX_WEIGHTS_BYTES = 20_000_000  # per weights file (the 20 MB)
MAX_TOTAL_BYTES = 100_000_000  # the weights files, configs and manifest together (100 MB)

DESCRIPTION = (
    "Shipped pretrained weights: name 'arch.dataset', file, sha256, dataset, test metric and value, params, "
    "and the config and command that reproduce them."
)

log = logging.getLogger(__name__)


def _dir_bytes(directory: Path, skip: set[Path]) -> int:
    """Bytes of the regular files in ``directory`` (recursively), except ``skip`` and staging folders."""
    total = 0
    for path in directory.rglob("*"):
        if path.is_file() and path not in skip and not any(part.startswith(".export-") for part in path.parts):
            total += path.stat().st_size
    return total


def _install(moves: list[tuple[Path, Path]], staging: Path) -> None:
    """``os.replace`` each staged file onto its destination, in order; on a failure, restore what was there."""
    done: list[tuple[Path, Path | None]] = []
    try:
        for src, dest in moves:
            backup = None
            if dest.exists():
                backup = staging / f"{dest.name}.previous"
                shutil.copy2(dest, backup)
            os.replace(src, dest)
            done.append((dest, backup))
    except BaseException:
        for dest, backup in reversed(done):
            if backup is not None:
                os.replace(backup, dest)
            else:
                dest.unlink(missing_ok=True)
        raise


def _destinations(out: str | os.PathLike | None) -> tuple[Path, Path]:
    """(folder of the weights file, folder of the config and manifest) for ``out``."""
    out = out if out is not None else os.environ.get("ZOO_WEIGHTS_DIR")
    if out:
        return Path(out), Path(out)
    checkpoints = repository_checkpoints()
    if checkpoints is None:
        raise ExportRefused(
            "this zoo is an installed package, not a clone of the repository, so it has no shipped layout to add to: "
            "pass --out DIR (a weights folder of your own, which $ZOO_WEIGHTS_DIR=DIR then loads)"
        )
    return checkpoints, SHIPPED_DIR


def export_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    name: str,
    config: str | os.PathLike,
    command: str | None = None,
    wall_time_s: float | None = None,
    epochs: int | None = None,
    hardware: str | None = None,
    target: float | None = None,
    target_reference: str | None = None,
    notes: str | None = None,
    out: str | os.PathLike | None = None,
    force: bool = False,
    classifier: str | None = None,
) -> dict[str, Any]:
    """Measure ``checkpoint`` and write it as the entry ``name``; returns the manifest row.

    Args:
        checkpoint: a ``.ckpt`` written by ``train.py`` / ``lightning.Trainer``.
        name: ``<arch>.<dataset>``, arch a registry name the checkpoint's class builds.
        config: the recipe it was trained with; its ``data:`` section rebuilds the test set.
        command: the exact training command (default ``python train.py fit --config <config>``).
        wall_time_s: the training's wall time in seconds (None: not recorded).
        epochs: the epochs the training command runs (default: the checkpoint's, which validation may have
            chosen earlier; the row records both).
        hardware: what it trained on (default: detected from the checkpoint and this machine).
        target: the metric's target; the row records whether it was reached.
        target_reference: the public result behind the target ("ResNet-18 94.9%").
        notes: free text for the row.
        out: a weights folder of its own for all three files (default ``$ZOO_WEIGHTS_DIR``, else the repository's
            shipped layout: ``checkpoints/`` for the weights, ``zoo/hub/shipped/`` for the config and manifest).
        force: replace an entry even when the new metric is not better.
        classifier: GANs: the shipped classifier entry that judges the samples (default ``resnet20.fashionmnist``).

    Raises:
        ExportRefused: not better than the shipped entry, a classifier below its dataset's linear baseline plus
            2 points (``zoo.evaluation.baselines``; --force does not lift this), over a size limit, or not a
            consistent entry.
    """
    import lightning


    files_dir, meta_dir = _destinations(out)
    if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", name):
        raise ExportRefused(f"an entry name is '<arch>.<dataset>' in lower-case letters, digits and '_', got {name!r}")
    arch = name.split(".")[0]
    if arch not in list_models():
        raise ExportRefused(f"{name!r}: {arch!r} is not a registered model; registry names: {', '.join(list_models())}")
    model = load_checkpoint(checkpoint)
    if not isinstance(model, get_model_class(arch)):
        raise ExportRefused(f"{checkpoint} holds a {type(model).__name__}; {arch!r} builds a {get_model_class(arch).__name__}")
    data = read_data_spec(config)
    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hardware = hardware or detect_hardware(checkpoint)

    judge = None
    if isinstance(model, GANModule):  # judged by a shipped classifier, so that CI can judge it again
        judge = classifier or DEFAULT_JUDGE
        judge_entry = pretrained_entry(judge)  # KeyError naming the entries when it is not shipped
    measured = evaluate(model, data, classifier=judge)
    metric = {k: measured[k] for k in ("name", "value", "higher_is_better", "tolerance")}
    metric["value"] = round(float(measured["value"]), 6)
    if "elbo" in measured:
        metric["elbo"] = round(float(measured["elbo"]), 6)
    if "fid" in measured:
        metric["fid"] = round(float(measured["fid"]), 6)
        metric["per_class"] = [round(float(v), 6) for v in measured["per_class"]]
    if "baseline" in measured:
        metric["baseline"] = {k: round(v, 6) if isinstance(v, float) else v for k, v in measured["baseline"].items()}
    if judge is not None:
        metric["judge"] = {"name": judge, "sha256": judge_entry["sha256"], "samples": GAN_SAMPLES, "seed": 0}
    below_bar = check_shipping_bar(metric, data)
    if below_bar is not None:  # not even --force ships it
        raise ExportRefused(f"{name}: {below_bar}")

    manifest = read_manifest(meta_dir / "manifest.json")
    previous = next((e for e in manifest["weights"] if e["name"] == name), None)
    if previous is not None and not force:
        old = previous["metric"]
        if old["name"] != metric["name"]:
            raise ExportRefused(f"{name} ships with {old['name']}, this checkpoint measures {metric['name']}; --force replaces it")
        if not is_better(metric["value"], old["value"], metric["higher_is_better"]):
            raise ExportRefused(
                f"{name}: {metric['name']} = {metric['value']} is not better than the shipped {old['value']}; "
                f"the shipped entry is kept (--force replaces it anyway)"
            )

    files_dir.mkdir(parents=True, exist_ok=True)
    meta_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=files_dir, prefix=".export-"))
    try:
        weights, config_file = save_pretrained(model, staging, name)
        size = weights.stat().st_size
        if size > MAX_WEIGHTS_BYTES:
            raise ExportRefused(f"{weights.name} is {size:,} bytes; a shipped weights file is at most {MAX_WEIGHTS_BYTES:,}")
        entry: dict[str, Any] = {
            "name": name,
            "arch": arch,
            "zoo_class": type(model).__name__,
            "file": weights.name,
            "sha256": sha256_file(weights),
            "size_bytes": size,
            "config_file": config_file.name,
            "config_sha256": sha256_file(config_file),
            "params": sum(p.numel() for p in model.parameters()),
            "dataset": describe_dataset(model, data, measured),
            "data": data,
            "metric": metric,
        }
        entry["weight_averaging"] = averaging_record(raw)
        if target is not None:
            reached = metric["value"] >= target if metric["higher_is_better"] else metric["value"] <= target
            entry["target"] = {"value": target, "reached": bool(reached), "reference": target_reference}
        entry["reference_output"] = summarize_reference(reference_output(model))
        entry["reproduce"] = {
            "config": str(config),
            "command": command or f"python train.py fit --config {config}",
            "epochs": int(epochs) if epochs is not None else int(raw.get("epoch", -1)) + 1,  # what the command runs
            "checkpoint_epoch": int(raw.get("epoch", -1)) + 1,  # the epoch whose end wrote the checkpoint (best by validation)
            "selected_by": selection(raw),
            "wall_time_s": wall_time_s,
            "hardware": hardware,
            "torch": torch.__version__.split("+")[0],
            "lightning": lightning.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        }
        if notes:
            entry["notes"] = notes
        rows = sorted([e for e in manifest["weights"] if e["name"] != name] + [entry], key=lambda e: e["name"])
        text = json.dumps({"format": 1, "description": manifest.get("description") or DESCRIPTION, "weights": rows}, indent=2, allow_nan=False)
        staged_manifest = staging / "manifest.json"
        staged_manifest.write_text(text + "\n", encoding="utf-8")
        dests = [files_dir / weights.name, meta_dir / config_file.name, meta_dir / "manifest.json"]
        kept = sum(_dir_bytes(d, skip=set(dests)) for d in {files_dir, meta_dir})
        total = kept + sum(p.stat().st_size for p in (weights, config_file, staged_manifest))
        if total > MAX_TOTAL_BYTES:
            raise ExportRefused(f"the shipped weights would be {total:,} bytes with {name}; the limit is {MAX_TOTAL_BYTES:,}")
        _install(list(zip([weights, config_file, staged_manifest], dests)), staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoo-export", description="Turn a training checkpoint into a shipped pretrained entry.")
    parser.add_argument("checkpoint", nargs="?", help="a .ckpt written by train.py (none: --hf-folder of the shipped entry --name)")
    parser.add_argument("--name", required=True, help="entry name <arch>.<dataset>, e.g. resnet20.fashionmnist")
    parser.add_argument("--hf-folder", help="also write the entry as a Hugging Face folder (config.json, model.safetensors, README.md)")
    parser.add_argument("--config", help="the recipe it was trained with (its data: section rebuilds the test set)")
    parser.add_argument("--command", help="the exact training command (default: python train.py fit --config CONFIG)")
    parser.add_argument("--wall-time", type=float, help="training wall time in seconds")
    parser.add_argument("--epochs", type=int, help="epochs the training command runs (default: the checkpoint's epoch)")
    parser.add_argument("--hardware", help="what it trained on (default: detected)")
    parser.add_argument("--target", type=float, help="the metric's target value")
    parser.add_argument("--target-reference", help="the public result behind the target")
    parser.add_argument("--notes", help="free text for the manifest row")
    parser.add_argument("--classifier", help="GANs: the shipped classifier entry that judges the samples (default resnet20.fashionmnist)")
    parser.add_argument(
        "--out", help="a weights folder of your own for the weights, config and manifest (default $ZOO_WEIGHTS_DIR, "
        "else the repository's checkpoints/ for the weights and zoo/hub/shipped/ for the config and manifest)"
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace an existing entry even when the metric is not better")
    args = parser.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.checkpoint is None:
        if not args.hf_folder:
            parser.error("give a checkpoint to export, or --hf-folder DIR to write the shipped entry --name as a folder")
        try:
            folder = save_entry_folder(args.name, args.hf_folder)
        except (KeyError, FileExistsError, FileNotFoundError, ValueError) as e:
            sys.exit(f"error: {e}")
        print(f"{args.name} -> {folder}")
        return 0
    if args.config is None:
        parser.error("--config is required with a checkpoint: its data: section rebuilds the test set")
    if args.wall_time is None:
        print("warning: no --wall-time: the entry records none", file=sys.stderr)
    try:
        entry = export_checkpoint(
            args.checkpoint,
            name=args.name,
            config=args.config,
            command=args.command,
            wall_time_s=args.wall_time,
            epochs=args.epochs,
            hardware=args.hardware,
            target=args.target,
            target_reference=args.target_reference,
            notes=args.notes,
            out=args.out,
            force=args.force,
            classifier=args.classifier,
        )
        if args.hf_folder:
            metric = entry["metric"]
            averaging = (entry["weight_averaging"] or {}).get("method")
            save_folder(load_checkpoint(args.checkpoint), args.hf_folder, metrics={metric["name"]: metric["value"]}, weight_averaging=averaging, arch=entry["arch"])
    except (ExportRefused, KeyError, FileNotFoundError, FileExistsError, ValueError) as e:
        sys.exit(f"error: {e}")
    m = entry["metric"]
    print(f"{entry['name']}: {m['name']} = {m['value']} ({entry['size_bytes']:,} bytes, {entry['params']:,} params) -> {entry['file']}")
    return 0  # the console script's exit status


if __name__ == "__main__":
    sys.exit(main())
