"""DQN: the standard tests (shapes, fast_dev_run fit, exact weights-only checkpoint round trip), the
algorithm's parts (epsilon schedule, target sync, Double/Dueling), resume, evaluation, play, and the
CartPole recipe solving the environment (slow)."""

from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image

import zoo
from zoo.models.rl.dqn import DQN
from zoo.models.rl.replay import ReplayBuffer

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
SMALL = dict(hidden_sizes=[16], batch_size=8, buffer_size=200, learning_starts=20, steps_per_epoch=10, eval_episodes=3)


def small_dqn(**kwargs) -> DQN:
    return zoo.create_model("dqn", **{**SMALL, **kwargs})


def quiet_trainer(**kwargs) -> L.Trainer:
    defaults = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(**{**defaults, **kwargs})


@pytest.mark.parametrize("name", ["dqn"])
def test_forward_shapes_and_input_checks(name):
    model = zoo.create_model(name)
    assert isinstance(model, DQN)
    assert model.example_input_array.shape == (2, 4)  # CartPole: 4 observations, 2 actions
    assert model(model.example_input_array).shape == (2, 2)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, F=4\)"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="expects a floating-point tensor"):
        model(torch.zeros(2, 4, dtype=torch.long))


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("double_dqn", [False, True])
def test_fast_dev_run_fit_changes_weights_and_steps_the_env(dueling, double_dqn):
    model = small_dqn(dueling=dueling, double_dqn=double_dqn, loss="mse")
    before = {k: v.clone() for k, v in model.q_net.state_dict().items()}
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(model)
    assert trainer.state.finished
    assert any(not torch.equal(before[k], v) for k, v in model.q_net.state_dict().items()), "no weight changed"
    assert int(model.env_steps) == 20 + 1  # warm-up + one step
    assert len(model.replay) == 21
    assert "val/return" in trainer.callback_metrics


def test_checkpoint_round_trip_is_exact_and_weights_only(tmp_path):
    model = small_dqn()
    trainer = quiet_trainer(max_steps=5, default_root_dir=tmp_path, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(model)
    path = tmp_path / "dqn.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    assert raw["hyper_parameters"] == dict(model.hparams)
    loaded = DQN.load_from_checkpoint(path, weights_only=True)
    x = torch.randn(8, 4)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))
    assert torch.equal(loaded.replay.obs, model.replay.obs) and len(loaded.replay) == len(model.replay)
    assert int(loaded.env_steps) == int(model.env_steps) and float(loaded.epsilon) == float(model.epsilon)


def test_resume_restores_buffer_epsilon_and_step_counters(tmp_path):
    L.seed_everything(0)
    first = small_dqn(epsilon_decay_steps=100)
    trainer = quiet_trainer(max_steps=30, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(first)
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = dict(env_steps=int(first.env_steps), episodes=int(first.episodes), epsilon=float(first.epsilon), size=len(first.replay))
    assert saved["env_steps"] == 20 + 30 and saved["epsilon"] < 1.0

    seen = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, module):  # after the restore, after the model's own warm-up hook
            seen.update(env_steps=int(module.env_steps), size=len(module.replay), epsilon=float(module.epsilon),
                        episodes=int(module.episodes), global_step=trainer.global_step)  # fmt: skip

    resumed = small_dqn(epsilon_decay_steps=100)
    trainer = quiet_trainer(max_steps=50, default_root_dir=tmp_path, limit_val_batches=0, callbacks=[Probe()])
    trainer.fit(resumed, ckpt_path=ckpt)
    # the buffer was restored, so no new warm-up ran; epsilon and counters continue
    assert seen == dict(env_steps=saved["env_steps"], size=saved["size"], epsilon=saved["epsilon"],
                        episodes=saved["episodes"], global_step=30)  # fmt: skip
    assert int(resumed.env_steps) == saved["env_steps"] + 20
    assert float(resumed.epsilon) == pytest.approx(resumed.epsilon_at(saved["env_steps"] + 19))


def test_epsilon_decays_linearly_then_stays():
    model = small_dqn(epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=100)
    assert model.epsilon_at(0) == 1.0
    assert model.epsilon_at(50) == pytest.approx(0.55)
    assert model.epsilon_at(100) == pytest.approx(0.1) and model.epsilon_at(10_000) == pytest.approx(0.1)


@pytest.mark.parametrize("tau,interval,steps", [(1.0, 4, 4), (0.5, 1, 1)])
def test_target_network_hard_sync_and_polyak(tau, interval, steps):
    model = small_dqn(tau=tau, target_update_interval=interval)
    old_target = [p.clone() for p in model.target_net.parameters()]
    trainer = quiet_trainer(max_steps=steps, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(model)
    for old, target, online in zip(old_target, model.target_net.parameters(), model.q_net.parameters()):
        if tau == 1.0:
            assert torch.equal(target, online)  # hard copy at step 4
        else:
            assert torch.allclose(target, 0.5 * old + 0.5 * online)  # one Polyak average after one step


def test_dueling_head_is_value_plus_centred_advantage():
    model = small_dqn(dueling=True)
    obs = torch.randn(5, 4)
    h = model.q_net.body(obs)
    adv = model.q_net.advantage(h)
    q = model(obs)
    assert torch.allclose(q.mean(dim=1, keepdim=True), model.q_net.value(h), atol=1e-6)
    assert torch.allclose(q - q.mean(dim=1, keepdim=True), adv - adv.mean(dim=1, keepdim=True), atol=1e-6)


def test_replay_buffer_is_a_ring():
    buffer = ReplayBuffer(3, 2)
    for i in range(5):
        buffer.push(torch.full((2,), float(i)), i % 2, float(i), torch.full((2,), i + 1.0), i == 4)
    assert len(buffer) == 3 and int(buffer.position) == 2
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0]
    obs, actions, rewards, next_obs, dones = buffer.sample(16)
    assert obs.shape == (16, 2) and actions.dtype == torch.long and set(rewards.tolist()) <= {2.0, 3.0, 4.0}
    assert torch.equal(next_obs, obs + 1) and torch.equal(dones, (rewards == 4).float())


def test_evaluation_is_seeded_and_play_writes_a_gif(tmp_path):
    model = small_dqn().eval()
    first, second = model.evaluate([1, 2, 3]), model.evaluate([1, 2, 3])
    assert torch.equal(first, second) and first.shape == (3,) and (first >= 1).all()
    gif = tmp_path / "cartpole.gif"
    returns = zoo.play(model, "CartPole-v1", episodes=1, seed=1, gif=str(gif))
    assert returns == [first[0].item()]  # same seed, same greedy policy, same return
    with Image.open(gif) as image:  # Pillow merges identical consecutive frames, adding up their durations
        total_ms = 0
        for i in range(image.n_frames):
            image.seek(i)
            total_ms += image.info["duration"]
    assert total_ms == int(returns[0]) * 20  # one 20 ms frame (fps=50) per environment step


def test_terminated_stops_bootstrapping_and_truncated_does_not():
    """A pole that falls is terminal (target r); a time-limit cut is not (target r + gamma * Q_target)."""
    import gymnasium as gym

    model = small_dqn(gamma=0.9, double_dqn=False)
    # Stored flags: an episode cut by a 2-step time limit, then one that runs until the pole falls.
    model._env = gym.make("CartPole-v1", max_episode_steps=2)
    model._reset_env()
    model.play_step(epsilon=1.0)
    assert model.play_step(epsilon=1.0) is not None  # truncated after 2 steps
    assert model.replay.dones[:2].tolist() == [0.0, 0.0]
    model._env = gym.make("CartPole-v1", max_episode_steps=10_000)
    model._reset_env()
    start = len(model.replay)
    while model.play_step(epsilon=0.0) is None:  # the untrained greedy policy drops the pole
        pass
    dones = model.replay.dones[start : len(model.replay)]
    assert dones[-1] == 1.0 and dones[:-1].sum() == 0

    # The target: Q_target(s', .) = 5 for every action, so r + 0.9 * 5 unless terminal.
    with torch.no_grad():
        for p in model.target_net.parameters():
            p.zero_()
        model.target_net.head.bias.fill_(5.0)
    rewards, next_obs = torch.tensor([1.0, 1.0]), torch.randn(2, 4)
    td_target = model.td_target(rewards, next_obs, torch.tensor([0.0, 1.0]))  # (truncated or mid-episode, terminated)
    assert torch.allclose(td_target, torch.tensor([1.0 + 0.9 * 5.0, 1.0]))


def test_double_dqn_target_picks_online_action_valued_by_target():
    model = small_dqn(gamma=1.0, double_dqn=True)
    with torch.no_grad():
        for net, values in ((model.q_net, [0.0, 1.0]), (model.target_net, [7.0, 3.0])):
            for p in net.parameters():
                p.zero_()
            net.head.bias.copy_(torch.tensor(values))
    # online argmax is action 1, valued 3 by the target (plain DQN would take the target's max, 7)
    assert model.td_target(torch.zeros(1), torch.randn(1, 4), torch.zeros(1)).item() == 3.0


def test_test_episodes_are_held_out_from_validation():
    model = small_dqn(eval_episodes=100, eval_seed=10_000, test_seed=20_000)
    val_seeds = set(next(iter(model.val_dataloader())).tolist())
    test_seeds = set(next(iter(model.test_dataloader())).tolist())
    assert len(val_seeds) == len(test_seeds) == 100 and not val_seeds & test_seeds
    assert set(next(iter(model.predict_dataloader())).tolist()) == test_seeds
    with pytest.raises(ValueError, match="overlap the validation episodes"):
        small_dqn(eval_episodes=100, eval_seed=10_000, test_seed=10_050)


def test_rounds_act_then_take_several_gradient_steps():
    """train_frequency env steps, then gradient_steps updates, per training step; targets count updates."""
    model = small_dqn(train_frequency=4, gradient_steps=3, steps_per_epoch=8, target_update_interval=3)
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(model)
    assert int(model.env_steps) == 20 + 8  # warm-up + 2 rounds of 4
    assert int(model.gradient_updates) == 6 and trainer.global_step == 6
    assert all(torch.equal(t, o) for t, o in zip(model.target_net.parameters(), model.q_net.parameters()))  # synced at 6
    with pytest.raises(ValueError, match="multiple of train_frequency"):
        small_dqn(train_frequency=4, steps_per_epoch=10)


def test_refuses_continuous_actions():
    with pytest.raises(ValueError, match="discrete action space"):
        zoo.create_model("dqn", env_id="Pendulum-v1")


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.parametrize("seed", range(5))
def test_recipe_solves_cartpole_on_held_out_episodes(seed, tmp_path):
    """configs/dqn_cartpole.yaml with seeds 0-4: validation stops training once solved, within 50,000 env
    steps, and the checkpoint it chose averages >= 475 over 100 held-out episodes (seeds 20,000-20,099)."""
    from zoo.training.cli import main

    args = ["fit", "--config", str(CONFIGS / "dqn_cartpole.yaml"), f"--seed_everything={seed}", f"--model.init_args.seed={seed}",
            f"--trainer.default_root_dir={tmp_path}", "--test_after_fit=false"]  # fmt: skip
    cli = main(args)
    assert 0 < int(cli.model.solved_at_step) <= 50_000
    agent = zoo.load_checkpoint(cli.trainer.checkpoint_callback.best_model_path)
    assert agent.hparams.test_seed == 20_000 and agent.hparams.eval_seed == 10_000
    returns = zoo.play(agent, episodes=100, seed=agent.hparams.test_seed)
    assert sum(returns) / len(returns) >= 475, returns
