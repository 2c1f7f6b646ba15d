"""Data-parallel training on the CPU: ``train.py fit --trainer.strategy ddp --trainer.devices 2`` (gloo).

Each test runs a recipe in a subprocess with two processes and a probe callback (tests/ddp_probe.py) that
saves what every rank holds when fit ends, then checks:

* the metrics are reduced across ranks: both ranks hold the same logged values, although each rank saw
  its own half of the data (``sync_dist`` for logged losses; torchmetrics metrics sync themselves);
* the checkpoint is written once (one best file and one last.ckpt, by rank 0) and loads back through
  ``zoo.load_checkpoint`` with rank 0's final weights;
* the model is the same on both ranks after training;
* nothing that rank 0 does alone (figures, the best-checkpoint message) waits for the other rank.

The families: a classifier, the GAN (manual optimization with two optimizers: unused parameters), the DQN
(each rank its own environment seeds and replay buffer, the same number of steps) and a translation model.
Marked slow: each run starts two Python processes (15-40 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run_ddp(config: str, tmp_path: Path, *overrides: str) -> tuple[dict, dict, list[Path]]:
    """Fit ``configs/<config>`` on 2 CPU processes; returns rank 0's and rank 1's probes and the checkpoints."""
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    env = {
        **os.environ,
        "ZOO_DDP_PROBE_DIR": str(probe_dir),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, str(REPO / "train.py"), "fit", "--config", str(REPO / "configs" / config),
        "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2",
        "--trainer.default_root_dir", str(tmp_path / "run"),  # the default CSV logger: figures drawn by rank 0 too
        "--trainer.enable_progress_bar", "false", "--test_after_fit", "false",
        "--trainer.callbacks+=ddp_probe.RankProbe", *overrides,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    ranks = [torch.load(probe_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    return ranks[0], ranks[1], sorted((tmp_path / "run").rglob("*.ckpt"))


def assert_same_weights(a: dict, b: dict, skip: tuple[str, ...] = ()) -> None:
    keys = [k for k in a if not k.startswith(skip)]
    assert keys and set(keys) == {k for k in b if not k.startswith(skip)}
    different = [k for k in keys if not torch.equal(a[k], b[k])]
    assert not different, f"ranks disagree on {different}"


def assert_metrics_reduced(r0: dict, r1: dict, names: list[str]) -> None:
    for name in names:
        assert name in r0["metrics"], f"{name} not logged; logged: {sorted(r0['metrics'])}"
        assert r0["metrics"][name] == pytest.approx(r1["metrics"][name], rel=1e-6, abs=1e-7), name


def assert_checkpoint_written_once(checkpoints: list[Path], rank0: dict, skip: tuple[str, ...] = ()) -> None:
    names = sorted(p.name for p in checkpoints)
    assert names.count("last.ckpt") == 1 and len(names) <= 2, names  # last.ckpt + at most one best file
    last = next(p for p in checkpoints if p.name == "last.ckpt")
    model = zoo.load_checkpoint(last)
    assert_same_weights({k: v for k, v in model.state_dict().items()}, rank0["state_dict"], skip)
    for path in checkpoints:
        zoo.load_checkpoint(path)  # every file written is complete and loads


def test_classifier_ddp(tmp_path):
    r0, r1, checkpoints = run_ddp("lenet5_digits.yaml", tmp_path, "--trainer.max_epochs", "2")
    # 1,223 training images at batch 64: 20 batches, 10 per rank per epoch
    assert r0["global_step"] == r1["global_step"] == 2 * 10
    assert_same_weights(r0["state_dict"], r1["state_dict"])
    assert_metrics_reduced(r0, r1, ["val/loss", "val/acc", "train/loss_epoch"])
    assert_checkpoint_written_once(checkpoints, r0)


def test_gan_ddp_manual_optimization_two_optimizers(tmp_path):
    # The digits at 28 px keep this free of downloads; the recipe's model and optimizers are unchanged.
    r0, r1, checkpoints = run_ddp(
        "gan_fashionmnist.yaml", tmp_path, "--data", "datamodules.DigitsDataModule", "--data.image_size", "28",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "2",
    )  # fmt: skip
    # Manual optimization: one discriminator and one generator step per batch, 4 batches per rank.
    assert int(r0["state_dict"]["d_updates"]) == int(r1["state_dict"]["d_updates"]) == 4
    assert_same_weights(r0["state_dict"], r1["state_dict"])
    assert_metrics_reduced(r0, r1, ["train/d_loss_epoch", "train/g_loss_epoch", "val/d_loss", "val/g_loss"])
    assert_checkpoint_written_once(checkpoints, r0)


def test_dqn_ddp_ranks_play_their_own_episodes(tmp_path):
    r0, r1, checkpoints = run_ddp(
        "dqn_cartpole.yaml", tmp_path, "--trainer.max_epochs", "2", "--model.init_args.steps_per_epoch", "1024",
        "--model.init_args.learning_starts", "200", "--model.init_args.gradient_steps", "8",
        "--model.init_args.eval_episodes", "4",
    )  # fmt: skip
    # 4 rounds of 256 steps per epoch, 2 per rank: the same number of steps on both ranks, so none waits forever.
    assert r0["global_step"] == r1["global_step"] == 2 * 2 * 8  # optimizer steps: rounds x gradient_steps
    assert int(r0["state_dict"]["env_steps"]) == int(r1["state_dict"]["env_steps"]) == 200 + 2 * 2 * 256
    # Each rank its own environment seeds: different experience in each replay buffer ...
    assert not torch.equal(r0["state_dict"]["replay.obs"], r1["state_dict"]["replay.obs"])
    # ... and one set of weights: the gradients are averaged.
    per_rank = ("replay.", "episodes", "env_steps", "epsilon", "solved_at_step")
    assert_same_weights(r0["state_dict"], r1["state_dict"], skip=per_rank)
    assert_metrics_reduced(r0, r1, ["val/return", "val/env_steps"])
    assert_checkpoint_written_once(checkpoints, r0, skip=per_rank)


def test_translation_ddp(tmp_path):
    r0, r1, checkpoints = run_ddp(
        "seq2seq_numbers_fr.yaml", tmp_path, "--data.init_args.num_train", "1024", "--trainer.max_epochs", "1",
        "--trainer.limit_val_batches", "2", "--model.init_args.hidden_size", "32", "--model.init_args.embedding_dim", "16",
    )  # fmt: skip
    assert r0["global_step"] == r1["global_step"] > 0
    assert_same_weights(r0["state_dict"], r1["state_dict"])
    assert_metrics_reduced(r0, r1, ["val/loss", "val/exact_match", "val/bleu", "train/loss_epoch"])
    assert_checkpoint_written_once(checkpoints, r0)
