"""What one benchmark run is asked to do: sizes, device, data, seeds (parsed by ``zoo.bench.__main__``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RECIPE_CLASSIFIERS", "REPO", "BenchSettings"]

#: The repository root, where train.py and configs/ live.
REPO = Path(__file__).resolve().parents[2]


#: The networks of the Fashion-MNIST classification recipes (configs/*_fashionmnist*.yaml).
RECIPE_CLASSIFIERS = ("dnn", "lenet5", "simple_cnn", "alexnet_small", "vgg11_small", "resnet20", "resnet9_fast", "vit_tiny", "lstm")


@dataclass
class BenchSettings:
    """Sizes and sources shared by the comparisons.

    Args:
        device: ``cpu`` or ``cuda``.
        quick: tiny sizes (a few batches, one seed) to check the harness, not to measure.
        data_dir: Fashion-MNIST's folder (``--data.data_dir``); None: the datamodule's own lookup.
        repeats: timed epochs (after one warm-up epoch) or timed passes; the median is reported.
        batches: training batches per epoch in the overhead and data comparisons (None: the whole epoch).
        batch_size: samples per batch in the overhead and data comparisons.
        recipes: the configs whose whole ``train.py fit`` processes the accuracy comparison times (default: the
            two fast Fashion-MNIST recipes).
        seeds: seeds of the accuracy comparison.
        dqn_seeds: seeds of the DQN comparison.
        dqn_recipe: the DQN comparison's config (default: CartPole-v1); another environment gets its own table.
        extra_fit_args: extra ``train.py fit`` arguments for the accuracy comparison (``--quick`` shrinks the run).
        extra_dqn_args: extra ``train.py fit`` arguments for the DQN comparison.
        models: registered classifiers for the inference comparison (None: every one).
        inference_batch: images per forward pass in the inference comparison.
        compile: also time ``torch.compile`` in the inference comparison.
        compile_models: the classifiers ``compile`` applies to (None: every one timed). By default the networks
            of the Fashion-MNIST recipes: compiling each costs 10-60 s on a 2-core CPU, every classifier ~20 min.
        profile: wrap the timed sections in torch.profiler and print the top ops.
        workdir: scratch folder for the runs' logs and checkpoints (None: a temporary folder, made on first use).
    """

    device: str = "cpu"
    quick: bool = False
    data_dir: str | None = None
    repeats: int = 3
    batches: int | None = None
    batch_size: int = 128
    recipes: list[str] = field(default_factory=lambda: ["configs/resnet9_fast_fashionmnist_60s.yaml", "configs/resnet9_fast_fashionmnist_5min.yaml"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    dqn_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    dqn_recipe: str = "configs/dqn_cartpole.yaml"
    extra_fit_args: list[str] = field(default_factory=list)
    extra_dqn_args: list[str] = field(default_factory=list)
    models: list[str] | None = None
    inference_batch: int = 256
    compile: bool = True
    compile_models: list[str] | None = field(default_factory=lambda: list(RECIPE_CLASSIFIERS))
    profile: bool = False
    workdir: Path | None = None

    @classmethod
    def quick_settings(cls, **overrides) -> BenchSettings:
        """Tiny sizes for the tests: 2 batches, 1 repeat, one seed, a 1-epoch run, one small model, no compile."""
        quick = dict(
            quick=True,
            repeats=1,
            batches=2,
            batch_size=32,
            seeds=[0],
            dqn_seeds=[0],
            recipes=["configs/resnet9_fast_fashionmnist_60s.yaml"],
            extra_fit_args=["--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
                            "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1"],  # fmt: skip
            extra_dqn_args=["--trainer.max_epochs=1", "--model.init_args.steps_per_epoch=64",
                            "--model.init_args.learning_starts=32", "--model.init_args.train_frequency=32",
                            "--model.init_args.gradient_steps=2", "--model.init_args.buffer_size=1000",
                            "--model.init_args.eval_episodes=2", "--model.init_args.epsilon_decay_steps=64"],  # fmt: skip
            models=["lenet5"],
            inference_batch=16,
            compile=False,
        )
        return cls(**{**quick, **overrides})

    def scratch(self, *parts: str) -> Path:
        """``workdir / parts...``; without a ``workdir``, one is made in the temporary folder on first use."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
        return self.workdir.joinpath(*parts)

    def data_args(self) -> list[str]:
        """``--data.init_args.data_dir=...`` when a data folder is given."""
        return [f"--data.init_args.data_dir={self.data_dir}"] if self.data_dir else []

    def accelerator_args(self) -> list[str]:
        return ["--trainer.accelerator=gpu", "--trainer.devices=1"] if self.device == "cuda" else ["--trainer.accelerator=cpu"]
