"""Comparison 4, DQN: environment steps and seconds to solve CartPole-v1, one ``train.py fit`` per seed.

Each run is ``configs/dqn_cartpole.yaml`` with ``--seed_everything`` and the agent's ``seed`` set to the
seed. "Solved at" is the agent's ``solved_at_step`` buffer (the environment step of the first validation
whose mean return over its held-out episode seeds reached ``solved_return``), read from ``last.ckpt``;
the test return is the run's ``test/return`` (the checkpoint validation chose, on the test seeds).
Seconds: the whole process, start to exit.
"""

from __future__ import annotations

import torch

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


def run_dqn(settings: BenchSettings) -> Table:
    """Steps and seconds to solve CartPole-v1 for ``settings.dqn_seeds``; median and worst seed."""
    table = Table(
        name="dqn",
        title=f"4. DQN: steps and seconds to solve CartPole-v1 ({DQN_RECIPE})",
        columns=["seed", "solved at env step", "test return", "seconds"],
        notes=["Not solved: no validation reached the solved return within the recipe's budget (counted as the worst "
               "when taking the median). Seconds: the whole process, test episodes included."],
    )
    steps, returns, seconds = [], [], []
    for seed in settings.dqn_seeds:
        run = run_fit(
            DQN_RECIPE,
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
    table.rows.append({"seed": "median", "solved at env step": _cell(median(steps)), "test return": median(returns), "seconds": median(seconds)})
    table.rows.append({"seed": "worst", "solved at env step": _cell(max(steps)), "test return": min(returns), "seconds": max(seconds)})
    table.ratios = {"median_seconds": median(seconds), "worst_seconds": max(seconds), "median_test_return": median(returns),
                    "worst_test_return": min(returns)}  # fmt: skip
    if solved_all:
        table.ratios.update(median_steps=float(median(steps)), worst_steps=float(max(steps)))
    if settings.extra_dqn_args:
        table.notes.append(f"Extra arguments: `{' '.join(settings.extra_dqn_args)}`.")
    return table
