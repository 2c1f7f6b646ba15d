"""Comparison 3, time to accuracy: a whole ``train.py fit --config <recipe>`` process per seed.

The clock runs from launching the process to its exit, so start-up, data loading, training, validation
and the test pass (``test_after_fit``) all count. The accuracy is the run's ``test/acc`` on the real
Fashion-MNIST test set, read from its ``metrics.csv``. Median and worst seed are reported.
"""

from __future__ import annotations

from zoo.bench.report import Table, median
from zoo.bench.runs import last_metric, run_fit
from zoo.bench.settings import BenchSettings

__all__ = ["run_accuracy"]


def run_accuracy(settings: BenchSettings) -> Table:
    """One ``train.py fit`` per seed of ``settings.seeds`` with ``settings.recipe``; median and worst seed."""
    table = Table(
        name="accuracy",
        title=f"3. Time to accuracy: whole `train.py fit --config {settings.recipe}` process",
        columns=["seed", "test acc", "seconds"],
        goal=">= 91% in <= 60 s and >= 93% in <= 5 minutes (fast recipe)",
        notes=["Seconds: wall clock from process start to exit (start-up, data, training, test pass)."],
    )
    accs, seconds = [], []
    for seed in settings.seeds:
        run = run_fit(
            settings.recipe,
            settings.scratch("accuracy", f"seed{seed}"),
            [f"--seed_everything={seed}", "--test_after_fit=true", *settings.data_args(),
             *settings.accelerator_args(), *settings.extra_fit_args],  # fmt: skip
        )
        acc = last_metric(run.metrics_csv(), "test/acc")
        if acc is None:
            raise RuntimeError(f"seed {seed}: no test/acc in {run.metrics_csv()}:\n{run.output}")
        accs.append(acc)
        seconds.append(run.seconds)
        table.rows.append({"seed": seed, "test acc": acc, "seconds": run.seconds})
    table.rows.append({"seed": "median", "test acc": median(accs), "seconds": median(seconds)})
    table.rows.append({"seed": "worst", "test acc": min(accs), "seconds": max(seconds)})
    table.ratios = {"median_acc": median(accs), "worst_acc": min(accs), "median_seconds": median(seconds), "worst_seconds": max(seconds)}
    if settings.extra_fit_args:
        table.notes.append(f"Extra arguments: `{' '.join(settings.extra_fit_args)}`.")
    return table
