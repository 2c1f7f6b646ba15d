"""What the DQN plays outside its learning loop, and the loaders that feed that loop.

``greedy_returns`` plays seeded greedy episodes in lockstep (one batched Q-value call per step);
``rounds_loader`` and ``seeds_loader`` are the plumbing that lets the Lightning loop drive the agent: one
item per training round, and one batch of evaluation seeds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from zoo.viz.progress import progress_bar

__all__ = ["greedy_returns", "rounds_loader", "seeds_loader"]


@torch.no_grad()
def greedy_returns(q_net: nn.Module, envs: list[gym.Env], seeds: list[int], *, device: torch.device, progress: bool | None = None) -> Tensor:
    """Returns (N,) of greedy episodes, one per seed (``envs[i]`` reset with ``seeds[i]``), stepped in lockstep.
    ``progress``: a bar of finished episodes on standard error (None: on a terminal only; ``zoo.progress``)."""
    obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)]).astype(np.float32)  # (N, D)
    returns = np.zeros(len(seeds))
    active = np.ones(len(seeds), dtype=bool)
    bar = progress_bar(total=len(seeds), desc="DQN evaluation", unit="episode", progress=progress)
    while active.any():
        idx = np.flatnonzero(active)
        actions = q_net(torch.as_tensor(obs[idx], device=device)).argmax(dim=1).tolist()  # (n,)
        for i, action in zip(idx, actions):
            obs[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += reward
            active[i] = not (terminated or truncated)
        bar.update(int(len(idx) - active[idx].sum()))  # episodes that ended this step
    bar.close()
    return torch.as_tensor(returns, dtype=torch.float32)


class _RoundsLoader(DataLoader):
    """Plumbing: the training loader, one item per round. A resumed epoch needs no position from it (a round's
    data come from the replay buffer, and Lightning counts the rounds), so its state is empty; having one tells
    Lightning that a mid-epoch resume is sound."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


def rounds_loader(rounds: int) -> DataLoader:
    """The training loader: one item per round; the round samples its own minibatches from the replay buffer,
    after acting. A private generator: iterating the loader draws nothing from the global RNG that exploration
    and replay sampling use, so a resumed run draws the same numbers as an uninterrupted one."""
    return _RoundsLoader(range(rounds), batch_size=None, generator=torch.Generator())


def seeds_loader(first_seed: int, episodes: int) -> DataLoader:
    """One batch holding the seeds ``first_seed, first_seed + 1, ...`` of ``episodes`` evaluation episodes."""
    seeds = torch.arange(episodes) + first_seed  # one batch: every episode
    return DataLoader([seeds], batch_size=None, generator=torch.Generator())  # leaves the global RNG alone
