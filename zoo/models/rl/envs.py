"""Gymnasium plumbing for the zoo's agents: the environments they accept. Greedy play is ``zoo.serving.play``."""

from __future__ import annotations

import gymnasium as gym

__all__ = ["make_env"]


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """``gym.make(env_id)``, refused unless its actions are discrete and its observations a flat vector."""
    env = gym.make(env_id, render_mode=render_mode)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ValueError(f"DQN needs a discrete action space; {env_id} has {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise ValueError(f"DQN needs vector observations of shape (D,); {env_id} has {env.observation_space}")
    return env
