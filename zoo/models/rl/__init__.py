"""Reinforcement learning: DQN, its replay buffer and environments."""

from zoo.models.rl.dqn import DQN

__all__ = ["DQN"]
