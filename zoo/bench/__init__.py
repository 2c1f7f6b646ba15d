"""The zoo's benchmark suite, ``python -m zoo.bench``: five side-by-side comparisons in one run.

1. ``overhead`` (``zoo.bench.overhead``): the zoo's ``train.py fit`` epoch vs a hand-written PyTorch loop;
2. ``data`` (``zoo.bench.data_pipeline``): the in-memory Fashion-MNIST datamodule vs torchvision's per-sample pipeline;
3. ``accuracy`` (``zoo.bench.time_to_accuracy``): a whole ``train.py fit`` process per seed, time and test accuracy;
4. ``dqn`` (``zoo.bench.dqn_solve``): environment steps and seconds to solve CartPole-v1 per seed;
5. ``inference`` (``zoo.bench.inference_speed``): images/s of every classifier, eager vs ``torch.compile``, peak memory.

Every figure that compares two things is a ratio of timings taken in the same run, because absolute times
on a shared machine drift. The tables, with the machine, the versions and the command, go to BENCHMARKS.md.
"""

from zoo.bench.report import Table, machine_info, write_report
from zoo.bench.settings import BenchSettings
from zoo.bench.suite import COMPARISONS, run_suite

__all__ = ["COMPARISONS", "BenchSettings", "Table", "machine_info", "run_suite", "write_report"]
