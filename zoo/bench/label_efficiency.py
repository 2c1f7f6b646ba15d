"""BERT's label-efficiency curve: fine-tuned from pre-training against trained from scratch, on a share of the labels.

    python -m zoo.bench.label_efficiency --pretrained <mlm run>/checkpoints/last.ckpt \\
        --fractions 0.05,0.2,1.0 --seeds 0,1,2 --out docs/results/bert_label_efficiency.json

For every share of the classifier's training labels (``--fractions``: ``TextCorpusDataModule``'s
``train_fraction``, a stratified subset drawn with the run's seed), every seed and every peak learning rate of
``--lrs``, two ``train.py fit`` processes of the recipe (``--config``, ``configs/bert_mini_fortunes_gcide.yaml``):
one from ``--pretrained`` (its encoder; layer-wise learning-rate decay as the recipe sets it), one from scratch
(``pretrained=null``, one learning rate for every layer: ``lr_decay=1``). Both get the same budget: ``--steps``
optimizer steps, validation every tenth of them, the checkpoint with the best validation accuracy tested. The
learning rate of each (start, share) is the grid's best by validation accuracy averaged over the seeds; the
test accuracy of that rate is reported as mean and spread over the seeds. Validation and test are the whole
held-out splits whatever the share; the test split chooses nothing.

The results file (JSON) holds every run; ``python -m zoo.tools.model_card`` renders it into docs/models/text.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from zoo.bench.report import comma_floats, comma_ints
from zoo.bench.runs import last_metric, run_fit
from zoo.bench.settings import REPO
from zoo.evaluation.results_file import provenance, write_results

__all__ = ["DEFAULT_CONFIG", "best_metric", "check_curve_arguments", "choose", "fit_on_share", "main", "run_curve", "spread", "weights_source"]

DEFAULT_CONFIG = "configs/bert_mini_fortunes_gcide.yaml"
STARTS = ("pretrained", "scratch")


def best_metric(path: Path | None, key: str) -> float | None:
    """The highest value logged under ``key`` in a Lightning ``metrics.csv`` (None when never logged)."""
    if path is None or not path.is_file():
        return None
    with open(path, newline="") as f:
        values = [float(row[key]) for row in csv.DictReader(f) if row.get(key) not in (None, "")]
    return max(values) if values else None


def fit_on_share(config: str, root: Path, *, fraction: float, seed: int, lr: float, steps: int, args: list[str], label: str) -> dict[str, Any]:
    """One ``train.py fit`` of ``config`` on a share of the training labels (the datamodule's ``train_fraction``, its
    subset drawn with ``seed``): ``steps`` optimizer steps at peak learning rate ``lr``, validation every tenth of
    them, the checkpoint with the best validation accuracy tested.

    Args:
        config: the recipe.
        root: the run's folder (``--trainer.default_root_dir``).
        fraction: share of each class of the training labels.
        seed: the run's seed and its subset's.
        lr: the peak learning rate (``--model.init_args.lr``).
        steps: optimizer steps of the run, whatever the share.
        args: more ``train.py fit`` arguments (the start, a model's shape, a test's tiny limits).
        label: how the printed line and an error name the run.

    Returns:
        ``{"fraction", "seed", "lr", "val_acc" (the best validation accuracy), "test_acc", "seconds"}``.
    """
    run = run_fit(config, root, [
        f"--seed_everything={seed}", f"--model.init_args.lr={lr}",
        f"--data.init_args.train_fraction={fraction}", f"--data.init_args.train_subset_seed={seed}",
        f"--trainer.max_steps={steps}", "--trainer.max_epochs=-1", "--trainer.check_val_every_n_epoch=null",
        f"--trainer.val_check_interval={max(1, steps // 10)}", "--test_after_fit=true", "--trainer.enable_progress_bar=false",
        *args,
    ])  # fmt: skip
    val, test = best_metric(run.metrics_csv(), "val/acc"), last_metric(run.metrics_csv(), "test/acc")
    if val is None or test is None:
        raise RuntimeError(f"{label}, fraction {fraction}, seed {seed}, lr {lr}: no val/acc or test/acc in {run.metrics_csv()}:\n{run.output}")
    print(f"{label} fraction {fraction} seed {seed} lr {lr:g}: val/acc {val:.4f}, test/acc {test:.4f}, {run.seconds:.1f} s", flush=True)
    return {"fraction": fraction, "seed": seed, "lr": lr, "val_acc": val, "test_acc": test, "seconds": round(run.seconds, 1)}


def run_curve(config: str, pretrained: str, fractions: list[float], seeds: list[int], lrs: list[float], steps: int,
              workdir: Path, extra: list[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One ``train.py fit`` (``fit_on_share``) per start, share, seed and learning rate; a row each."""
    rows = []
    for fraction in fractions:
        for start in STARTS:
            init = [f"--model.init_args.pretrained={pretrained}"] if start == "pretrained" else ["--model.init_args.pretrained=null", "--trainer.callbacks.lr_decay=1.0"]
            for seed in seeds:
                for lr in lrs:
                    root = workdir / f"f{fraction}" / start / f"seed{seed}" / f"lr{lr:g}"
                    row = fit_on_share(config, root, fraction=fraction, seed=seed, lr=lr, steps=steps, args=[*init, *(extra or [])], label=start)
                    rows.append({"start": start, **row})
    return rows


def choose(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (share, start): the learning rate with the best mean validation accuracy over the seeds, and the test
    accuracy of its runs (mean, sample standard deviation, each seed's)."""
    out = []
    for fraction in sorted({r["fraction"] for r in rows}):
        for start in STARTS:
            runs = [r for r in rows if r["fraction"] == fraction and r["start"] == start]
            if not runs:
                continue
            by_lr = {lr: [r for r in runs if r["lr"] == lr] for lr in sorted({r["lr"] for r in runs})}
            lr = max(by_lr, key=lambda k: statistics.mean(r["val_acc"] for r in by_lr[k]))
            chosen = sorted(by_lr[lr], key=lambda r: r["seed"])
            tests = [r["test_acc"] for r in chosen]
            mean, std = spread(tests)
            out.append({"fraction": fraction, "start": start, "lr": lr, "val_acc_mean": statistics.mean(r["val_acc"] for r in chosen),
                        "test_acc_mean": mean, "test_acc_std": std, "test_acc": tests})  # fmt: skip
    return out


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the figures of several seeds."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def check_curve_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, config_option: str = "--config") -> None:
    """What a label-efficiency curve's options must be (both curves'): a seed at least, shares in (0, 1], positive
    learning rates and a recipe that exists (``args.config``, given as ``config_option``); ``parser.error`` otherwise."""
    if not args.seeds:
        parser.error("--seeds must name at least one seed")
    if any(not 0.0 < f <= 1.0 for f in args.fractions):
        parser.error(f"--fractions must lie in (0, 1], got {args.fractions}")
    if any(lr <= 0 for lr in args.lrs):
        parser.error(f"--lrs must be positive, got {args.lrs}")
    if not (Path(args.config).is_file() or (REPO / args.config).is_file()):
        parser.error(f"{config_option} {args.config}: no such recipe")


def weights_source(parser: argparse.ArgumentParser, option: str, value: str) -> str:
    """A ``.ckpt`` or ``.safetensors`` path made absolute (the runs start elsewhere), or a shipped entry's name;
    ``parser.error`` for a path that names no file."""
    looks_like_path = os.sep in value or value.endswith((".ckpt", ".safetensors"))
    if looks_like_path and not Path(value).is_file():
        parser.error(f"{option} {value}: no such file (a .ckpt or .safetensors path, or a shipped entry name)")
    return str(Path(value).resolve()) if looks_like_path else value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m zoo.bench.label_efficiency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", required=True, help="the MLM pre-training: a .ckpt, a .safetensors file or a shipped entry name")
    parser.add_argument("--out", required=True, help="the results file (JSON), e.g. docs/results/bert_label_efficiency.json")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"the fine-tuning recipe (default: {DEFAULT_CONFIG})")
    parser.add_argument("--fractions", type=comma_floats, default=[0.05, 0.2, 1.0], help="shares of the training labels (default: 0.05,0.2,1.0)")
    parser.add_argument("--seeds", type=comma_ints, default=[0, 1, 2], help="seeds (default: 0,1,2)")
    parser.add_argument("--lrs", type=comma_floats, default=[3e-4, 1e-3, 3e-3], help="peak learning rates tried (default: 3e-4,1e-3,3e-3)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of every run (default: 300)")
    parser.add_argument("--hardware-note", default="", help="appended to the hardware field (say, that the machine was shared)")
    parser.add_argument("--extra", default="", help="more train.py fit arguments for every run, one string (tests: a tiny model)")
    parser.add_argument("--workdir", default=None, help="keep the runs' logs here (default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    check_curve_arguments(parser, args)
    pretrained = weights_source(parser, "--pretrained", args.pretrained)

    record = provenance("python -m zoo.bench.label_efficiency " + shlex.join(argv), args.hardware_note)  # the load before the runs
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="zoo-label-efficiency-"))
    try:
        rows = run_curve(args.config, pretrained, args.fractions, args.seeds, args.lrs, args.steps, workdir, shlex.split(args.extra))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results = {
        **record,
        "config": args.config,
        "pretrained": args.pretrained,
        "steps": args.steps,
        "seeds": args.seeds,
        "lrs": args.lrs,
        "chosen": choose(rows),
        "runs": rows,
    }
    print(f"Wrote {write_results(args.out, results)}", flush=True)
    return results


if __name__ == "__main__":
    main()
