"""The generated blocks of docs/models/self-supervised.md, rendered from the results files their commands write.

- ``feature-eval``: linear-probe and k-NN accuracy of frozen encoders (random weights, trained with labels, SimCLR),
  one row per row of ``docs/results/feature_eval.json`` that ``python -m zoo.evaluation.feature_eval`` writes; an
  encoder the page compares with and nobody measured yet is a row naming the command that measures it;
- ``simclr-label-efficiency``: the labels SimCLR saves, from ``docs/results/simclr_label_efficiency.json`` that
  ``python -m zoo.bench.simclr_label_efficiency`` writes, with the issue's targets and whether they are reached.

Both are ``zoo.tools.docs_tables.TARGETS``: ``python -m zoo.tools.model_card --check`` fails when the page differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo.evaluation.feature_eval import FEATURE_EVAL_RESULTS
from zoo.tools.results_tables import check_measured_weights, format_value

__all__ = [
    "COMPARED_ENCODERS",
    "FEATURE_EVAL_RESULTS",
    "SIMCLR_LABEL_EFFICIENCY_RESULTS",
    "SIMCLR_RECIPE",
    "TARGETS",
    "render_feature_eval",
    "render_simclr_label_efficiency",
]

#: The results file of ``python -m zoo.bench.simclr_label_efficiency``, relative to the repository root.
SIMCLR_LABEL_EFFICIENCY_RESULTS = "docs/results/simclr_label_efficiency.json"
#: The SimCLR recipe whose encoder the page measures.
SIMCLR_RECIPE = "configs/simclr_resnet9_fashionmnist.yaml"
#: The encoders the page compares SimCLR with: the ResNet-20 of the first SimCLR recipe, random and trained with
#: labels, and the ResNet-9 of the SimCLR_RECIPE trained with labels (the 20-minute recipe's shipped entry).
COMPARED_ENCODERS = ("random:resnet20", "resnet20.fashionmnist", "resnet9_fast.fashionmnist")
#: The issue's targets: share of the labels -> (the target in words, the summary's figure it judges, its threshold).
TARGETS: dict[float, tuple[str, str, float]] = {
    1.0: ("linear probe ≥ 88%", "linear_probe_acc_mean", 0.88),
    0.01: ("linear probe ≥ supervised + 5 points", "probe_minus_supervised", 0.05),
}


def _reached(summary: dict[str, Any]) -> tuple[str, str]:
    """The target of a share's summary in words, and "yes", "no", "not measured" (a figure missing) or "—" (none)."""
    if summary["fraction"] not in TARGETS:
        return "—", "—"
    words, key, threshold = TARGETS[summary["fraction"]]
    value = summary.get(key)
    return words, "not measured" if value is None else ("yes" if value >= threshold - 1e-9 else "no")


FINAL = "final (`forward_features`)"


def _percent(value: float | None) -> str:
    return "—" if value is None else format_value("acc", value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _encoder(source: str, row: dict[str, Any] | None, shipped: dict[str, dict[str, Any]]) -> str:
    """How the table names an encoder: random weights of a model, a shipped entry trained with labels (with its
    accuracy as a classifier, from the manifest), or what the row recorded about a checkpoint."""
    if source.startswith("random:"):
        return f"`{source.split(':', 1)[1]}`, random weights (seed 0)"
    if source in shipped and (row is None or row.get("entry")):
        e = shipped[source]
        return f"`{e['arch']}` trained with labels (`{source}`, {format_value(e['metric']['name'], e['metric']['value'])} as a classifier)"
    args = ", ".join(f"{k}={v}" for k, v in (row or {}).get("arch_args", {}).items())
    how = {"self-supervised": "self-supervised", "labels": "trained with labels"}.get((row or {}).get("weights"), "weights")
    return f"{row['arch'] if row else source}{f' ({args})' if args else ''}, {how}: `{source}`"


def render_feature_eval(root: Path, manifest: dict[str, Any]) -> str:
    """The encoders' table: every row of the feature_eval results file, the compared encoders first, and a row
    naming the command for each compared encoder (and for SimCLR) not measured yet."""
    path = root / FEATURE_EVAL_RESULTS
    rows = json.loads(path.read_text(encoding="utf-8"))["entries"] if path.is_file() else []
    check_measured_weights([r for r in rows if r.get("entry")], manifest, path, "source")
    shipped = {e["name"]: e for e in manifest.get("weights", [])}
    order = {s: i for i, s in enumerate(COMPARED_ENCODERS)}
    rows = sorted(rows, key=lambda r: (order.get(r["source"], len(order)), r["source"], r["stage"] if r["stage"] is not None else -1,
                                       -r["train_fraction"], r["subset_seed"] or 0))  # fmt: skip
    head = ["encoder", "features", "labels read (training split)", "linear probe", "k-NN", "parameters", "command", "wall time (CPU time)", "measured"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        features = FINAL if r["stage"] is None else f"stage {r['stage']}, average-pooled"
        labels = f"{r['train_labels']:,}" + ("" if r["train_fraction"] == 1.0 else f" ({100 * r['train_fraction']:g}%, subset seed {r['subset_seed']})")
        v = r["versions"]
        cells = [_encoder(r["source"], r, shipped), features, labels, _percent(r["linear_probe_acc"]), f"{_percent(r['knn_acc'])} (k={r['k']})",
                 f"{r['params']:,}", f"`{r['command']}`", f"{r['seconds']:,.0f} s ({r['cpu_seconds']:,.0f} s)",
                 f"{r['date']} UTC; {r['hardware']} (load average {r['load_average_at_start']}); torch {v['torch']}, lightning {v['lightning']}"]  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    measured = {r["source"] for r in rows}
    for source in COMPARED_ENCODERS:
        if source not in measured:
            command = f"`python -m zoo.evaluation.feature_eval {source}`"
            lines.append(f"| {_cell(_encoder(source, None, shipped))} | {FINAL} | all | not measured | not measured | | {command} | | |")
    if not any(r.get("weights") == "self-supervised" for r in rows):
        command = f"`python train.py fit --config {SIMCLR_RECIPE}`, then `python -m zoo.evaluation.feature_eval <its checkpoint>`"
        lines.append(f"| SimCLR, `{SIMCLR_RECIPE}` | {FINAL} | all | not measured | not measured | | {command} | | |")
    return "\n".join(lines)


def _not_measured() -> str:
    """The block before the results file exists: the targets, and the commands that fill the table."""
    command = (f"python -m zoo.bench.simclr_label_efficiency --encoder <the SimCLR checkpoint> --fractions 0.01,0.1,1.0 --seeds 0,1,2 "
               f"--out {SIMCLR_LABEL_EFFICIENCY_RESULTS}")  # fmt: skip
    lines = ["| share of the training labels | linear probe | k-NN | supervised, same backbone | target | reached |", "|---|---|---|---|---|---|"]
    for fraction in (0.01, 0.1, 1.0):
        target, verdict = _reached({"fraction": fraction})
        lines.append(f"| {100 * fraction:g}% | not measured | not measured | not measured | {target} | {verdict} |")
    return "\n".join([*lines, "", f"Not measured yet: train `{SIMCLR_RECIPE}`, then `{command}` writes the figures."])


def render_simclr_label_efficiency(root: Path) -> str:
    """Per share of the labels: linear probe and k-NN of the frozen SimCLR encoder, and the same backbone trained with
    those labels alone (mean ± standard deviation over the seeds), the probe's lead, the target and whether it is reached."""
    path = root / SIMCLR_LABEL_EFFICIENCY_RESULTS
    if not path.is_file():
        return _not_measured()
    results = json.loads(path.read_text(encoding="utf-8"))
    sup = results["supervised"]
    lines = [f"| share of the training labels | labels (per seed) | linear probe | k-NN (k={results['k']}) | supervised, same backbone (lr) | "
             "probe − supervised | target | reached |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def pm(s: dict[str, Any], key: str) -> str:
        return "not run" if s[f"{key}_mean"] is None else f"{_percent(s[f'{key}_mean'])} ± {100 * s[f'{key}_std']:.2f}"

    for s in sorted(results["summary"], key=lambda s: s["fraction"]):
        supervised = pm(s, "supervised_acc") + (f" (lr {s['supervised_lr']:g})" if s["supervised_lr"] is not None else "")
        lead = "—" if s["probe_minus_supervised"] is None else f"{100 * s['probe_minus_supervised']:+.2f} points"
        target, verdict = _reached(s)
        labels = sorted(set(s["train_labels"]))
        count = f"{labels[0]:,}" if len(labels) == 1 else f"{labels[0]:,}–{labels[-1]:,}"
        lines.append(f"| {100 * s['fraction']:g}% | {count} | {pm(s, 'linear_probe_acc')} | {pm(s, 'knn_acc')} | {supervised} | {lead} | {target} | {verdict} |")
    e, v = results["encoder_description"], results["versions"]
    args = ", ".join(f"{k}={val}" for k, val in sup["architecture"].items())
    lines += ["", f"Mean ± standard deviation over seeds {', '.join(map(str, results['seeds']))} (a seed draws the subset and seeds its run). "
              f"Encoder `{results['encoder']}` ({e['arch']}, {e['params']:,} parameters; features extracted in {results['features_seconds']:,.0f} s). "
              f"Supervised: `{sup['config']}` with {args or 'its own architecture'}, from scratch on the subset, {sup['steps']:,} optimizer steps per run "
              f"at every share ({sup['epochs']} epochs of the whole training split), learning rate chosen among {', '.join(f'{lr:g}' for lr in sup['lrs'])} "
              f"by mean validation accuracy. Measured {results['date']} UTC with `{results['command']}` on {results['hardware']} (load average "
              f"{results['load_average_at_start']} at start); python {v['python']}, torch {v['torch']}, lightning {v['lightning']}."]  # fmt: skip
    return "\n".join(lines)
