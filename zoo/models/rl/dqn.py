"""Deep Q-Network (Mnih et al., 2015) with the Double-DQN (van Hasselt et al., 2016) and Dueling
(Wang et al., 2016) options, for discrete-action, vector-observation gymnasium environments.

The algorithm reads top to bottom in ``training_step`` (CleanRL's ``dqn.py`` order): act epsilon-greedily
for ``train_frequency`` environment steps and store the transitions, then ``gradient_steps`` times: sample
a replay minibatch, compute the ``td_target`` with the ``target_net``, take a gradient step on the TD
loss, sync the ``target_net`` every ``target_update_interval`` gradient steps. The Lightning loop drives
it (one training step per round), so devices, logging and checkpointing are Lightning's.

The agent lives here; its parts beside it: the Q-network (``zoo.models.rl.qnetwork``), the replay buffer
(``zoo.models.rl.replay``), the environments (``zoo.models.rl.envs``), and the episodes played for evaluation
with the loaders that feed the Lightning loop (``zoo.models.rl.episodes``).

Evaluation is the greedy policy over ``eval_episodes`` seeded episodes. Validation (which picks the
checkpoint and stops training once solved) plays the seeds ``eval_seed, eval_seed + 1, ...``; test and
predict play the held-out seeds ``test_seed, test_seed + 1, ...``, so the reported return is measured on
episodes that played no part in choosing the checkpoint.

    >>> model = zoo.create_model("dqn", env_id="CartPole-v1")       # doctest: +SKIP
    >>> L.Trainer(max_steps=50_000).fit(model)                      # doctest: +SKIP
    >>> zoo.play(model, episodes=3, gif="cartpole.gif")             # doctest: +SKIP
"""

from __future__ import annotations

import logging

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from zoo.core.base import ZooModule
from zoo.core.registry import register_model
from zoo.models.rl.envs import make_env
from zoo.models.rl.episodes import greedy_returns, rounds_loader, seeds_loader
from zoo.models.rl.qnetwork import QNetwork
from zoo.models.rl.replay import ReplayBuffer
from zoo.viz.figures import figure_to_image, save_or_log_image, should_draw
from zoo.viz.plots import return_curve_figure
from zoo.viz.progress import loop_progress

__all__ = ["DQN", "QNetwork"]

log = logging.getLogger(__name__)


@register_model("dqn")
class DQN(ZooModule):
    """DQN agent: Q-network, replay buffer, epsilon-greedy exploration, target network, TD loss.

    ``forward(obs)`` maps observations (B, D) to action values (B, A). Training state that a resumed run
    needs (the replay buffer, epsilon, the environment step and episode counters, the target network)
    lives in buffers and submodules, so ``fit --ckpt_path last.ckpt`` continues where it stopped.

    Args:
        env_id: gymnasium environment id with discrete actions and vector observations.
        hidden_sizes: widths of the Q-network's hidden layers.
        activation: hidden-layer nonlinearity: "relu", "tanh", "gelu", ...
        dueling: split the head into a state value and action advantages (Dueling DQN).
        double_dqn: choose the next action with the online network and value it with the target network.
        gamma: discount factor.
        batch_size: transitions per gradient step.
        buffer_size: replay buffer capacity.
        learning_starts: random-policy transitions put in the buffer before the first gradient step.
        train_frequency: environment steps collected in each round, before its gradient steps.
        gradient_steps: gradient steps in each round, each on a fresh replay minibatch.
        steps_per_epoch: environment steps between two evaluations (a multiple of ``train_frequency``).
        epsilon_start: exploration rate at the first step.
        epsilon_end: exploration rate after the decay.
        epsilon_decay_steps: environment steps over which epsilon falls linearly from start to end.
        target_update_interval: gradient steps between two target-network updates.
        tau: weight of the online network in each target update: 1.0 is a hard copy, < 1 Polyak averaging.
        loss: TD loss, "huber" (smooth L1) or "mse".
        max_grad_norm: clip the gradient's global norm to this (0 disables).
        eval_episodes: greedy episodes per evaluation.
        eval_seed: seed of the first validation episode (``eval_seed + i`` for the i-th); validation picks
            the checkpoint and stops training.
        test_seed: seed of the first test / predict episode: held-out episodes, disjoint from validation's.
        solved_return: stop training once the validation's mean return reaches this (None: never).
            475 is CartPole-v1's threshold, meant over 100 episodes.
        seed: seed of the training environment's resets (``seed + i`` for the i-th episode; under DDP,
            ``seed + 1_000_000 * rank + i`` on each rank).
        **kwargs: ``ZooModule``'s optimizer arguments; ``scheduler`` must stay "none": the agent steps its optimizer itself.
    """

    monitor = "val/return"
    monitor_mode = "max"
    # Restored by a resume; a fine-tuned agent (pretrained=) starts with an empty buffer and epsilon_start.
    training_state = ("replay.", "env_steps", "episodes", "epsilon", "gradient_updates", "solved_at_step")
    # Under DDP each rank collects its own experience (its own environment seeds) into its own replay buffer;
    # only the gradients are averaged. DDP's default would copy rank 0's buffers over the others' every step.
    ddp_options = {"broadcast_buffers": False}

    def __init__(
        self,
        *,
        env_id: str = "CartPole-v1",
        hidden_sizes: list[int] = [128, 128],  # noqa: B006  (a primitive default, never mutated)
        activation: str = "relu",
        dueling: bool = False,
        double_dqn: bool = True,
        gamma: float = 0.99,
        batch_size: int = 64,
        buffer_size: int = 50_000,
        learning_starts: int = 1_000,
        train_frequency: int = 1,
        gradient_steps: int = 1,
        steps_per_epoch: int = 1_000,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_decay_steps: int = 10_000,
        target_update_interval: int = 500,
        tau: float = 1.0,
        loss: str = "huber",
        max_grad_norm: float = 10.0,
        eval_episodes: int = 100,
        eval_seed: int = 10_000,
        test_seed: int = 20_000,
        solved_return: float | None = 475.0,
        seed: int = 0,
        **kwargs,
    ) -> None:
        kwargs.setdefault("optimizer", "adam")
        super().__init__(**kwargs)
        if self.hparams.scheduler != "none":
            raise ValueError("DQN steps its optimizer itself: scheduler must be 'none'")
        if loss not in ("huber", "mse"):
            raise ValueError(f"loss must be 'huber' or 'mse', got {loss!r}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch), ("eval_episodes", eval_episodes),
                            ("target_update_interval", target_update_interval), ("epsilon_decay_steps", epsilon_decay_steps),
                            ("train_frequency", train_frequency), ("gradient_steps", gradient_steps)):  # fmt: skip
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if steps_per_epoch % train_frequency:
            raise ValueError(f"steps_per_epoch ({steps_per_epoch}) must be a multiple of train_frequency ({train_frequency})")
        if abs(test_seed - eval_seed) < eval_episodes:
            raise ValueError(
                f"test episodes (seeds {test_seed}..{test_seed + eval_episodes - 1}) overlap the validation episodes "
                f"(seeds {eval_seed}..{eval_seed + eval_episodes - 1}): the reported return must come from held-out "
                "episodes; set test_seed at least eval_episodes away from eval_seed"
            )
        self.automatic_optimization = False
        env = make_env(env_id)
        self.obs_dim = env.observation_space.shape[0]
        self.num_actions = int(env.action_space.n)
        env.close()

        self.q_net = QNetwork(self.obs_dim, self.num_actions, list(hidden_sizes), activation, dueling)
        self.target_net = QNetwork(self.obs_dim, self.num_actions, list(hidden_sizes), activation, dueling)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self.replay = ReplayBuffer(buffer_size, self.obs_dim)
        # Counters that a resume restores (buffers are in the checkpoint's state_dict).
        self.register_buffer("env_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("episodes", torch.zeros((), dtype=torch.long))
        self.register_buffer("epsilon", torch.tensor(float(epsilon_start)))
        self.register_buffer("gradient_updates", torch.zeros((), dtype=torch.long))  # counts target_update_interval
        self.register_buffer("solved_at_step", torch.tensor(-1, dtype=torch.long))  # env step of the first solved evaluation
        # Plumbing: live environments are not state (an episode in flight cannot be checkpointed).
        self._env: gym.Env | None = None
        self._obs: np.ndarray | None = None
        self._episode_return = 0.0
        self._episode_actions: list[int] = []  # since the episode's seeded reset: a resume replays them (see on_train_start)
        self._resume_actions: list[int] | None = None
        self._eval_envs: list[gym.Env] = []

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.obs_dim,)

    def forward(self, obs: Tensor) -> Tensor:
        """(B, D) float observations -> (B, A) action values."""
        return self.q_net(self.check_input(obs))

    # -- acting -------------------------------------------------------------------------------------
    def epsilon_at(self, step: int) -> float:
        """Linear decay from ``epsilon_start`` to ``epsilon_end`` over ``epsilon_decay_steps`` env steps."""
        hp = self.hparams
        fraction = min(1.0, step / hp.epsilon_decay_steps)
        return hp.epsilon_start + fraction * (hp.epsilon_end - hp.epsilon_start)

    @torch.no_grad()
    def act(self, obs: np.ndarray, epsilon: float = 0.0) -> int:
        """Epsilon-greedy action for one observation (D,)."""
        if epsilon > 0 and torch.rand(()).item() < epsilon:
            return int(torch.randint(self.num_actions, ()).item())
        q_values = self.q_net(torch.as_tensor(obs, dtype=torch.float32, device=self.device)[None])  # (1, A)
        return int(q_values.argmax(dim=1).item())

    def _reset_env(self) -> None:
        # A new seed per episode; the episode counter makes a resumed run continue the sequence. Each DDP rank
        # plays its own episodes: rank r's seeds start at seed + r * 1,000,000 (rank 0: seed, as on one device).
        rank = self.trainer.global_rank if self._trainer is not None else 0
        self._obs, _ = self._env.reset(seed=self.hparams.seed + 1_000_000 * rank + int(self.episodes))
        self._episode_return = 0.0
        self._episode_actions = []

    def _replay_episode(self, actions: list[int]) -> None:
        """Step the freshly reset environment through ``actions``: the episode a checkpoint interrupted, in the
        state it had (gymnasium environments are deterministic given the reset seed and the actions)."""
        for action in actions:
            self._obs, reward, _, _, _ = self._env.step(action)
            self._episode_return += float(reward)
            self._episode_actions.append(action)

    def play_step(self, epsilon: float) -> float | None:
        """One environment step; the transition goes to the replay buffer. Returns the episode's return when it ended."""
        action = self.act(self._obs, epsilon)
        self._episode_actions.append(action)
        next_obs, reward, terminated, truncated, _ = self._env.step(action)
        # Only termination stops bootstrapping; a time-limit truncation is not a terminal state.
        self.replay.push(
            torch.as_tensor(self._obs, dtype=torch.float32), action, float(reward),
            torch.as_tensor(next_obs, dtype=torch.float32), bool(terminated),
        )  # fmt: skip
        self.env_steps += 1
        self._obs = next_obs
        self._episode_return += float(reward)
        if terminated or truncated:
            finished = self._episode_return
            self.episodes += 1
            self._reset_env()
            return finished
        return None

    def on_fit_start(self) -> None:
        # A 2-layer MLP on 64 samples is far too small for intra-op threads: on CPU they only add
        # synchronisation (10-50x slower steps on a busy machine). Restored in on_fit_end.
        self._torch_threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        self._train_returns: list[tuple[int, float]] = []  # (env step, return): the return curve, a figure only
        self._val_returns: list[tuple[int, float]] = []

    def on_train_start(self) -> None:
        if self._env is None:
            self._env = make_env(self.hparams.env_id)
            self._reset_env()
            self._replay_episode(self._resume_actions or [])  # a resumed run continues the interrupted episode
            self._resume_actions = None
        # Warm-up with the random policy; a resumed run finds its buffer already filled.
        while len(self.replay) < min(self.hparams.learning_starts, self.replay.capacity) or len(self.replay) == 0:
            self.play_step(epsilon=1.0)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        # Plumbing: a live environment cannot be saved, but the actions since its seeded reset rebuild it.
        checkpoint["dqn_episode_actions"] = list(self._episode_actions)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._resume_actions = list(checkpoint.get("dqn_episode_actions", []))

    def on_train_end(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    # -- learning -----------------------------------------------------------------------------------
    def training_step(self, batch: int, batch_idx: int) -> Tensor:
        hp = self.hparams
        # 1. act epsilon-greedily in the environment for train_frequency steps, storing the transitions
        episode_returns = []
        for _ in range(hp.train_frequency):
            self.epsilon.fill_(self.epsilon_at(int(self.env_steps)))
            episode_return = self.play_step(float(self.epsilon))
            if episode_return is not None:
                episode_returns.append(episode_return)
                self._train_returns.append((int(self.env_steps), episode_return))  # plumbing: the return curve

        opt = self.optimizers()
        for _ in range(hp.gradient_steps):
            # 2. TD target from a replay minibatch: r + gamma * Q_target(s', a') unless s' is terminal
            obs, actions, rewards, next_obs, dones = self.replay.sample(hp.batch_size)  # (B, D), (B,), (B,), (B, D), (B,)
            td_target = self.td_target(rewards, next_obs, dones)  # (B,)
            q_taken = self.q_net(obs).gather(1, actions[:, None]).squeeze(1)  # (B,)
            loss = F.smooth_l1_loss(q_taken, td_target) if hp.loss == "huber" else F.mse_loss(q_taken, td_target)

            # 3. one gradient step
            opt.zero_grad()
            self.manual_backward(loss)
            if hp.max_grad_norm > 0:
                self.clip_gradients(opt, gradient_clip_val=hp.max_grad_norm, gradient_clip_algorithm="norm")
            opt.step()
            self.gradient_updates += 1

            # 4. target network: hard copy (tau = 1) or Polyak average every target_update_interval gradient steps
            if int(self.gradient_updates) % hp.target_update_interval == 0:
                with torch.no_grad():
                    for target, online in zip(self.target_net.parameters(), self.q_net.parameters()):
                        target.lerp_(online, hp.tau)

        # Plumbing: logging (sparse, a self.log call costs as much as a small gradient step).
        for episode_return in episode_returns:
            self.log("train/episode_return", episode_return, on_step=True, on_epoch=False, prog_bar=True)
            self.log("train/epsilon", self.epsilon, on_step=True, on_epoch=False)
            self.log("train/env_steps", self.env_steps.float(), on_step=True, on_epoch=False)
        if batch_idx % max(1, 100 // hp.gradient_steps) == 0:
            self.log("train/loss", loss.detach(), on_step=True, on_epoch=False)
            self.log("train/q", q_taken.detach().mean(), on_step=True, on_epoch=False)
        return loss.detach()

    @torch.no_grad()
    def td_target(self, rewards: Tensor, next_obs: Tensor, dones: Tensor) -> Tensor:
        """``r + gamma * Q_target(s', a')``, with no bootstrap where the episode terminated (``dones`` = 1).

        A time-limit truncation is stored with ``dones`` = 0 (see ``play_step``), so it bootstraps. Double
        DQN picks ``a'`` with the online network and values it with the target network; plain DQN takes
        the target network's max. Shapes: (B,), (B, D), (B,) -> (B,).
        """
        target_q = self.target_net(next_obs)  # (B, A)
        if self.hparams.double_dqn:
            next_actions = self.q_net(next_obs).argmax(dim=1, keepdim=True)  # (B, 1) chosen online
            next_q = target_q.gather(1, next_actions).squeeze(1)  # (B,) valued by the target
        else:
            next_q = target_q.max(dim=1).values  # (B,)
        return rewards + self.hparams.gamma * next_q * (1.0 - dones)

    def train_dataloader(self) -> DataLoader:
        # One item per round: the round samples its own minibatches from the replay buffer, after acting.
        return rounds_loader(self.hparams.steps_per_epoch // self.hparams.train_frequency)

    # -- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, seeds: list[int], progress: bool | None = None) -> Tensor:
        """Returns (N,) of greedy episodes, one per seed, all stepped in lockstep with batched Q-values.
        ``progress``: a bar of finished episodes on standard error (None: on a terminal only; ``zoo.progress``)."""
        while len(self._eval_envs) < len(seeds):
            self._eval_envs.append(make_env(self.hparams.env_id))
        return greedy_returns(self.q_net, self._eval_envs[: len(seeds)], seeds, device=self.device, progress=progress)

    def val_dataloader(self) -> DataLoader:
        return seeds_loader(self.hparams.eval_seed, self.hparams.eval_episodes)

    def test_dataloader(self) -> DataLoader:
        return seeds_loader(self.hparams.test_seed, self.hparams.eval_episodes)  # held out: never chose a checkpoint

    def predict_dataloader(self) -> DataLoader:
        return seeds_loader(self.hparams.test_seed, self.hparams.eval_episodes)

    def _eval_step(self, seeds: Tensor, stage: str) -> Tensor:

        returns = self.evaluate(seeds.tolist(), progress=loop_progress(None, self.trainer))
        self.log(f"{stage}/return", returns.mean(), prog_bar=True, batch_size=len(returns), sync_dist=True)
        self.log(f"{stage}/return_std", returns.std(unbiased=False), batch_size=len(returns), sync_dist=True)
        self.log(f"{stage}/env_steps", self.env_steps.float(), batch_size=len(returns), sync_dist=True)
        return returns

    def validation_step(self, seeds: Tensor, batch_idx: int) -> Tensor:
        returns = self._eval_step(seeds, "val")
        if not self.trainer.sanity_checking and hasattr(self, "_val_returns"):
            self._val_returns.append((int(self.env_steps), float(returns.mean())))
        hp = self.hparams
        if hp.solved_return is not None and not self.trainer.sanity_checking and returns.mean() >= hp.solved_return:
            if self.solved_at_step < 0:
                self.solved_at_step.fill_(int(self.env_steps))
            log.info("solved: mean return %.1f over %d episodes after %d env steps", returns.mean(), len(returns), int(self.env_steps))
            self.trainer.should_stop = True
        return returns

    def on_validation_epoch_end(self) -> None:
        """Log the episode-return curve so far (``zoo.plots.return_curve_figure``)."""
        super().on_validation_epoch_end()

        if should_draw(self) and getattr(self, "_train_returns", None):
            figure = return_curve_figure(self._train_returns, self._val_returns, solved_return=self.hparams.solved_return)
            save_or_log_image(self, "val/episode_returns", figure_to_image(figure))

    def test_step(self, seeds: Tensor, batch_idx: int) -> Tensor:
        return self._eval_step(seeds, "test")

    def predict_step(self, seeds: Tensor, batch_idx: int) -> Tensor:
        """Returns (N,) of the greedy policy over the held-out test seeds."""
        return self.evaluate(seeds.tolist())

    def on_fit_end(self) -> None:
        torch.set_num_threads(getattr(self, "_torch_threads", torch.get_num_threads()))
        for env in self._eval_envs:
            env.close()
        self._eval_envs = []
