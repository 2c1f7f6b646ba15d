"""Greedy play of a trained agent, with an optional GIF.

    >>> agent = zoo.load_checkpoint("best.ckpt")                                  # doctest: +SKIP
    >>> zoo.play(agent, episodes=5, seed=20_000, gif="cartpole.gif")              # doctest: +SKIP
    >>> zoo.play("dqn.cartpole", episodes=2)                                      # a shipped entry
"""

from __future__ import annotations

import math

from PIL import Image

from zoo.hub.pretrained import load_trained
from zoo.models.rl.dqn import DQN
from zoo.models.rl.envs import make_env
from zoo.viz.progress import progress_bar

__all__ = ["play"]


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
