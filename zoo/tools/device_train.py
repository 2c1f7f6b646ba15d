"""Train the full-size Fashion-MNIST recipes on one GPU within a fixed time budget, for export on the CPU afterwards.

    python -m zoo.tools.device_train --out runs/device --data-dir .carry/fashion-mnist   # on a GPU: the whole plan
    python -m zoo.tools.device_train --out /tmp/dry --dry-run                              # on a CPU: a few steps of each
    python -m zoo.tools.device_train --list                                                 # the plan and its time shares

``PLAN`` is a fixed list of runs, each ``python train.py fit --config <recipe>`` with the overrides that size it
for an H200 (bf16-mixed, channels-last, larger batches with a larger peak learning rate, ``torch.compile`` where it
pays back within the run) and a time share. The runs go one after the other; each is bounded by Lightning's
``--trainer.max_time`` (its share less the start-up and the test pass) and by what is left of ``--budget-s``, so the
whole plan ends inside the budget, compilation and start-up included. The epoch counts are sized so that the
schedule (one-cycle) finishes well before ``max_time``, which is only the safety net: a run it stops keeps its best
checkpoint, but with the learning rate not yet annealed.

Batches of 500 divide the 54,000 training, 6,000 validation and 10,000 test images: no short last batch, so a
compiled model sees one shape per mode (train, eval) and never recompiles for a remainder.

Data: the datamodules keep the uint8 images in host memory and move each batch (392 KB at 500 images) to the GPU,
where conversion, augmentation and normalization run; copying the whole set to the GPU would save a fraction of a
millisecond per step, so it is not done. ``--data-dir`` names the folder holding the IDX files (the GPU machine
has no internet: see ``zoo.tools.carry_data`` for bringing them there).

Out folder: ``<out>/<entry>/`` holds each run (logs, full checkpoints); ``<out>/<entry>.ckpt`` is the best checkpoint
without its optimizer state (what ``zoo-export`` takes, small enough to come back from the machine), and
``<out>/summary.json`` records per run the command, wall time, device, epochs, metrics and the ``zoo-export``
command that re-measures the checkpoint on the CPU. With ``--dry-run`` (CPU): fp32, no compilation, two training
steps of 32 images, one validation and one test batch, so the same commands and files are checked in a minute.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["PLAN", "BudgetError", "PlanEntry", "main", "plan_commands", "select"]

REPO = Path(__file__).resolve().parents[2]
#: Seconds of each share kept outside ``max_time``: Python and CUDA start-up, data loading, the test pass.
RESERVE_S = 25
#: Seconds a run may outlast its share before it is killed (the process ends on its own at ``max_time``).
GRACE_S = 20


@dataclass(frozen=True)
class PlanEntry:
    """One run of the plan: the shipped entry it makes, its recipe, its size on an H200 and its time share."""

    name: str  # the entry zoo-export writes: <arch>.fashionmnist
    recipe: str  # configs/<recipe>.yaml
    epochs: int
    lr: float  # the one-cycle peak for batch 500 (the recipes' 0.1 is for batch 128 or 256)
    compile: bool
    share_s: int  # wall-clock seconds on an H200, start-up and compilation included
    expected: str  # what the plan expects, and why
    target: float  # the public reference's test accuracy
    reference: str
    model_args: dict[str, Any] = field(default_factory=dict)
    data_args: dict[str, Any] = field(default_factory=dict)


BATCH = 500  # divides 54,000 / 6,000 / 10,000: one shape per mode for the compiled model
PLAN: list[PlanEntry] = [
    PlanEntry(
        name="googlenet_small.fashionmnist",
        recipe="configs/googlenet_small_fashionmnist.yaml",
        epochs=20,
        lr=0.2,
        compile=False,
        share_s=80,
        expected="~2 s/epoch eager (0.4 GFLOP per training image, many small kernels): 40 s of training; "
        "93.7-94.2% (the 20-epoch ResNet-9 recipe reached 94.46% on the CPU). Not compiled: Inductor's ~60 s for "
        "nine Inception modules would not pay back within 40 s of training.",
        target=0.937,
        reference="GoogLeNet 93.7% on Fashion-MNIST (public benchmark)",
    ),
    PlanEntry(
        name="wrn16_4.fashionmnist",
        recipe="configs/wide_resnet_fashionmnist.yaml",
        epochs=30,
        lr=0.2,
        compile=True,
        share_s=170,
        expected="~2.5 s/epoch compiled (1.8 GFLOP per training image), ~60 s of compilation: ~140 s; 95.0-95.5%, "
        "short of 95.9% (WRN-28-10 over 200 epochs). WRN-16-4, not WRN-28-10: zoo-export ships at most 20 MB per "
        "file and WRN-28-10's weights are 146 MB (WRN-16-8 44 MB, WRN-16-4 11 MB).",
        target=0.959,
        reference="WRN-28-10 95.9% on Fashion-MNIST; 96.35% with random erasing (Zhong et al. 2017)",
        model_args={"depth": 16, "widen_factor": 4, "block_dropout": 0.0, "scheduler": "onecycle"},
    ),
    PlanEntry(
        name="densenet_bc_100.fashionmnist",
        recipe="configs/densenet_bc_100_fashionmnist.yaml",
        epochs=30,
        lr=0.2,
        compile=True,
        share_s=270,
        expected="~4 s/epoch compiled (1.3 GFLOP per training image but memory-bound concatenations), ~120 s of "
        "compilation: ~250 s; 94.9-95.4%, the recipe's 30 epochs against the paper's 300.",
        target=0.954,
        reference="DenseNet-BC (768K parameters) 95.4% on Fashion-MNIST (public benchmark)",
        model_args={"channels_last": True},  # cuDNN's NHWC kernels on tensor cores (the recipe leaves it off for the CPU)
    ),
]


class BudgetError(ValueError):
    """The chosen plan does not fit the budget, or names an entry that is not in it."""


def select(only: str | None, budget_s: float) -> list[PlanEntry]:
    """The entries named in ``only`` (comma-separated, plan order kept; None: all), checked against ``budget_s``."""
    entries = PLAN
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        known = {e.name: e for e in PLAN} | {e.name.split(".")[0]: e for e in PLAN}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BudgetError(f"unknown plan entry {', '.join(map(repr, unknown))}; the plan: {', '.join(e.name for e in PLAN)}")
        chosen = {known[n].name for n in names}
        entries = [e for e in PLAN if e.name in chosen]
    needed = sum(e.share_s for e in entries)
    if needed > budget_s:
        shares = ", ".join(f"{e.name} {e.share_s} s" for e in entries)
        raise BudgetError(f"the plan needs {needed} s ({shares}) but --budget-s is {budget_s:g}; choose fewer entries with --only")
    return entries


def _max_time(seconds: float) -> str:
    seconds = max(int(seconds), 1)
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def train_args(entry: PlanEntry, *, out: Path, data_dir: str | None, dry_run: bool, max_time_s: float | None) -> list[str]:
    """The arguments after ``python train.py``: the recipe, the entry's overrides, the hardware and the out folder."""
    args = ["fit", "--config", entry.recipe]
    for key, value in {**entry.model_args, "lr": entry.lr, "compile": entry.compile and not dry_run}.items():
        args.append(f"--model.init_args.{key}={json.dumps(value) if not isinstance(value, str) else value}")
    for key, value in {**entry.data_args, "batch_size": 32 if dry_run else BATCH}.items():
        args.append(f"--data.init_args.{key}={value}")
    if data_dir:
        args += [f"--data.init_args.data_dir={data_dir}", "--data.init_args.download=false"]
    args.append(f"--trainer.default_root_dir={out / entry.name.split('.')[0]}")
    # The summary runs the model on its 2-image example input: a compiled model would compile for that shape too,
    # and then again with a dynamic batch dimension for the real batches.
    args.append("--trainer.enable_model_summary=false")
    if dry_run:  # the same commands on a CPU: fp32, two steps, one validation and one test batch
        args += ["--trainer.accelerator=cpu", "--trainer.precision=32-true", "--trainer.max_epochs=1",
                 "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1"]  # fmt: skip
    else:
        args += ["--trainer.accelerator=gpu", "--trainer.devices=1", "--trainer.precision=bf16-mixed",
                 "--trainer.benchmark=true", f"--trainer.max_epochs={entry.epochs}"]  # fmt: skip
        if max_time_s is not None:
            args.append(f"--trainer.max_time={_max_time(max_time_s)}")
    return args


def plan_commands(entries: list[PlanEntry], **kwargs: Any) -> list[str]:
    """The ``python train.py ...`` command of each entry, as a shell line (what the manifest's ``command`` records)."""
    return [shlex.join(["python", "train.py", *train_args(e, max_time_s=None, **kwargs)]) for e in entries]


def _best_checkpoint(run_dir: Path) -> Path | None:
    """The newest run's best checkpoint (the zoo CLI's ModelCheckpoint keeps one, ``epochNNN.ckpt``)."""
    found = sorted(run_dir.glob("lightning_logs/version_*/checkpoints/epoch*.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _metrics(run_dir: Path) -> dict[str, float]:
    """The last value of every metric in the newest run's metrics.csv."""
    files = sorted(run_dir.glob("lightning_logs/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    last: dict[str, float] = {}
    if files:
        with files[-1].open() as f:
            for row in csv.DictReader(f):
                last.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return last


def slim_checkpoint(src: Path, dest: Path) -> Path:
    """``src`` without its optimizer state: what ``zoo-export`` reads (weights, hyperparameters, epoch, the
    checkpoint callback's state), at a third of WRN-16-4's 33 MB. Tensors keep their device, so the export
    still sees where they were trained."""
    checkpoint = torch.load(src, weights_only=True, map_location=None if torch.cuda.is_available() else "cpu")
    checkpoint.pop("optimizer_states", None)
    tmp = dest.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(dest)
    return dest


def _device_name(dry_run: bool) -> str:
    if dry_run or not torch.cuda.is_available():
        return "CPU (dry run)"
    return torch.cuda.get_device_name(0)


def run_plan(entries: list[PlanEntry], *, out: Path, data_dir: str | None, budget_s: float, dry_run: bool) -> dict[str, Any]:
    """Run ``entries`` one after the other inside ``budget_s``; write ``<out>/summary.json`` and return it."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    device = _device_name(dry_run)
    summary: dict[str, Any] = {"device": device, "budget_s": budget_s, "dry_run": dry_run, "runs": []}
    log = (out / "train.log").open("a")
    for entry in entries:
        left = budget_s - (time.monotonic() - start)
        share = min(entry.share_s, left)
        if share < RESERVE_S + 10 and not dry_run:
            summary["runs"].append({"name": entry.name, "skipped": f"{left:.0f} s of the budget left"})
            continue
        args = train_args(entry, out=out, data_dir=data_dir, dry_run=dry_run, max_time_s=None if dry_run else share - RESERVE_S)
        command = [sys.executable, str(REPO / "train.py"), *args]
        print(f"== {entry.name}: {shlex.join(['python', 'train.py', *args])}", flush=True)
        log.write(f"== {entry.name}\n")
        log.flush()
        began = time.monotonic()
        try:
            proc = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=None if dry_run else share + GRACE_S)
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = "killed after its share"
        wall = time.monotonic() - began
        run_dir = out / entry.name.split(".")[0]
        best = _best_checkpoint(run_dir)
        record: dict[str, Any] = {"name": entry.name, "returncode": returncode, "wall_time_s": round(wall, 1), "share_s": share,
                                  "epochs_planned": 1 if dry_run else entry.epochs,
                                  "command": plan_commands([entry], out=Path("runs/device"), data_dir=None, dry_run=dry_run)[0]}  # fmt: skip
        metrics = _metrics(run_dir)
        record.update({k: metrics[k] for k in ("val/acc", "test/acc") if k in metrics})
        if "epoch" in metrics:  # the test pass logs at the trainer's epoch count: epochs finished (a max_time stop: fewer)
            record["epochs_run"] = int(metrics["epoch"])
        if best is not None:
            slim = slim_checkpoint(best, out / f"{entry.name.split('.')[0]}.ckpt")
            record["checkpoint"] = slim.name
            record["export"] = export_command(entry, slim, wall_s=wall, device=device, dry_run=dry_run)
        summary["runs"].append(record)
        print(f"   {entry.name}: exit {returncode}, {wall:.0f} s, test/acc {metrics.get('test/acc', float('nan')):.4f}", flush=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.close()
    summary["wall_time_s"] = round(time.monotonic() - start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def export_command(entry: PlanEntry, checkpoint: Path, *, wall_s: float, device: str, dry_run: bool) -> str:
    """The ``zoo-export`` line that re-measures ``checkpoint`` on the CPU and writes the entry."""
    command = plan_commands([entry], out=Path("runs/device"), data_dir=None, dry_run=dry_run)[0]
    hardware = f"GPU: {device}, bf16-mixed, channels-last{', compiled' if entry.compile else ''}" if not dry_run else "CPU (dry run)"
    return shlex.join(["zoo-export", str(checkpoint), "--name", entry.name, "--config", entry.recipe, "--command", command,
                       "--epochs", str(entry.epochs if not dry_run else 1), "--wall-time", f"{wall_s:.0f}", "--hardware", hardware,
                       "--target", str(entry.target), "--target-reference", entry.reference])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.tools.device_train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for the runs, the slim checkpoints and summary.json")
    parser.add_argument("--budget-s", type=float, default=540, help="wall-clock seconds for the whole plan (default 540: 9 minutes)")
    parser.add_argument("--only", help="comma-separated entries of the plan (default: all), e.g. wrn16_4,densenet_bc_100")
    parser.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files (default: the datamodule's lookup)")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU: a few steps of each entry, fp32, not compiled")
    parser.add_argument("--list", action="store_true", help="print the plan, its shares and expectations, and exit")
    args = parser.parse_args(argv)
    try:
        entries = select(args.only, args.budget_s)
    except BudgetError as e:
        sys.exit(f"error: {e}")
    if args.list:
        for e in entries:
            print(f"{e.name}: {e.epochs} epochs, lr {e.lr}, batch {BATCH}, {'compiled' if e.compile else 'eager'}, share {e.share_s} s\n  {e.expected}")
        print(f"total {sum(e.share_s for e in entries)} s of --budget-s {args.budget_s:g}")
        return 0
    if not args.out:
        parser.error("--out is required")
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU is visible; this plan is sized for one (bf16, compiled). "
                 "Run it where one is, or check the commands on the CPU with --dry-run.")  # fmt: skip
    if args.data_dir and not Path(args.data_dir).is_dir():
        sys.exit(f"error: --data-dir {args.data_dir} is not a folder")
    summary = run_plan(entries, out=Path(args.out), data_dir=args.data_dir, budget_s=args.budget_s, dry_run=args.dry_run)
    failed = [r["name"] for r in summary["runs"] if r.get("returncode") != 0]
    print(f"plan done in {summary['wall_time_s']:.0f} s; summary: {Path(args.out) / 'summary.json'}")
    for record in summary["runs"]:
        if "export" in record:
            print(f"  export on the CPU: {record['export']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
