"""Comparison 3, time to accuracy: a whole ``train.py fit --config <recipe>`` process per seed and recipe.

The clock runs from launching the process to its exit, so start-up, data loading, training, validation
and the test pass (``test_after_fit``) all count. The accuracy is the run's ``test/acc`` on the real
Fashion-MNIST test set, read from its ``metrics.csv``. The test set neither picks the checkpoint nor stops
training: the recipes run a fixed number of epochs, and the checkpoint tested is the best by validation
accuracy on a split held out of the training set.
Median and worst seed are reported per recipe, and judged against the recipe's goal when it has one: the
accuracy reached within the time budget less ``SPARE`` (5%), so that a slower machine or a noisy run still fits.
"""

from __future__ import annotations

from zoo.bench.report import Table, median
from zoo.bench.runs import last_metric, run_fit
from zoo.bench.settings import BenchSettings

__all__ = ["GOALS", "SPARE", "run_accuracy"]

#: The fast recipes' goals: recipe -> (test accuracy to reach, seconds to reach it in, whole process).
GOALS: dict[str, tuple[float, float]] = {
    "configs/resnet9_fast_fashionmnist_60s.yaml": (0.91, 60.0),
    "configs/resnet9_fast_fashionmnist_5min.yaml": (0.93, 300.0),
}

#: The share of a goal's time budget that a run must leave unused to meet it.
SPARE = 0.05


def _verdict(recipe: str, acc: float, seconds: float) -> str:
    goal = GOALS.get(recipe)
    if goal is None:
        return ""
    target, budget = goal
    limit = budget * (1 - SPARE)
    misses = []
    if acc < target:
        misses.append(f"{100 * (target - acc):.2f} points short of {100 * target:.0f}%")
    if seconds > limit:
        misses.append(f"{seconds - limit:.1f} s over {limit:.0f} s ({budget:.0f} s less {100 * SPARE:.0f}% spare)")
    return f"met, {100 * (1 - seconds / budget):.0f}% spare" if not misses else "missed: " + ", ".join(misses)


def run_accuracy(settings: BenchSettings) -> Table:
    """One ``train.py fit`` per seed of ``settings.seeds`` and recipe of ``settings.recipes``; median and worst seed."""
    table = Table(
        name="accuracy",
        title="3. Time to accuracy: whole `train.py fit --config <recipe>` processes on Fashion-MNIST",
        columns=["recipe", "seed", "test acc", "seconds", "goal"],
        goal=">= 91% in <= 60 s and >= 93% in <= 5 minutes, whole process, with 5% of the time spare, for the median and "
             "the worst seed",
        notes=["Seconds: wall clock from process start to exit (start-up, data, training, validation, test pass). "
               "Test accuracy: the real Fashion-MNIST test set (10,000 images)."],  # fmt: skip
    )
    for recipe in settings.recipes:
        accs, seconds = [], []
        for seed in settings.seeds:
            run = run_fit(
                recipe,
                settings.scratch("accuracy", recipe.rsplit("/", 1)[-1].removesuffix(".yaml"), f"seed{seed}"),
                [f"--seed_everything={seed}", "--test_after_fit=true", "--trainer.enable_progress_bar=false",
                 *settings.data_args(), *settings.accelerator_args(), *settings.extra_fit_args],  # fmt: skip
            )
            acc = last_metric(run.metrics_csv(), "test/acc")
            if acc is None:
                raise RuntimeError(f"{recipe}, seed {seed}: no test/acc in {run.metrics_csv()}:\n{run.output}")
            accs.append(acc)
            seconds.append(run.seconds)
            table.rows.append({"recipe": recipe, "seed": seed, "test acc": acc, "seconds": run.seconds})
        name = recipe.rsplit("/", 1)[-1].removesuffix(".yaml")
        table.rows.append({"recipe": recipe, "seed": "median", "test acc": median(accs), "seconds": median(seconds),
                           "goal": _verdict(recipe, median(accs), median(seconds))})  # fmt: skip
        table.rows.append({"recipe": recipe, "seed": "worst", "test acc": min(accs), "seconds": max(seconds),
                           "goal": _verdict(recipe, min(accs), max(seconds))})  # fmt: skip
        table.ratios.update({f"{name}_median_acc": median(accs), f"{name}_worst_acc": min(accs),
                             f"{name}_median_seconds": median(seconds), f"{name}_worst_seconds": max(seconds)})  # fmt: skip
    if settings.extra_fit_args:
        table.notes.append(f"Extra arguments: `{' '.join(settings.extra_fit_args)}`.")
    return table
