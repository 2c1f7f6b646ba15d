"""Comparison 4, DQN: environment steps and seconds to solve an environment, one ``train.py fit`` per seed.

Each run is the DQN recipe (``--dqn-recipe``, default ``configs/dqn_cartpole.yaml``; another recipe writes its
own table, ``dqn_<recipe>``, so CartPole's stays) with ``--seed_everything`` and the agent's ``seed`` set to the
seed. "Solved at" is the agent's ``solved_at_step`` buffer (the environment step of the first validation
whose mean return over its held-out episode seeds reached ``solved_return``), read from ``last.ckpt``;
the test return is the run's ``test/return`` (the checkpoint validation chose, on the test seeds).
Seconds: the whole process, start to exit.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from zoo.bench.report import Table, median
from zoo.bench.runs import last_metric, run_fit
from zoo.bench.settings import BenchSettings

__all__ = ["DQN_RECIPE", "run_dqn"]

DQN_RECIPE = "configs/dqn_cartpole.yaml"


def _solved_at(run) -> int:
    path = run.checkpoint("last.ckpt")
    if path is None:
        return -1
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return int(state.get("solved_at_step", torch.tensor(-1)))


def _cell(steps: float) -> int | str:
    return "not solved" if steps == float("inf") else int(steps)


def _env_id(recipe: str) -> str:
    with open(recipe, encoding="utf-8") as f:
        return str(yaml.safe_load(f)["model"]["init_args"]["env_id"])


def run_dqn(settings: BenchSettings) -> Table:
    """Steps and seconds to solve the recipe's environment for ``settings.dqn_seeds``; median and worst seed."""
    recipe = settings.dqn_recipe
    stem = Path(recipe).stem
    table = Table(
        name="dqn" if recipe == DQN_RECIPE else f"dqn_{stem.removeprefix('dqn_')}",
        title=f"4. DQN: steps and seconds to solve {_env_id(recipe)} ({recipe})",
        columns=["seed", "solved at env step", "test return", "seconds"],
        notes=["Solved: the first validation whose mean return over its held-out episodes reached the recipe's "
               "`solved_return`. Test return: the mean over the test episodes (other seeds), with the checkpoint "
               "validation chose. Seconds: the whole process, test episodes included."],
    )
    steps, returns, seconds = [], [], []
    for seed in settings.dqn_seeds:
        run = run_fit(
            recipe,
            settings.scratch("dqn", f"seed{seed}"),
            [f"--seed_everything={seed}", f"--model.init_args.seed={seed}", "--test_after_fit=true",
             "--trainer.accelerator=cpu", *settings.extra_dqn_args],  # fmt: skip  (a small MLP and a CPU environment)
        )
        solved = _solved_at(run)
        test_return = last_metric(run.metrics_csv(), "test/return")
        if test_return is None:
            raise RuntimeError(f"seed {seed}: no test/return in {run.metrics_csv()}:\n{run.output}")
        steps.append(solved if solved >= 0 else float("inf"))
        returns.append(test_return)
        seconds.append(run.seconds)
        table.rows.append({"seed": seed, "solved at env step": _cell(steps[-1]), "test return": test_return, "seconds": run.seconds})
    solved_all = all(s != float("inf") for s in steps)
    if not solved_all:
        table.notes.append("Not solved: no validation reached the solved return within the recipe's budget (counted "
                           "as the worst when taking the median).")
    table.rows.append({"seed": "median", "solved at env step": _cell(median(steps)), "test return": median(returns), "seconds": median(seconds)})
    table.rows.append({"seed": "worst", "solved at env step": _cell(max(steps)), "test return": min(returns), "seconds": max(seconds)})
    table.ratios = {"median_seconds": median(seconds), "worst_seconds": max(seconds), "median_test_return": median(returns),
                    "worst_test_return": min(returns)}  # fmt: skip
    if solved_all:
        table.ratios.update(median_steps=float(median(steps)), worst_steps=float(max(steps)))
    if settings.extra_dqn_args:
        table.notes.append(f"Extra arguments: `{' '.join(settings.extra_dqn_args)}`.")
    return table
