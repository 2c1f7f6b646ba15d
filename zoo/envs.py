"""Gymnasium plumbing for the zoo's agents: environments they accept, and greedy play with an optional GIF.

    >>> agent = zoo.load_checkpoint("best.ckpt")                                  # doctest: +SKIP
    >>> zoo.play(agent, episodes=5, seed=20_000, gif="cartpole.gif")              # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import gymnasium as gym

if TYPE_CHECKING:
    from zoo.dqn import DQN

__all__ = ["check_env_id", "make_env", "play"]


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


def play(
    model: DQN | str, env_id: str | None = None, episodes: int = 1, *, seed: int = 0, gif: str | None = None, fps: int = 50,
    progress: bool | None = None,
) -> list[float]:
    """Run the greedy policy of ``model`` for ``episodes`` episodes; returns their returns.

    Args:
        model: a trained ``DQN`` (e.g. ``zoo.load_checkpoint(path)``), a checkpoint path or a shipped entry name.
        env_id: environment id; the model's own by default.
        episodes: episodes to play, seeded ``seed``, ``seed + 1``, ...
        seed: seed of the first episode.
        gif: if given, render every frame (``render_mode="rgb_array"``) into this animated GIF.
        fps: frame rate of the GIF.
        progress: a bar over the episodes on standard error: True, False, or None (on a terminal only).
    """
    from PIL import Image

    from zoo.progress import progress_bar

    if isinstance(model, (str, os.PathLike)):
        from zoo.pretrained import load_trained

        model = load_trained(model)
    env = make_env(env_id or model.hparams.env_id, render_mode="rgb_array" if gif else None)
    was_training = model.training
    model.eval()
    frames, returns = [], []
    try:
        for episode in progress_bar(range(episodes), desc="play", unit="episode", progress=progress):
            obs, _ = env.reset(seed=seed + episode)
            done, total = False, 0.0
            while not done:
                if gif:
                    frames.append(Image.fromarray(env.render()))
                obs, reward, terminated, truncated, _ = env.step(model.act(obs))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
        model.train(was_training)
    if gif and frames:
        frames[0].save(gif, save_all=True, append_images=frames[1:], duration=max(1, math.floor(1000 / fps)), loop=0)
    return returns
