"""Kill and resume: a fit SIGKILLed mid-epoch resumes with ``--ckpt_path last``, loses fewer than
``--checkpoint_every_n_steps`` steps and ends exactly as the uninterrupted run (weights, validation metrics);
the pieces that make it exact (a sampler resumable mid-epoch, the RNG states in the checkpoint, the DQN's
episode in flight); checkpoints written atomically, tested by killing a process in the middle of a save."""

from __future__ import annotations

import csv
import io
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from datamodules import DigitsDataModule, ZooDataModule
from datamodules.sampler import ResumableSampler
from zoo.training.resume import RNGStateCallback, find_last_checkpoint

REPO = Path(__file__).resolve().parents[2]

# Test-only: a callback that SIGKILLs its own process at the end of training step ZOO_KILL_AT_STEP. Lightning
# runs checkpoint callbacks last, so the kill comes before that step's own checkpoint could be written.
KILLER = '''
import os, signal
from lightning.pytorch.callbacks import Callback

class KillAtStep(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.fit_loop.epoch_loop.batch_progress.total.processed == int(os.environ["ZOO_KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)
'''


# --------------------------------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------------------------------
def test_the_order_is_a_function_of_seed_and_epoch_and_changes_every_epoch():
    a, b = ResumableSampler(50, seed=3), ResumableSampler(50, seed=3)
    torch.manual_seed(123)  # the global RNG plays no part
    first = list(a)
    assert first == list(b) and sorted(first) == list(range(50))
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(50))
    assert list(ResumableSampler(50, seed=4)) != first
    assert list(ResumableSampler(5, shuffle=False, seed=3)) == [0, 1, 2, 3, 4]


def test_the_seed_is_seed_everythings(monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    assert ResumableSampler(20).seed == 7
    assert list(ResumableSampler(20)) == list(ResumableSampler(20, seed=7))


def test_a_restored_sampler_continues_the_epoch_then_starts_the_next_from_its_beginning():
    sampler = ResumableSampler(10, seed=0)
    sampler.set_epoch(2)
    order = list(sampler)
    state = sampler.state_dict(position=4)
    assert state == {"seed": 0, "epoch": 2, "position": 4}

    resumed = ResumableSampler(10, seed=99)
    resumed.load_state_dict(state)
    assert list(resumed) == order[4:]  # the rest of epoch 2
    resumed.set_epoch(3)
    sampler.set_epoch(3)
    assert list(resumed) == list(sampler)  # epoch 3 whole

    done = ResumableSampler(10, seed=99)
    done.load_state_dict(sampler.state_dict(position=10))  # epoch 3 was over: epoch 4 from its start
    assert done.epoch == 4 and list(done) == [*sampler.order(4).tolist()]


def test_the_training_loader_is_resumable_and_leaves_the_global_rng_alone(monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")
    dm = DigitsDataModule(batch_size=100)
    dm.setup()
    loader = dm.train_dataloader()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    batches = [y for _, y in loader]
    assert torch.equal(torch.rand(3), expected)  # iterating drew nothing from the global RNG

    state = {"train_sampler": {"seed": 0, "epoch": 0, "position": 300}}  # 3 batches of 100 consumed
    resumed = DigitsDataModule(batch_size=100)
    resumed.load_state_dict(state)  # Lightning restores the datamodule before it asks for the loaders
    resumed.setup()
    rest = [y for _, y in resumed.train_dataloader()]
    assert len(rest) == len(batches) - 3 and all(torch.equal(a, b) for a, b in zip(rest, batches[3:]))


def test_rng_states_are_saved_and_restored_when_training_starts():
    callback = RNGStateCallback()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = callback.state_dict()
    expected = (torch.rand(2), np.random.rand(2), random.random())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = RNGStateCallback()
    restored.load_state_dict(torch.load(buffer, weights_only=True))  # primitives and tensors only
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    restored.on_train_start(None, None)
    got = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


# --------------------------------------------------------------------------------------------------
# A crash and a resume in this process (fast): the same pieces as the CLI, exact to the bit
# --------------------------------------------------------------------------------------------------
class Crash(RuntimeError):
    pass


def digits_fit(root: Path, *, crash_at: int | None = None, ckpt_path: str | None = None) -> zoo.MLP:
    import lightning as L

    from zoo.training.atomic_checkpoint_io import AtomicCheckpointIO
    from zoo.training.resume import LastCheckpoint

    class CrashAt(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.fit_loop.epoch_loop.batch_progress.total.processed == crash_at:
                raise Crash

    L.seed_everything(0)
    model = zoo.MLP(in_features=64, hidden_sizes=[16], dropout=0.3, num_classes=10, lr=0.01)
    data = DigitsDataModule(random_crop_padding=1, batch_size=64)
    callbacks = [LastCheckpoint(every_n_steps=3, dirpath=str(root)), RNGStateCallback(), *([CrashAt()] if crash_at else [])]
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, limit_train_batches=6, limit_val_batches=1, deterministic=True,
                        logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
                        callbacks=callbacks, plugins=[AtomicCheckpointIO()])  # fmt: skip
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return model


def test_last_ckpt_is_refreshed_at_every_validation_even_without_a_new_best(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from zoo.training.resume import LastCheckpoint

    model = zoo.MLP(in_features=64, hidden_sizes=[8], num_classes=10, lr=1e-12)  # val/acc never improves
    best = ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max", save_top_k=1)  # as the CLI's
    trainer = L.Trainer(accelerator="cpu", max_epochs=3, limit_train_batches=2, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[best, LastCheckpoint(dirpath=str(tmp_path))])  # fmt: skip
    trainer.fit(model, DigitsDataModule())
    assert torch.load(best.best_model_path, weights_only=True)["global_step"] == 2  # the first epoch stayed best
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 6  # but last.ckpt is the end


def test_a_crashed_fit_resumes_mid_epoch_to_the_same_weights_as_an_uninterrupted_one(tmp_path):
    full = digits_fit(tmp_path / "full")
    with pytest.raises(Crash):
        digits_fit(tmp_path / "crash", crash_at=8)  # epoch 2, step 2 of 6; saved at step 6
    last = tmp_path / "crash" / "last.ckpt"
    assert steps_done(last) == 6
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["DigitsDataModule"]["train_sampler"] == {"seed": 0, "epoch": 0, "position": 1295}  # epoch 1 over (6 batches)
    resumed = digits_fit(tmp_path / "crash", ckpt_path=str(last))
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name

    with pytest.raises(Crash):
        digits_fit(tmp_path / "mid", crash_at=11)  # epoch 2, step 5: saved at step 9, mid-epoch
    checkpoint = torch.load(tmp_path / "mid" / "last.ckpt", weights_only=True)
    assert checkpoint["DigitsDataModule"]["train_sampler"] == {"seed": 0, "epoch": 1, "position": 3 * 64}
    resumed = digits_fit(tmp_path / "mid", ckpt_path=str(tmp_path / "mid" / "last.ckpt"))
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------------------------------
# Kill and resume, in subprocesses
# --------------------------------------------------------------------------------------------------
def fit(cwd: Path, args: list[str], kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd.parent), os.environ.get("PYTHONPATH", "")])}
    if kill_at is not None:
        env["ZOO_KILL_AT_STEP"] = str(kill_at)
        args = [*args, "--trainer.callbacks+=killer.KillAtStep"]
    cwd.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(REPO / "train.py"), "fit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def steps_done(ckpt: Path) -> int:
    """Training steps (training_step calls) a checkpoint had done."""
    checkpoint = torch.load(ckpt, weights_only=True)
    return checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["processed"]


def last_validation(run: Path) -> dict[str, str]:
    rows = [r for r in csv.DictReader((run / "metrics.csv").open()) if r.get("val/loss") or r.get("val/return")]
    return {k: v for k, v in rows[-1].items() if k.startswith("val/")}


def kill_resume_and_compare(tmp_path: Path, args: list[str], *, every: int, kill_at: int) -> tuple[Path, Path]:
    (tmp_path / "killer.py").write_text(KILLER)
    args = [*args, "--seed_everything", "0", "--trainer.deterministic", "true", "--checkpoint_every_n_steps", str(every),
            "--test_after_fit", "false", "--trainer.enable_model_summary", "false"]  # fmt: skip
    full = fit(tmp_path / "full", args)
    assert full.returncode == 0, full.stderr[-3000:]

    crashed = fit(tmp_path / "crash", args, kill_at=kill_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    last = tmp_path / "crash" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    saved = steps_done(last)
    assert kill_at - every < saved < kill_at  # lost fewer than `every` steps, and the checkpoint is mid-run

    resumed = fit(tmp_path / "crash", [*args, "--ckpt_path", "last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {Path('lightning_logs', 'version_0', 'checkpoints', 'last.ckpt')}" in resumed.stdout
    assert "dataloader is not resumable" not in resumed.stderr

    a = torch.load(tmp_path / "full" / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "crash" / "lightning_logs" / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    different = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not different, different
    full_val = last_validation(tmp_path / "full" / "lightning_logs" / "version_0")
    assert full_val and full_val == last_validation(tmp_path / "crash" / "lightning_logs" / "version_1")
    return tmp_path / "full", tmp_path / "crash"


@pytest.mark.slow
def test_a_classifier_killed_mid_epoch_resumes_and_ends_as_the_uninterrupted_run(tmp_path):
    # Dropout and random crops draw from the global RNG, the sampler shuffles: all must be restored exactly.
    # 10 steps an epoch, a checkpoint every 4: killed at step 15, mid-epoch 2, after the save at step 12.
    args = ["--model", "zoo.MLP", "--model.init_args.hidden_sizes", "[32]", "--model.init_args.dropout", "0.3",
            "--data", "datamodules.DigitsDataModule", "--data.init_args.random_crop_padding", "1",
            "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "10", "--trainer.limit_val_batches", "2"]  # fmt: skip
    kill_resume_and_compare(tmp_path, args, every=4, kill_at=15)


@pytest.mark.slow
def test_the_dqn_killed_mid_epoch_resumes_and_ends_as_the_uninterrupted_run(tmp_path):
    # Exploration and replay sampling draw from the global RNG; the episode in flight is rebuilt from its
    # seed and actions. 8 rounds an epoch, a checkpoint every 3: killed at round 13, after the save at 12.
    args = ["--model", "zoo.DQN", "--model.init_args.hidden_sizes", "[32]", "--model.init_args.learning_starts", "100",
            "--model.init_args.train_frequency", "8", "--model.init_args.gradient_steps", "4",
            "--model.init_args.steps_per_epoch", "64", "--model.init_args.eval_episodes", "2",
            "--model.init_args.buffer_size", "2000", "--model.init_args.solved_return", "null",
            "--model.init_args.epsilon_decay_steps", "200", "--model.init_args.target_update_interval", "8",
            "--data", "datamodules.EnvironmentDataModule", "--trainer.max_epochs", "3"]  # fmt: skip
    _, crash = kill_resume_and_compare(tmp_path, args, every=3, kill_at=13)
    checkpoint = torch.load(crash / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(checkpoint["state_dict"]["env_steps"]) == 100 + 12 * 8  # warm-up, then 12 rounds of 8 steps
    assert checkpoint["dqn_episode_actions"]  # killed mid-episode: the episode in flight was saved


# --------------------------------------------------------------------------------------------------
# Atomic checkpoints
# --------------------------------------------------------------------------------------------------
# Saves a checkpoint through AtomicCheckpointIO, then starts a second save whose writer stops half-way
# (as a process killed in the middle of writing would) and waits to be killed.
HALF_WRITTEN_SAVE = '''
import importlib.util, io, sys, time
from pathlib import Path
import torch

# The module alone, not the zoo package (which imports every model): a lighter process to start.
spec = importlib.util.spec_from_file_location("checkpoint_io", Path("zoo", "training", "atomic_checkpoint_io.py"))
checkpoint_io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checkpoint_io)
AtomicCheckpointIO = checkpoint_io.AtomicCheckpointIO

target, marker = sys.argv[1], Path(sys.argv[2])
AtomicCheckpointIO().save_checkpoint({"step": 1, "weights": torch.arange(100_000.0)}, target)
real_save = torch.save

def half_then_hang(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    marker.write_text("writing")
    time.sleep(600)

torch.save = half_then_hang
AtomicCheckpointIO().save_checkpoint({"step": 2, "weights": torch.zeros(100_000)}, target)
'''


def test_a_process_killed_while_saving_leaves_the_previous_last_ckpt_whole(tmp_path):
    folder = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    target, marker = folder / "last.ckpt", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", HALF_WRITTEN_SAVE, str(target), str(marker)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the saving process ended early"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    checkpoint = torch.load(target, weights_only=True)  # whole, and the previous one
    assert checkpoint["step"] == 1 and torch.equal(checkpoint["weights"], torch.arange(100_000.0))
    leftovers = [p for p in folder.iterdir() if p.name != "last.ckpt"]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # the half-written temporary file
    assert not leftovers[0].name.endswith(".ckpt") and leftovers[0].name.startswith(".")
    assert find_last_checkpoint(str(tmp_path / "lightning_logs")) == str(target)  # what --ckpt_path last picks

    from zoo.training.atomic_checkpoint_io import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"step": 3}, target)  # the next save clears the leftover
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]
    assert torch.load(target, weights_only=True) == {"step": 3}


def test_find_last_checkpoint_picks_the_newest_across_runs(tmp_path):
    old = tmp_path / "version_0" / "checkpoints" / "last.ckpt"
    new = tmp_path / "version_3" / "checkpoints" / "last.ckpt"
    for i, path in enumerate((new, old)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "version_3" / "checkpoints" / ".last.ckpt.1234abcd.tmp").write_bytes(b"partial")
    assert find_last_checkpoint(str(tmp_path)) == str(old)  # the newest file, whatever the folder's number
    assert find_last_checkpoint(str(tmp_path / "nothing")) is None


def test_the_cli_writes_checkpoints_atomically_by_default(tmp_path, monkeypatch):
    from zoo.training.atomic_checkpoint_io import AtomicCheckpointIO
    from zoo.training.cli import ZooCLI

    monkeypatch.chdir(tmp_path)
    cli = ZooCLI(zoo.ZooModule, ZooDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 args=["--model", "zoo.MLP", "--data", "datamodules.BlobsDataModule"], run=False)  # fmt: skip
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
