"""``python -m zoo.tools.robustness ENTRY``: a shipped classifier's accuracy under FGSM and PGD, written into the
results file that docs/models/adversarial.md quotes.

    python -m zoo.tools.robustness resnet9_fast.fashionmnist_robust     # measures, then updates docs/results/robustness.json
    python -m zoo.tools.model_card                                       # renders the page's table from that file

The entry's weights are loaded with ``zoo.load_pretrained`` and attacked on the test split its manifest row
describes (``data``), with ``zoo.evaluation.attacks.FGSMRobustness``: FGSM at every budget of the table, PGD
(10 steps of 2.5 eps / 10 from a seeded random start) at ``--pgd-epsilons``, and the catastrophic-overfitting check.
The row records the weights' SHA-256: when the entry is re-exported, ``python -m zoo.tools.model_card --check``
fails until this command is run again, so the page never quotes figures of other weights.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L

from zoo.evaluation.attacks import EPSILONS, PGD_EPSILONS, FGSMRobustness
from zoo.evaluation.results_file import write_row as write_result_row
from zoo.evaluation.shipped_metrics import build_datamodule
from zoo.hub.manifest import pretrained_entry
from zoo.hub.pretrained import load_pretrained
from zoo.tools.results_tables import ROBUSTNESS_RESULTS

__all__ = ["RESULTS", "main", "measure", "write_row"]

ROOT = Path(__file__).resolve().parents[2]
#: the results file docs/models/adversarial.md's ``robustness`` block is rendered from
RESULTS = ROOT / ROBUSTNESS_RESULTS


def measure(name: str, *, epsilons: Sequence[float] = EPSILONS, pgd_epsilons: Sequence[float] = PGD_EPSILONS,
            pgd_steps: int = 10, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The results row of shipped entry ``name``: clean, FGSM and PGD accuracies on its test split.

    Args:
        name: a shipped classifier entry (``"resnet9_fast.fashionmnist_robust"``).
        epsilons: FGSM's budgets in pixel units.
        pgd_epsilons: PGD's budgets in pixel units.
        pgd_steps: PGD's steps.
        seed: seeds PGD's random starts.
    """
    entry = pretrained_entry(name)
    model = load_pretrained(name)
    callback = FGSMRobustness(epsilons=list(epsilons), pgd_epsilons=list(pgd_epsilons), pgd_steps=pgd_steps, seed=seed, num_examples=0)
    with tempfile.TemporaryDirectory() as tmp:
        callback.output = str(Path(tmp) / "robustness.png")
        trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[callback], default_root_dir=tmp)  # fmt: skip
        trainer.test(model, datamodule=build_datamodule(entry["data"]), verbose=False)
    r = callback.results
    return {
        "name": name,
        "sha256": entry["sha256"],
        "training": _training(entry),
        "test_images": r.total,
        "clean": round(r.clean, 6),
        "fgsm": {f"{e:g}": round(a, 6) for e, a in r.fgsm.items()},
        "pgd": {f"{e:g}": round(a, 6) for e, a in r.pgd.items()},
        "pgd_steps": pgd_steps,
        "suspected": [f"{e:g}" for e in r.suspected],
        "command": f"python -m zoo.tools.robustness {name}",
        "date": datetime.date.today().isoformat(),
    }


def _training(entry: dict[str, Any]) -> str:
    """How the entry was trained, from the ``AdversarialTraining`` callback of its recipe (``clean`` without one)."""
    import yaml

    config = ROOT / entry["reproduce"]["config"]
    if not config.is_file():
        return f"not known: its recipe {entry['reproduce']['config']} is not in this checkout"
    recipe = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    for cb in (recipe.get("trainer") or {}).get("callbacks") or []:
        if isinstance(cb, dict) and str(cb.get("class_path", "")).endswith("AdversarialTraining"):
            a = {"epsilon": 0.1, "ratio": 0.5, "attack": "fgsm", **(cb.get("init_args") or {})}
            return f"{a['attack']}, eps {a['epsilon']:g}, ratio {a['ratio']:g}"
    return "clean"


def write_row(row: dict[str, Any], path: str | Path = RESULTS) -> Path:
    """Put ``row`` into the results file at ``path``, replacing the entry's previous row."""
    return write_result_row(path, row, key=("name",))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.tools.robustness", description="Measure a shipped classifier under FGSM and PGD.")
    parser.add_argument("names", nargs="+", help="shipped classifier entries, e.g. resnet9_fast.fashionmnist_robust")
    parser.add_argument("--results", default=str(RESULTS), help="the results file to update (default: docs/results/robustness.json)")
    parser.add_argument("--pgd-epsilons", type=float, nargs="+", default=list(PGD_EPSILONS), help="PGD's budgets in pixel units")
    parser.add_argument("--pgd-steps", type=int, default=10, help="PGD's steps")
    args = parser.parse_args(argv)
    for name in args.names:
        row = measure(name, pgd_epsilons=args.pgd_epsilons, pgd_steps=args.pgd_steps)
        print(f"{name}: clean {row['clean']:.4f}, FGSM {row['fgsm']}, PGD-{row['pgd_steps']} {row['pgd']} -> {write_row(row, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
