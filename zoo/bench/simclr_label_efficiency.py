"""The labels SimCLR saves: its frozen encoder's linear probe and k-NN against the same backbone trained with the labels alone.

    python -m zoo.bench.simclr_label_efficiency --encoder <simclr .ckpt or shipped entry> \\
        --fractions 0.01,0.1,1.0 --seeds 0,1,2 --supervised-epochs 20

For every share of the training labels (``--fractions``) and every seed (``--seeds``), a class-balanced subset of
Fashion-MNIST's training split is drawn with that seed: the images ``FashionMNISTDataModule(train_fraction=,
train_subset_seed=)`` keeps (``zoo.evaluation.feature_eval.label_subset``). The validation and test splits are
never subsetted, and never trained on. Then

(a) the encoder's frozen features, extracted once: a linear probe and a k-NN vote (k = ``--k``, or fewer when the
    subset holds fewer images) fitted on the subset (``zoo.evaluation.feature_eval.score``), measured on the
    10,000 test images;
(b) the encoder's backbone (its class and the arguments that shape it, such as ResNet-9's widths and stem_pool,
    checked against the recipe before anything runs) trained from scratch with the subset's labels only: one
    ``train.py fit`` of ``--supervised-config`` per learning rate of ``--lrs``, every run the same budget of
    ``--supervised-epochs`` epochs of the whole training split's steps (a 1% run takes as many optimizer steps
    as a 100% run), validated every tenth of it on the whole validation split, its best checkpoint by validation
    accuracy tested. Each share's learning rate is the one with the best validation accuracy averaged over the
    seeds (``zoo.bench.label_efficiency.choose``); the test split chooses nothing. ``--supervised-epochs 0``
    skips (b).

The results file (``--out``, JSON) holds a row per share and seed (probe, k-NN and supervised test accuracy,
seconds), the mean and standard deviation over the seeds of each share, every supervised run, the command, the
machine and the versions; ``python -m zoo.tools.model_card`` renders it into docs/models/self-supervised.md
next to the issue's targets.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from torch import nn

import zoo
from zoo.bench.label_efficiency import check_curve_arguments, choose, fit_on_share, spread, weights_source
from zoo.bench.report import comma_floats, comma_ints
from zoo.bench.settings import REPO
from zoo.evaluation.feature_eval import describe_encoder, extract_features, load_encoder, score
from zoo.evaluation.results_file import provenance, write_results
from zoo.evaluation.shipped_metrics import build_datamodule
from zoo.tools.self_supervised_tables import SIMCLR_LABEL_EFFICIENCY_RESULTS

__all__ = ["DEFAULT_SUPERVISED_CONFIG", "architecture_args", "check_architecture", "main", "probe_rows", "summarize"]

#: The supervised recipe: the 20-minute ResNet-9 recipe, whose network configs/simclr_resnet9_fashionmnist.yaml encodes with.
DEFAULT_SUPERVISED_CONFIG = "configs/resnet9_fast_fashionmnist_20min.yaml"


def architecture_args(backbone: nn.Module) -> dict[str, Any]:
    """The arguments of the backbone's own class, as it recorded them (ResNet9: widths, stem_pool, logit_scale):
    what the supervised runs are given so that they train the same network.

    Args:
        backbone: the encoder's network (SimCLR's ``backbone``, or a classifier).
    """
    own = inspect.signature(type(backbone).__init__).parameters.values()
    return {p.name: backbone.hparams[p.name] for p in own if p.kind == p.KEYWORD_ONLY and p.name in backbone.hparams}


def _recipe(config: str) -> dict[str, Any]:
    path = Path(config) if Path(config).is_file() else REPO / config
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def check_architecture(backbone: nn.Module, config: str, arch: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless the recipe ``config``, given ``arch``, builds a network of the backbone's class with
    the same parameters and buffers, name for name and shape for shape.

    Args:
        backbone: the encoder's network.
        config: the supervised recipe.
        arch: the arguments the supervised runs override (``architecture_args``).
    """
    model = _recipe(config).get("model") or {}
    class_path = str(model.get("class_path", ""))
    cls = getattr(zoo, class_path.rsplit(".", 1)[-1], None) if class_path.startswith("zoo.") else None
    if cls is not type(backbone):
        raise ValueError(f"{config} trains a {class_path or 'model it does not name'}, the encoder's backbone is a zoo.{type(backbone).__name__}: "
                         "choose a supervised recipe of the backbone's class")  # fmt: skip
    hp = backbone.hparams
    built = cls(**{**(model.get("init_args") or {}), **arch, "in_channels": hp.in_channels, "image_size": hp.image_size, "num_classes": hp.num_classes})
    ours, theirs = ({k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (backbone, built))
    if ours != theirs:
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        raise ValueError(f"{config} with {arch} builds another network than the encoder's backbone: {', '.join(differ[:8])} differ")


def probe_rows(train_f, train_y, test_f, test_y, *, fractions: list[float], seeds: list[int], k: int, num_classes: int) -> list[dict[str, Any]]:
    """(a): per share and seed, the probe and k-NN of ``zoo.evaluation.feature_eval.score`` on frozen features
    and the seconds they took.

    Args:
        train_f: features of the training split, (N, F).
        train_y: their labels, (N,).
        test_f: features of the test split, (M, F).
        test_y: their labels, (M,).
        fractions: shares of the training labels.
        seeds: seeds of the subsets.
        k: neighbours of the k-NN vote.
        num_classes: classes of the labels.
    """
    rows = []
    for fraction in fractions:
        for seed in seeds:
            start = time.perf_counter()
            result = score(train_f, train_y, test_f, test_y, num_classes=num_classes, k=k, fraction=fraction, subset_seed=seed)
            rows.append({"fraction": fraction, "seed": seed, **result, "probe_seconds": round(time.perf_counter() - start, 1)})
            print(f"probe fraction {fraction} seed {seed}: {result['train_labels']} labels, linear probe {result['linear_probe_acc']:.4f}, "
                  f"k-NN {result['knn_acc']:.4f}", flush=True)  # fmt: skip
    return rows


def summarize(rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The probe ``rows`` with each seed's supervised run at its share's chosen learning rate added, and per share
    the mean and standard deviation over the seeds of the three accuracies, and the probe's lead over supervision.

    Args:
        rows: ``probe_rows``' rows.
        runs: ``fit_on_share``'s rows, every share, seed and learning rate (none: no supervised figures).
    """
    chosen = {c["fraction"]: c for c in choose([{"start": "scratch", **r} for r in runs])}
    out = []
    for row in rows:
        c = chosen.get(row["fraction"])
        run = next((r for r in runs if c and (r["fraction"], r["seed"], r["lr"]) == (row["fraction"], row["seed"], c["lr"])), {})
        out.append({**row, "supervised_acc": run.get("test_acc"), "supervised_val_acc": run.get("val_acc"),
                    "supervised_lr": run.get("lr"), "supervised_seconds": run.get("seconds")})  # fmt: skip
    summary = []
    for fraction in sorted({r["fraction"] for r in out}):
        share = [r for r in out if r["fraction"] == fraction]
        entry: dict[str, Any] = {"fraction": fraction, "seeds": [r["seed"] for r in share], "train_labels": [r["train_labels"] for r in share]}
        for key in ("linear_probe_acc", "knn_acc", "supervised_acc"):
            values = [r[key] for r in share if r[key] is not None]
            entry[f"{key}_mean"], entry[f"{key}_std"] = spread(values) if values else (None, None)
        entry["supervised_lr"] = chosen[fraction]["lr"] if fraction in chosen else None
        both = entry["supervised_acc_mean"] is not None
        entry["probe_minus_supervised"] = entry["linear_probe_acc_mean"] - entry["supervised_acc_mean"] if both else None
        summary.append(entry)
    return out, summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m zoo.bench.simclr_label_efficiency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", required=True, help="the SimCLR encoder: a .ckpt, a .safetensors file or a shipped entry name")
    parser.add_argument("--out", default=str(REPO / SIMCLR_LABEL_EFFICIENCY_RESULTS), help=f"the results file (default: {SIMCLR_LABEL_EFFICIENCY_RESULTS})")
    parser.add_argument("--fractions", type=comma_floats, default=[0.01, 0.1, 1.0], help="shares of the training labels (default: 0.01,0.1,1.0)")
    parser.add_argument("--seeds", type=comma_ints, default=[0, 1, 2], help="seeds of the subsets and the supervised runs (default: 0,1,2)")
    parser.add_argument("--k", type=int, default=200, help="neighbours of the k-NN vote (default: 200)")
    parser.add_argument("--supervised-config", dest="config", default=DEFAULT_SUPERVISED_CONFIG,
                        help=f"the supervised recipe, of the backbone's class (default: {DEFAULT_SUPERVISED_CONFIG})")
    parser.add_argument("--supervised-epochs", type=int, default=20,
                        help="budget of every supervised run, in epochs of the whole training split's steps (default: 20; 0: no supervised runs)")
    parser.add_argument("--lrs", type=comma_floats, default=[0.03, 0.1, 0.3], help="peak learning rates of the supervised runs (default: 0.03,0.1,0.3)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST's folder (default: the datamodule's search)")
    parser.add_argument("--hardware-note", default="", help="appended to the hardware field (say, that the machine was shared)")
    parser.add_argument("--extra", default="", help="more train.py fit arguments for every supervised run, one string (tests: a few batches)")
    parser.add_argument("--workdir", default=None, help="keep the supervised runs' logs here (default: a temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    check_curve_arguments(parser, args, "--supervised-config")
    if args.supervised_epochs < 0 or args.k < 1:
        parser.error("--supervised-epochs must be >= 0 and --k >= 1")
    encoder_source = weights_source(parser, "--encoder", args.encoder)

    record = provenance("python -m zoo.bench.simclr_label_efficiency " + shlex.join(argv), args.hardware_note)
    data = dict(_recipe(args.config).get("data") or {})
    data["init_args"] = {**(data.get("init_args") or {}), "train_fraction": 1.0, **({"data_dir": args.data_dir} if args.data_dir else {})}
    dm = build_datamodule(data)  # the recipe's split: the supervised runs and the probes draw the same subsets
    if not hasattr(dm, "train_fraction"):
        parser.error(f"{data.get('class_path')} takes no train_fraction: the supervised runs could not train on a share of its labels")
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    encoder = load_encoder(encoder_source, dm.input_shape[0], dm.input_shape[-1], dm.num_classes)
    backbone = getattr(encoder, "backbone", encoder)  # SimCLR's network, or a classifier's own
    arch = architecture_args(backbone)
    try:
        check_architecture(backbone, args.config, arch)
    except ValueError as e:
        parser.error(str(e))

    start = time.perf_counter()
    train_x, train_y = dm.train_set.tensors
    test_x, test_y = dm.test_set.tensors
    train_f = extract_features(encoder, train_x, preprocess=dm.preprocess)  # (N, F)
    test_f = extract_features(encoder, test_x, preprocess=dm.preprocess)  # (M, F)
    features_seconds = round(time.perf_counter() - start, 1)
    probes = probe_rows(train_f, train_y, test_f, test_y, fractions=args.fractions, seeds=args.seeds, k=args.k, num_classes=dm.num_classes)

    steps = args.supervised_epochs * math.ceil(len(train_y) / dm.batch_size)
    overrides = [f"--model.init_args.{key}={json.dumps(value)}" for key, value in arch.items()]
    overrides += [f"--data.init_args.data_dir={Path(args.data_dir).resolve()}"] if args.data_dir else []
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="zoo-simclr-labels-"))
    runs = []
    try:
        for fraction in args.fractions if steps else []:
            for seed in args.seeds:
                for lr in args.lrs:
                    root = workdir / f"f{fraction}" / f"seed{seed}" / f"lr{lr:g}"
                    runs.append(fit_on_share(args.config, root, fraction=fraction, seed=seed, lr=lr, steps=steps,
                                             args=[*overrides, *shlex.split(args.extra)], label="supervised"))  # fmt: skip
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    rows, summary = summarize(probes, runs)
    results = {
        **record,
        "encoder": args.encoder,
        "encoder_description": describe_encoder(encoder_source, encoder),
        "features_seconds": features_seconds,
        "k": args.k,
        "fractions": args.fractions,
        "seeds": args.seeds,
        "supervised": {"config": args.config, "epochs": args.supervised_epochs, "steps": steps, "lrs": args.lrs, "architecture": arch},
        "summary": summary,
        "rows": rows,
        "runs": runs,
    }
    print(f"Wrote {write_results(args.out, results)}", flush=True)
    return results


if __name__ == "__main__":
    main()
