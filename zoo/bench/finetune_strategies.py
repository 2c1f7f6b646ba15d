"""Fine-tuning strategies compared: ResNet-20 from the shipped ``resnet20.fashionmnist`` to scikit-learn's digits.

    python -m zoo.bench.finetune_strategies --out docs/results/finetune_strategies.json
    python -m zoo.bench.finetune_strategies --only linear_probe --seeds 0 --out /tmp/probe.json

One whole ``train.py fit`` process per strategy and seed, each for the same number of epochs (``--epochs``,
4 by default) with the same optimizer, batch size and one-cycle schedule (AdamW, batch 64): the strategies
differ by their callback (``zoo.training.finetuning``) and by the peak learning rate of the head their recipe
chooses (a head trained alone takes a larger one). The clock runs from launching the process to its exit
(start-up, data, training, validation, the test pass). The accuracy is ``test/acc`` on the digits' test
split, which neither picks the checkpoint (the best by validation accuracy on a split held out of the
training images is tested) nor stops training. From scratch is the reference row.

The results file (JSON) holds every run, the command and the machine; ``python -m zoo.tools.model_card``
renders it into docs/guides/fine-tuning.md, and ``--check`` fails when the page disagrees with it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from zoo.bench.report import comma_ints
from zoo.bench.runs import last_metric, run_fit
from zoo.evaluation.results_file import provenance, write_results

__all__ = ["STRATEGIES", "main", "run_strategies"]

#: Strategy key -> (what the table calls it, its recipe, extra ``train.py fit`` arguments).
STRATEGIES: dict[str, tuple[str, str, list[str]]] = {
    "full": ("full fine-tune, every layer at lr 2e-3", "configs/resnet20_digits_finetune.yaml", []),
    "linear_probe": ("linear probe (`LinearProbe`), head at lr 0.1", "configs/resnet20_digits_linear_probe.yaml", []),
    "freeze_unfreeze": ("freeze, unfreeze at epoch 2 (`FreezeUnfreeze`): head at lr 0.02, backbone at 0.1x", "configs/resnet20_digits_freeze_unfreeze.yaml", []),
    "discriminative_lr": ("discriminative lr (`DiscriminativeLR`): head at lr 2e-3, x0.5 per stage below", "configs/resnet20_digits_discriminative_lr.yaml", []),
    "scratch": ("from scratch (reference), lr 2e-3", "configs/resnet20_digits_finetune.yaml", ["--model.init_args.pretrained=null"]),
}


def run_strategies(strategies: list[str], seeds: list[int], epochs: int, workdir: Path, extra: list[str] | None = None) -> list[dict[str, Any]]:
    """One ``train.py fit`` per strategy and seed; a row (strategy, recipe, seed, test_acc, seconds) each."""
    rows = []
    for key in strategies:
        _, recipe, args = STRATEGIES[key]
        for seed in seeds:
            run = run_fit(recipe, workdir / key / f"seed{seed}",
                          [*args, f"--seed_everything={seed}", f"--trainer.max_epochs={epochs}", "--test_after_fit=true",
                           "--trainer.enable_progress_bar=false", *(extra or [])])  # fmt: skip
            acc = last_metric(run.metrics_csv(), "test/acc")
            if acc is None:
                raise RuntimeError(f"{key}, seed {seed}: no test/acc in {run.metrics_csv()}:\n{run.output}")
            rows.append({"strategy": key, "recipe": recipe, "seed": seed, "test_acc": acc, "seconds": round(run.seconds, 1)})
            print(f"{key} seed {seed}: test/acc {acc:.4f}, {run.seconds:.1f} s", flush=True)
    return rows


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown strategies {unknown or value!r}; choose from {', '.join(STRATEGIES)}")
    return names


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m zoo.bench.finetune_strategies", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the results file (JSON) to write, e.g. docs/results/finetune_strategies.json")
    parser.add_argument("--only", type=_names, default=list(STRATEGIES), help=f"comma-separated strategies (default: all): {','.join(STRATEGIES)}")
    parser.add_argument("--seeds", type=comma_ints, default=[0, 1, 2], help="seeds (default: 0,1,2)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of every run (default: 4)")
    parser.add_argument("--hardware-note", default="", help="appended to the hardware field (say, that the machine was shared)")
    parser.add_argument("--extra", default="", help="more train.py fit arguments for every run, one string (tests: a few batches)")
    parser.add_argument("--workdir", default=None, help="keep the runs' logs here (default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or not args.seeds:
        parser.error("--epochs must be >= 1 and --seeds name at least one seed")

    record = provenance("python -m zoo.bench.finetune_strategies " + shlex.join(argv), args.hardware_note)  # the load before the runs
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="zoo-finetune-"))
    try:
        rows = run_strategies(args.only, args.seeds, args.epochs, workdir, shlex.split(args.extra))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results = {
        **record,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "strategies": {key: STRATEGIES[key][0] for key in args.only},
        "runs": rows,
    }
    print(f"Wrote {write_results(args.out, results)}", flush=True)
    return results


if __name__ == "__main__":
    main()
