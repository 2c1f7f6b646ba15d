"""Gymnasium plumbing for the zoo's agents: the environments they accept. Greedy play is ``zoo.serving.play``."""

from __future__ import annotations

import gymnasium as gym

__all__ = ["check_env_id", "make_env"]


def check_env_id(env_id: object) -> str:
    """``env_id`` if it names an environment already in gymnasium's registry; a ``ValueError`` otherwise.

    An environment id can come from a file (a checkpoint's or a config's hyperparameters), and gymnasium reads
    ``"some.module:Env-v0"`` as "import ``some.module``, then look the environment up": that would let a file
    choose code to import. So an id is accepted only when it holds no ``:`` and is registered already. To use an
    environment from another package, import that package in your own code first (importing it registers its
    ids), then pass the plain id.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id must be a gymnasium environment id such as 'CartPole-v1', got {env_id!r}")
    if ":" in env_id:
        raise ValueError(
            f"env_id {env_id!r} is refused: an id with ':' makes gymnasium import the module before it. Import the "
            f"package that registers the environment in your own code, then pass its plain id (e.g. 'CartPole-v1')"
        )
    if env_id not in gym.registry:
        raise ValueError(
            f"env_id {env_id!r} is not a registered gymnasium environment. If a package of yours provides it, "
            f"import that package first (importing it registers the id); registered ids include "
            f"{', '.join(sorted(k for k in gym.registry if k.startswith(('CartPole', 'Acrobot', 'MountainCar', 'LunarLander'))))}"
        )
    return env_id


def make_env(env_id: str, render_mode: str | None = None) -> gym.Env:
    """``gym.make(env_id)`` for an id that ``check_env_id`` accepts, refused unless its actions are discrete
    and its observations a flat vector."""
    env = gym.make(check_env_id(env_id), render_mode=render_mode)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ValueError(f"DQN needs a discrete action space; {env_id} has {env.action_space}")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise ValueError(f"DQN needs vector observations of shape (D,); {env_id} has {env.observation_space}")
    return env
