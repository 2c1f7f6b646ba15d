"""Train a recipe on a Ray cluster: ``python train.py fit`` run by Ray Train's ``TorchTrainer`` workers.

    python -m zoo.tools.ray_train --config configs/lenet5_digits.yaml --num-workers 2               # a local Ray
    python -m zoo.tools.ray_train --config configs/resnet20_fashionmnist.yaml --num-workers 8 --use-gpu --address auto
    python -m zoo.tools.ray_train --config configs/lenet5_digits.yaml --num-workers 2 --trainer.max_epochs 5

Needs the ``ray`` extra: ``pip install "lightning-zoo[ray]"``. Every argument that is not the tool's own
(``--num-workers``, ``--use-gpu``, ``--cpus-per-worker``, ``--address``, ``--storage-path``, ``--name``) is
``train.py fit``'s: ``--config``, ``--trainer.*``, ``--model.*``, ``--data.*``, ``--test_after_fit``, ``--ckpt_path``.

* The driver parses them with the zoo's own CLI (``zoo.training.cli``), so a mistake ends with the same
  ``error:`` line as ``train.py`` before any Ray process starts; nothing is built on the driver.
* Each of the ``--num-workers`` workers runs the zoo's CLI on the same arguments (``RayZooCLI``): the same
  LightningModule, LightningDataModule, checkpoints, logger and ``--test_after_fit``, with Ray's Lightning
  integration in the Trainer: ``RayDDPStrategy``, ``RayLightningEnvironment``, ``RayTrainReportCallback`` and
  ``prepare_trainer``. Ray places the processes: ``--trainer.devices``, ``--trainer.num_nodes`` and a strategy
  other than DDP are refused; the accelerator is the device Ray gives each worker (a GPU with ``--use-gpu``).
* ``batch_size`` is per worker, as under ``--trainer.strategy ddp``: the effective batch is ``batch_size x N``.
* Checkpoints: rank 0 writes the zoo's ``epochNNN.ckpt`` and ``last.ckpt`` under ``--trainer.default_root_dir``
  (the working directory by default), on its own node. Ray Train keeps, under ``--storage-path``
  (``<default_root_dir>/ray_results`` by default; shared storage on a multi-node cluster), the latest epoch's
  checkpoint while the run lasts (``RayTrainReportCallback``), then a copy of the zoo's best one, with the test
  metrics. Both are ordinary Lightning checkpoints that ``zoo.load_checkpoint`` reads; the driver prints where
  they are and the test metrics once the run ends.

The workers run in the driver's working directory when their node has it (relative ``--config`` and data paths
then resolve as on the driver), and import the zoo from their own Python: on a cluster, every node needs the zoo
and its data at the same paths.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from typing import Any, Sequence

from zoo.training.cli import USER_ERRORS, ZooCLI, build_cli
from zoo.training.cli_errors import ConfigError

__all__ = ["RAY_MISSING", "RayZooCLI", "best_checkpoint", "check_trainer", "main", "parse_fit", "run_summary", "train_worker"]

#: The one sentence a run without Ray ends with.
RAY_MISSING = 'python -m zoo.tools.ray_train needs Ray Train, which is not installed: pip install "lightning-zoo[ray]"'
#: Trainer flags that Ray's placement decides, and the values a config may leave them at.
RAY_PLACED = {"strategy": ("auto", "ddp"), "devices": ("auto",), "num_nodes": (1,)}


class _ParseOnlyCLI(ZooCLI):
    """The zoo CLI's parse of a ``fit`` command line (config files, overrides and their checks); nothing is built,
    seeded or run."""

    def init_parser(self, **kwargs: Any):
        return super().init_parser(**{"prog": "train.py", **kwargs})  # errors say: `train.py fit --help` lists every option

    def _set_seed(self) -> None:
        pass

    def before_instantiate_classes(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass

    def _run_subcommand(self, subcommand: str) -> None:
        pass


class RayZooCLI(ZooCLI):
    """The zoo's CLI inside a Ray Train worker: its Trainer takes Ray's strategy, cluster environment and report
    callback, on the device Ray gave the worker; everything else (checkpoints, logger, ``--test_after_fit``) is the
    zoo's."""

    def instantiate_trainer(self, **kwargs: Any):
        """The zoo's Trainer with Ray's Lightning integration, checked by ``prepare_trainer``.

        Args:
            kwargs: Trainer arguments of a subclass; Ray's are added to them.
        """
        import ray.train.torch
        from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, RayTrainReportCallback, prepare_trainer

        device = ray.train.torch.get_device()
        kwargs.update(accelerator="gpu" if device.type == "cuda" else "cpu", devices="auto", num_nodes=1, strategy=RayDDPStrategy())
        # ZooCLI adds the config's callbacks and plugins, and its own, to these.
        kwargs.update(plugins=[RayLightningEnvironment()], callbacks=[RayTrainReportCallback()])
        return prepare_trainer(super().instantiate_trainer(**kwargs))


def _zoo_cli(fit_args: Sequence[str], cli_class: type[ZooCLI]) -> ZooCLI:
    """``cli_class`` on ``train.py fit <fit_args>``. Lightning warns when ``args=`` and ``sys.argv`` both hold arguments:
    here ``sys.argv`` is the tool's command line (or a Ray worker's), so the warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "LightningCLI's args parameter is intended to run from within Python")
        return build_cli(["fit", *fit_args], cli_class=cli_class)


def parse_fit(fit_args: Sequence[str]) -> Any:
    """``train.py fit``'s parsed configuration of ``fit_args``: the zoo CLI's parser and checks, nothing instantiated.

    Args:
        fit_args: the command line after ``train.py fit`` (``--config``, ``--trainer.*``, ``--model.*``, ...).

    Returns:
        The ``fit`` section of the configuration (a jsonargparse ``Namespace``).
    """
    return _zoo_cli(fit_args, _ParseOnlyCLI).config.fit


def check_trainer(trainer: Any, use_gpu: bool) -> None:
    """Refuse the Trainer flags that contradict Ray's placement of the workers.

    Args:
        trainer: the parsed ``trainer`` section (a mapping or jsonargparse ``Namespace``).
        use_gpu: whether each worker gets a GPU (``--use-gpu``).

    Raises:
        ConfigError: a flag that Ray decides is set, or an accelerator other than the workers' device.
    """
    for key, allowed in RAY_PLACED.items():
        value = trainer.get(key, allowed[0])
        if value not in allowed:
            raise ConfigError(
                f"--trainer.{key}={value} contradicts Ray's placement: the workers are Ray's DDP processes, one device "
                "each; choose their number with --num-workers (and --use-gpu), not Trainer flags"
            )
    accelerator = trainer.get("accelerator", "auto")
    if accelerator not in (("auto", "gpu", "cuda") if use_gpu else ("auto", "cpu")):
        raise ConfigError(
            f"--trainer.accelerator={accelerator} contradicts the workers' device ({'a GPU' if use_gpu else 'the CPU'}); "
            "--use-gpu gives each worker a GPU"
        )


def run_summary(trainer: Any) -> dict[str, Any]:
    """What a worker reports when its run ends: the test metrics and the zoo's best checkpoint (rank 0's is kept).

    Args:
        trainer: the worker's Trainer, after fit (and the test of ``--test_after_fit``).
    """
    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") or ""
    score = getattr(checkpoint, "best_model_score", None)
    summary: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    summary.update(best_checkpoint=os.path.abspath(best) if best else "", monitor=getattr(checkpoint, "monitor", None) or "",
                   node=socket.gethostname())  # fmt: skip
    if score is not None:
        summary["best_score"] = float(score)
    return summary


def train_worker(config: dict[str, Any]) -> None:
    """What every Ray Train worker runs: ``train.py fit`` with Ray's Trainer (``RayZooCLI``); then rank 0 reports the
    zoo's best checkpoint to Ray Train, which copies it to its storage, with the run's summary as its metrics.

    Args:
        config: ``args``, the command line after ``train.py fit``, and ``cwd``, the driver's working directory,
            where relative paths in ``args`` point (used when the worker's node has it).
    """
    import ray.train

    if os.path.isdir(config["cwd"]):
        os.chdir(config["cwd"])
    cli = _zoo_cli(config["args"], RayZooCLI)
    summary = run_summary(cli.trainer)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if summary["best_checkpoint"] and ray.train.get_context().get_world_rank() == 0:
            shutil.copy2(summary["best_checkpoint"], folder)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(summary, checkpoint=checkpoint)  # every worker reports; Ray keeps rank 0's


def _worker_user_error(error: BaseException) -> BaseException | None:
    """The zoo's own error (a configuration mistake, missing data) behind a Ray Train failure, if that is what it was."""
    for failure in (getattr(error, "worker_failures", None) or {}).values():
        while failure is not None:
            if isinstance(failure, USER_ERRORS):
                return failure
            failure = failure.__cause__
    return None


def best_checkpoint(result: Any) -> str:
    """Ray Train's copy of the zoo's best checkpoint (a path under ``--storage-path``), or "" when the run kept none.

    Args:
        result: the ``ray.train.Result`` of a run of ``train_worker``.
    """
    original = (result.metrics or {}).get("best_checkpoint")
    if result.checkpoint is None or not original:
        return ""
    return f"{result.checkpoint.path.rstrip('/')}/{os.path.basename(original)}"


def _report(result: Any, wall_s: float, workers: str) -> str:
    """The lines the driver prints when the run ends: the test metrics and where the best checkpoint is."""
    metrics = result.metrics or {}
    tests = "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith("test/"))
    lines = [f"Ray Train: {workers}, {wall_s:.0f} s" + (f"; {tests}" if tests else "")]
    copy = best_checkpoint(result)
    if copy:
        score = f" ({metrics['monitor']}={metrics['best_score']:.4f})" if "best_score" in metrics else ""
        lines += [f"Best checkpoint{score}: {copy}", f"  load in Python: model = zoo.load_checkpoint({copy!r})",
                  f"  written by rank 0 on {metrics.get('node')}: {metrics['best_checkpoint']}"]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The tool's own arguments, and the rest: the command line after ``train.py fit`` (a leading ``fit`` dropped).

    Args:
        argv: the command line after ``python -m zoo.tools.ray_train`` (None: ``sys.argv``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m zoo.tools.ray_train",
        description=__doc__.split("\n\n")[0],
        epilog="Every other argument is train.py fit's (python train.py fit --help): --config, --trainer.*, --model.*, --data.*.",
        allow_abbrev=False,  # a prefix of a Trainer flag must not match one of these
    )
    parser.add_argument("--num-workers", type=int, required=True, help="Ray Train workers: DDP processes, one device each")
    parser.add_argument("--use-gpu", action="store_true", help="give each worker one GPU (default: the CPU)")
    parser.add_argument("--cpus-per-worker", type=float, default=1, help="CPUs Ray reserves for each worker (default 1)")
    parser.add_argument("--address", help="the Ray cluster: 'auto' (one started with ray start on this machine), HEAD:6379 "
                        "or ray://HEAD:10001; default: the one this process is connected to, else a new local one")  # fmt: skip
    parser.add_argument("--storage-path", help="where Ray Train keeps its checkpoint copies and results; shared storage "
                        "on a multi-node cluster (default: <default_root_dir>/ray_results)")  # fmt: skip
    parser.add_argument("--name", help="the run's folder under --storage-path (default: Ray's)")
    args, fit_args = parser.parse_known_args(argv)
    if args.num_workers < 1 or args.cpus_per_worker <= 0:
        parser.error(f"--num-workers must be >= 1 and --cpus-per-worker > 0, got {args.num_workers} and {args.cpus_per_worker:g}")
    return args, fit_args[1:] if fit_args[:1] == ["fit"] else fit_args


def main(argv: Sequence[str] | None = None) -> Any:
    """Parse the command line, train on the Ray cluster, print the run's summary.

    Args:
        argv: the command line after ``python -m zoo.tools.ray_train`` (None: ``sys.argv``).

    Returns:
        Ray Train's ``Result``: its ``checkpoint`` holds the copy of the zoo's best checkpoint, its ``metrics`` the
        test metrics and ``run_summary``'s other values.
    """
    args, fit_args = parse_args(argv)
    try:
        import ray
        import ray.train
        from ray.train.torch import TorchTrainer
    except ImportError:
        sys.exit(f"error: {RAY_MISSING}")
    try:
        config = parse_fit(fit_args)
        check_trainer(config.trainer, args.use_gpu)
    except USER_ERRORS as e:
        sys.exit(f"error: {e}")
    root = os.path.abspath(config.trainer.get("default_root_dir") or os.getcwd())
    started = not ray.is_initialized()
    if started:  # a new local cluster, or a connection to the one at --address
        if args.address in (None, "local"):  # at least the CPUs the workers reserve, so that none waits forever
            ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(args.num_workers * args.cpus_per_worker)), include_dashboard=False)
        else:
            ray.init(address=args.address)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"args": list(fit_args), "cwd": os.getcwd()},
        scaling_config=ray.train.ScalingConfig(num_workers=args.num_workers, use_gpu=args.use_gpu,
                                               resources_per_worker={"CPU": args.cpus_per_worker}),
        run_config=ray.train.RunConfig(
            name=args.name, storage_path=args.storage_path or os.path.join(root, "ray_results"),
            # The latest epoch's (RayTrainReportCallback), then the best one, which train_worker reports last.
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
        ),
    )  # fmt: skip
    began = time.monotonic()
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as e:
        user_error = _worker_user_error(e)
        if user_error is None:
            raise
        sys.exit(f"error: {user_error}")
    finally:
        if started:
            ray.shutdown()
    workers = f"{args.num_workers} {'GPU' if args.use_gpu else 'CPU'} workers"
    print(_report(result, time.monotonic() - began, workers), flush=True)
    return result


if __name__ == "__main__":
    main()
