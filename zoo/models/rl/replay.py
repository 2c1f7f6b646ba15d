"""Plumbing for off-policy RL: a replay buffer whose state lives in module buffers.

The buffer is an ``nn.Module`` holding its transitions in persistent buffers, so it follows the model
to its device and is saved in (and restored from) every checkpoint: a resumed run keeps its experience.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ReplayBuffer"]


class ReplayBuffer(nn.Module):
    """A ring buffer of ``capacity`` transitions (obs, action, reward, next_obs, done).

    Args:
        capacity: transitions kept; the oldest is overwritten once full.
        obs_dim: length of an observation vector.
    """

    def __init__(self, capacity: int, obs_dim: int) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.register_buffer("obs", torch.zeros(capacity, obs_dim))  # (N, D)
        self.register_buffer("actions", torch.zeros(capacity, dtype=torch.long))  # (N,)
        self.register_buffer("rewards", torch.zeros(capacity))  # (N,)
        self.register_buffer("next_obs", torch.zeros(capacity, obs_dim))  # (N, D)
        self.register_buffer("dones", torch.zeros(capacity))  # (N,) 1.0 where the episode terminated
        self.register_buffer("position", torch.zeros((), dtype=torch.long))  # next slot to write
        self.register_buffer("size", torch.zeros((), dtype=torch.long))  # filled slots

    def __len__(self) -> int:
        return int(self.size)

    def push(self, obs: Tensor, action: int, reward: float, next_obs: Tensor, done: bool) -> None:
        i = int(self.position)
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.dones[i] = float(done)
        self.position.fill_((i + 1) % self.capacity)
        self.size.fill_(min(int(self.size) + 1, self.capacity))

    def sample(self, batch_size: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``batch_size`` transitions drawn uniformly with replacement: (B, D), (B,), (B,), (B, D), (B,)."""
        if len(self) == 0:
            raise RuntimeError("the replay buffer is empty: fill it before sampling")
        idx = torch.randint(0, len(self), (batch_size,), device=self.obs.device)
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.dones[idx]
