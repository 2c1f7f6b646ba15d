"""The benchmark suite's command line: parse the options, run the chosen comparisons, write BENCHMARKS.md.

    python -m zoo.bench                                   # every comparison, full sizes, BENCHMARKS.md
    python -m zoo.bench --only overhead,data --quick      # a harness check with tiny sizes
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from zoo.bench.data_pipeline import run_data
from zoo.bench.dqn_solve import run_dqn
from zoo.bench.inference_speed import run_inference
from zoo.bench.optimisations import run_optimisations
from zoo.bench.overhead import run_overhead
from zoo.bench.report import Table, comma_ints, machine_info, refresh, write_report
from zoo.bench.settings import BenchSettings
from zoo.bench.time_to_accuracy import run_accuracy

__all__ = ["COMPARISONS", "parse_args", "run_suite"]

#: Comparison name -> the function that runs it, in the order they are reported.
COMPARISONS: dict[str, Callable[[BenchSettings], Table]] = {
    "overhead": run_overhead,
    "data": run_data,
    "accuracy": run_accuracy,
    "dqn": run_dqn,
    "inference": run_inference,
    "optim": run_optimisations,
}


def _only(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPARISONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown comparison(s) {unknown or value!r}; choose from {', '.join(COMPARISONS)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zoo.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=_only, default=list(COMPARISONS),
                        help=f"comma-separated comparisons to run (default: all): {','.join(COMPARISONS)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the harness (not to measure)")
    parser.add_argument("--refresh", action="store_true",
                        help="measure nothing: set the figures the analysis block of --out quotes from its tables, and exit")
    parser.add_argument("--out", default="BENCHMARKS.md", help="markdown file the tables are written to (default: BENCHMARKS.md)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where models run (default: cpu)")
    parser.add_argument("--profile", action="store_true", help="run the timed sections under torch.profiler and print the top ops")
    parser.add_argument("--recipe", default=None,
                        help="comma-separated configs the accuracy comparison times (default: the two fast recipes, "
                             "configs/resnet9_fast_fashionmnist_60s.yaml,configs/resnet9_fast_fashionmnist_5min.yaml)")
    parser.add_argument("--seeds", type=comma_ints, default=None, help="the accuracy comparison's seeds (default: 0,1,2)")
    parser.add_argument("--dqn-seeds", type=comma_ints, default=None, help="the DQN comparison's seeds (default: 0,1,2,3,4)")
    parser.add_argument("--dqn-recipe", default=None,
                        help="the DQN comparison's config (default: configs/dqn_cartpole.yaml); each recipe has its own table")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's folder (default: the datamodule's own lookup)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs or passes; the median is reported (default: 3)")
    parser.add_argument("--batches", type=int, default=None, help="training batches per epoch in overhead/data (default: all)")
    parser.add_argument("--models", default=None, help="comma-separated classifiers for inference (default: every classifier)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="time torch.compile in the inference comparison (default: on; off with --quick)")
    parser.add_argument("--compile-models", default=None,
                        help="comma-separated classifiers to compile, or 'all' (default: the Fashion-MNIST recipes' networks)")
    parser.add_argument("--workdir", default=None,
                        help="keep the runs' logs and checkpoints in this folder (default: a temporary folder, removed at the end)")
    return parser


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, BenchSettings]:
    """The parsed options and the settings they make (``--quick`` starts from ``BenchSettings.quick_settings``)."""
    args = build_parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch finds no CUDA device")
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit(f"error: --repeats must be >= 1, got {args.repeats}")
    overrides = {"device": args.device, "profile": args.profile, "data_dir": args.data_dir}
    if args.workdir:
        overrides["workdir"] = Path(args.workdir)
    recipes = [r.strip() for r in args.recipe.split(",") if r.strip()] if args.recipe else None
    for key, value in (("recipes", recipes), ("seeds", args.seeds), ("dqn_seeds", args.dqn_seeds), ("dqn_recipe", args.dqn_recipe),
                       ("repeats", args.repeats), ("batches", args.batches)):  # fmt: skip
        if value is not None:
            overrides[key] = value
    if args.models:
        overrides["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.compile is not None:
        overrides["compile"] = args.compile
    if args.compile_models:
        overrides["compile_models"] = None if args.compile_models == "all" else [m.strip() for m in args.compile_models.split(",") if m.strip()]
    settings = BenchSettings.quick_settings(**overrides) if args.quick else BenchSettings(**overrides)
    return args, settings


def run_suite(argv: list[str] | None = None) -> tuple[list[Table], Path]:
    """Run the comparisons ``argv`` asks for, printing each table, and write them all to ``--out``.

    The file is rewritten after every comparison, so a long run interrupted midway keeps what it measured.
    Returns the tables and the file's path.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args, settings = parse_args(argv)
    if args.refresh:
        print(f"refreshed the analysis figures of {refresh(args.out)}", flush=True)
        return [], Path(args.out)
    command = "python -m zoo.bench" + (" " + shlex.join(argv) if argv else "")
    info = machine_info(settings.device)
    tables: list[Table] = []
    out = Path(args.out)
    made_here = settings.workdir is None  # a temporary scratch folder, removed at the end
    try:
        for name in args.only:
            print(f"== zoo.bench: {name}", flush=True)
            if settings.profile and name in ("accuracy", "dqn"):
                print(f"--profile: {name} times whole train.py processes, which torch.profiler cannot wrap from here; "
                      "profile one with py-spy (py-spy record -o profile.svg -- python train.py fit --config ...)", flush=True)
            table = COMPARISONS[name](settings)
            tables.append(table)
            print(table.markdown(), flush=True)
            write_report(out, tables, info, command)
    finally:
        if made_here and settings.workdir is not None:
            shutil.rmtree(settings.workdir, ignore_errors=True)
    print(f"Wrote {out}", flush=True)
    return tables, out
