"""Generated result blocks: figures a page quotes, rendered from the file a command wrote.

Each function renders one block of ``zoo.tools.docs_tables.TARGETS`` from the manifest (the shipped entries,
written by ``zoo-export``); ``python -m zoo.tools.model_card --check`` fails when a page differs, so a figure
in README.md or docs/ cannot drift from the entry that it describes.

- README.md, ``quickstart-output``: the last lines the Quickstart's command prints, from ``lenet5.digits``
  (the slow suite re-runs the command and compares what it prints with this block);
- docs/guides/training.md, ``recipe-results``: each recipe's shipped result with the command that made it;
- the family pages of docs/models/, ``results``: the same rows for the family's entries;
- docs/guides/fine-tuning.md, ``finetune-strategies``: the fine-tuning strategies' table, from the results file
  ``docs/results/finetune_strategies.json`` that ``python -m zoo.bench.finetune_strategies`` writes, and
  ``finetune-one-epoch``: the shipped start against scratch after one epoch, from ``docs/results/finetune_one_epoch.json``;
- docs/models/adversarial.md, ``robustness``: accuracy under FGSM and PGD of shipped entries, from the results file
  ``python -m zoo.tools.robustness ENTRY`` writes (docs/results/robustness.json);
- docs/models/text.md, ``label-efficiency``: BERT's label-efficiency curve, from ``docs/results/bert_label_efficiency.json``
  that ``python -m zoo.bench.label_efficiency`` writes.

The self-supervised page's blocks are rendered by ``zoo.tools.self_supervised_tables``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "FINETUNE_COMMANDS",
    "FINETUNE_ONE_EPOCH_RESULTS",
    "FINETUNE_RESULTS",
    "LABEL_EFFICIENCY_RESULTS",
    "QUICKSTART_ENTRY",
    "ROBUSTNESS_RESULTS",
    "check_measured_weights",
    "format_value",
    "quickstart_lines",
    "render_finetune_strategies",
    "render_label_efficiency",
    "render_quickstart",
    "render_recipe_results",
    "render_robustness",
]

#: the shipped entry that README.md's Quickstart command reproduces
QUICKSTART_ENTRY = "lenet5.digits"

_PERCENT = ("acc", "exact_match", "class_acc", "mlm_acc", "linear_probe_acc", "knn_acc")


def format_value(name: str, value: float) -> str:
    """A metric value as a reader expects it: accuracies in percent, PSNR in dB, returns to 0.1, the rest with 4
    significant digits."""
    short = name.rsplit("/", 1)[-1]
    if short in _PERCENT:
        return f"{100 * value:.2f}%"
    if short == "psnr":
        return f"{value:.2f} dB"
    if short == "return":
        return f"{value:.1f}"
    if short in ("log_likelihood_iw", "elbo"):
        return f"{value:.1f} nats"
    return f"{value:.4g}"


def _entry(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    for e in manifest.get("weights", []):
        if e["name"] == name:
            return e
    raise KeyError(f"the manifest has no entry {name!r}, which a generated block of the docs quotes")


def quickstart_lines(entry: dict[str, Any], root_dir: str = "lightning_logs/version_0") -> list[str]:
    """The lines ``train.py fit`` prints after its test table for the run that wrote ``entry``: the best
    checkpoint by validation, and how to load, evaluate and resume it.

    Args:
        entry: the manifest row (its ``reproduce.selected_by`` and ``checkpoint_epoch`` name the checkpoint).
        root_dir: the run's folder as the command prints it.
    """
    r = entry["reproduce"]
    selected = r.get("selected_by") or {}
    best = f"{root_dir}/checkpoints/epoch{r['checkpoint_epoch'] - 1:03d}.ckpt"
    config = r["config"]
    scored = selected.get("value") is not None  # as train.py prints it, with or without the validation score
    return [
        f"Best checkpoint ({selected['monitor']}={selected['value']:.4f}): {best}" if scored else f"Best checkpoint: {best}",
        f"  load in Python: model = zoo.load_checkpoint('{best}')",
        f"  evaluate:       python train.py test --config {config} --ckpt_path {best}",
        f"  resume:         python train.py fit --config {config} --ckpt_path {root_dir}/checkpoints/last.ckpt",
    ]


def render_quickstart(manifest: dict[str, Any]) -> str:
    """The Quickstart's expected output, from the ``QUICKSTART_ENTRY`` row."""
    e = _entry(manifest, QUICKSTART_ENTRY)
    r, m = e["reproduce"], e["metric"]
    seconds = f"{r['wall_time_s']:.0f} s" if r.get("wall_time_s") is not None else "a time not recorded"
    return "\n".join(
        [
            f"The first ends like this ({r['epochs']} epochs; the training run took {seconds} on {r['hardware']}; "
            f"`{e['name']}` in the [shipped weights](docs/guides/pretrained.md) is this run):",
            "",
            "```",
            f"        {m['name']}            {m['value']}",
            *quickstart_lines(e),
            "```",
        ]
    )


def render_recipe_results(manifest: dict[str, Any], classes: tuple[str, ...] | None = None) -> str:
    """One row per shipped entry, grouped by the recipe that trained it: the test result and its command.

    Args:
        manifest: the manifest (``read_manifest``).
        classes: only the entries of these zoo classes (a family page's); None: every entry.
    """
    rows = ["| recipe | entry | epochs | test result | target | wall time | hardware | command |", "|---|---|---|---|---|---|---|---|"]
    entries = [e for e in manifest.get("weights", []) if classes is None or e["zoo_class"] in classes]
    if not entries:
        return "No weights of this family ship yet."
    entries = sorted(entries, key=lambda e: (e["reproduce"]["config"], e["name"]))
    for e in entries:
        r, m = e["reproduce"], e["metric"]
        recipe = r["config"].rsplit("/", 1)[-1].removesuffix(".yaml")
        seconds = f"{r['wall_time_s']:.0f} s" if r.get("wall_time_s") is not None else "not recorded"
        result = f"{m['name']} {format_value(m['name'], m['value'])}"
        if "elbo" in m:
            result += f" (ELBO {format_value('test/elbo', m['elbo'])})"
        if "fid" in m:  # a conditional GAN: its FID, and its weakest and strongest class
            per_class = m.get("per_class") or []
            result += f" (FID {format_value('test/fid', m['fid'])}"
            if per_class:
                worst, best = min(range(len(per_class)), key=per_class.__getitem__), max(range(len(per_class)), key=per_class.__getitem__)
                result += f"; per class {format_value(m['name'], per_class[worst])} (class {worst}) to {format_value(m['name'], per_class[best])} (class {best})"
            result += ")"
        target = e.get("target")
        goal = "—"
        if target:
            goal = f"{format_value(m['name'], target['value'])}, {'reached' if target.get('reached') else 'not reached'}"
            goal += f" ({target['reference']})" if target.get("reference") else ""
        cells = [f"`{recipe}`", f"`{e['name']}`", str(r["epochs"]), result, goal, seconds, r["hardware"], f"`{r['command']}`"]  # fmt: skip
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


#: The results file of ``python -m zoo.bench.finetune_strategies``, relative to the repository root.
FINETUNE_RESULTS = "docs/results/finetune_strategies.json"
#: The results file of the one-epoch comparison, the shipped start against scratch, relative to the repository root.
FINETUNE_ONE_EPOCH_RESULTS = "docs/results/finetune_one_epoch.json"
#: The command that writes each fine-tuning results file.
FINETUNE_COMMANDS = {
    FINETUNE_RESULTS: f"python -m zoo.bench.finetune_strategies --out {FINETUNE_RESULTS}",
    FINETUNE_ONE_EPOCH_RESULTS: f"python -m zoo.bench.finetune_strategies --only full,scratch --epochs 1 --out {FINETUNE_ONE_EPOCH_RESULTS}",
}


def _span(values: list[float]) -> str:
    """``"9-10"``, or ``"9"`` when the values round alike."""
    low, high = f"{min(values):.0f}", f"{max(values):.0f}"
    return low if low == high else f"{low}-{high}"


def render_finetune_strategies(root: Path, results_file: str = FINETUNE_RESULTS) -> str:
    """A fine-tuning strategies' table: test accuracy per seed, its mean, and seconds per run, from ``results_file``
    (one of ``FINETUNE_COMMANDS``)."""
    path = root / results_file
    if not path.is_file():
        return f"Not measured yet: `{FINETUNE_COMMANDS[results_file]}` writes the figures."
    results = json.loads(path.read_text(encoding="utf-8"))
    seeds = results["seeds"]
    rows = [f"| strategy | recipe | digits test accuracy, seeds {' / '.join(map(str, seeds))} | mean | seconds per run (whole process) |",
            "|---|---|---|---|---|"]  # fmt: skip
    for key, title in results["strategies"].items():
        runs = sorted((r for r in results["runs"] if r["strategy"] == key), key=lambda r: r["seed"])
        if not runs:
            continue
        accs = [r["test_acc"] for r in runs]
        seconds = [r["seconds"] for r in runs]
        rows.append(f"| {title} | `{runs[0]['recipe']}` | {' / '.join(f'{100 * a:.2f}%' for a in accs)} | "
                    f"{100 * sum(accs) / len(accs):.2f}% | {_span(seconds)} s |")  # fmt: skip
    v = results["versions"]
    rows.append("")
    rows.append(f"{results['epochs']} epoch{'s' * (results['epochs'] != 1)} per run. Measured {results['date']} UTC with `{results['command']}` on "
                f"{results['hardware']} (load average {results['load_average_at_start']} at start); python {v['python']}, "
                f"torch {v['torch']}, lightning {v['lightning']}.")  # fmt: skip
    return "\n".join(rows)


def check_measured_weights(rows: list[dict[str, Any]], manifest: dict[str, Any], results_file: Path, name_key: str) -> None:
    """Raise ``ValueError`` when a row of ``results_file`` measured a shipped entry (named by ``row[name_key]``) whose
    weights the manifest no longer ships (another SHA-256: re-exported, or removed): its command must run again."""
    shipped = {e["name"]: e["sha256"] for e in manifest.get("weights", [])}
    for r in rows:
        if shipped.get(r[name_key]) != r["sha256"]:
            raise ValueError(f"{results_file} measured {r[name_key]} with weights {r['sha256'][:12]}, which the manifest does not "
                             f"ship: run {r['command']}")  # fmt: skip


#: The results file of ``python -m zoo.tools.robustness``, relative to the repository root.
ROBUSTNESS_RESULTS = "docs/results/robustness.json"


def render_robustness(results_file: Path, manifest: dict[str, Any]) -> str:
    """The robustness table: one row per entry of ``results_file`` (``python -m zoo.tools.robustness`` writes it),
    with its clean accuracy, FGSM accuracy at each budget, PGD accuracy where measured, and the overfitting check.

    Args:
        results_file: the JSON results file (absent: no entry measured yet).
        manifest: the manifest; a row must have measured the weights it ships (the same SHA-256).

    Raises:
        ValueError: a row measured weights the manifest does not ship (the entry was re-exported or removed).
    """
    rows = json.loads(results_file.read_text(encoding="utf-8"))["entries"] if results_file.is_file() else []
    if not rows:
        return "No shipped entry measured yet: `python -m zoo.tools.robustness ENTRY` measures one and adds it here."
    check_measured_weights(rows, manifest, results_file, "name")
    fgsm = sorted({float(e) for r in rows for e in r["fgsm"]} - {0.0})
    pgd = sorted({float(e) for r in rows for e in r["pgd"]})
    steps = sorted({r["pgd_steps"] for r in rows})
    head = ["entry", "training", "clean", *(f"FGSM {e:g}" for e in fgsm), *(f"PGD-{'/'.join(map(str, steps))} {e:g}" for e in pgd),
            "catastrophic overfitting", "test images", "command"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(values: dict[str, float], eps: float) -> str:
        return f"{100 * values[f'{eps:g}']:.2f}%" if f"{eps:g}" in values else "—"

    for r in rows:
        suspected = ", ".join(f"suspected at {e}" for e in r["suspected"]) or "not suspected"
        cells = [f"`{r['name']}`", r["training"], f"{100 * r['clean']:.2f}%", *(cell(r["fgsm"], e) for e in fgsm),
                 *(cell(r["pgd"], e) for e in pgd), suspected, f"{r['test_images']:,}", f"`{r['command']}`"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The results file of ``python -m zoo.bench.label_efficiency``, relative to the repository root.
LABEL_EFFICIENCY_RESULTS = "docs/results/bert_label_efficiency.json"


def render_label_efficiency(root: Path) -> str:
    """BERT's label-efficiency table: per share of the labels, the test accuracy (mean ± standard deviation over the
    seeds) from pre-training and from scratch, each at the learning rate chosen on validation, and the difference."""
    path = root / LABEL_EFFICIENCY_RESULTS
    if not path.is_file():
        return f"Not measured yet: `python -m zoo.bench.label_efficiency --pretrained <mlm checkpoint> --out {LABEL_EFFICIENCY_RESULTS}` writes the figures."
    results = json.loads(path.read_text(encoding="utf-8"))
    chosen = {(c["fraction"], c["start"]): c for c in results["chosen"]}
    rows = [f"| share of the training labels | pre-trained: test accuracy (lr) | from scratch: test accuracy (lr) | difference |",
            "|---|---|---|---|"]  # fmt: skip
    for fraction in sorted({f for f, _ in chosen}):
        cells = []
        for start in ("pretrained", "scratch"):
            c = chosen.get((fraction, start))
            cells.append(f"{100 * c['test_acc_mean']:.2f}% ± {100 * c['test_acc_std']:.2f} (lr {c['lr']:g})" if c else "—")
        both = [chosen.get((fraction, s)) for s in ("pretrained", "scratch")]
        diff = f"{100 * (both[0]['test_acc_mean'] - both[1]['test_acc_mean']):+.2f} points" if all(both) else "—"
        rows.append(f"| {100 * fraction:g}% | {cells[0]} | {cells[1]} | {diff} |")
    v = results["versions"]
    rows.append("")
    rows.append(f"Mean ± standard deviation over seeds {', '.join(map(str, results['seeds']))}; {results['steps']} steps per run; "
                f"learning rate chosen among {', '.join(f'{lr:g}' for lr in results['lrs'])} by mean validation accuracy. "
                f"Recipe `{results['config']}`, pre-training `{results['pretrained']}`. Measured {results['date']} UTC with "
                f"`{results['command']}` on {results['hardware']} (load average {results['load_average_at_start']} at start); "
                f"python {v['python']}, torch {v['torch']}, lightning {v['lightning']}.")  # fmt: skip
    return "\n".join(rows)
