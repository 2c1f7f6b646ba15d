"""Comparison 6, optimisations: each change the fast recipes rely on, its predicted speed-up and the measured one.

Each row times training steps (forward, cross-entropy, backward, SGD step) of two models on the same random
batch, a baseline and the optimised one, alternating A, B, A, B so drift reaches both alike; the figure is
images per second, median over ``repeats`` rounds after a warm-up. The prediction is written down before
the measurement and comes from a cheaper source:

* a layout change (``channels_last``) has the same arithmetic, so its prediction is the speed-up a raw PyTorch
  loop showed on similar networks when the fast recipe was designed (``PREDICTED_LAYOUT``);
* an architecture change has a prediction computed here, in this run: the ratio of forward FLOPs per image
  (``torch.utils.flop_counter``), which is what the speed-up would be if every layer ran at the same FLOP rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

import zoo
from zoo.bench.report import Table, median, ratio
from zoo.bench.settings import BenchSettings

__all__ = ["OPTIMISATIONS", "Optimisation", "flops_per_image", "run_optimisations"]

#: Training-step speed-up of NHWC over NCHW in a raw PyTorch loop on the 2-core CPU at batch 256, measured
#: before the option existed: LeNet-5 1.79x, a 16-32-64 conv-BN net 1.78x, the same with residual pairs 1.46x.
PREDICTED_LAYOUT = {"lenet5": 1.79, "resnet9_fast": 1.46}


@dataclass
class Optimisation:
    """Two builds of a model to time against each other.

    Args:
        name: what changes, in words.
        baseline: (label, zero-argument builder) of the model without the change.
        optimised: (label, builder) of the model with it.
        predicted: the speed-up expected before measuring; None: the FLOP ratio of the two, computed here.
        basis: where the prediction comes from.
    """

    name: str
    baseline: tuple[str, Callable[[], torch.nn.Module]]
    optimised: tuple[str, Callable[[], torch.nn.Module]]
    predicted: float | None
    basis: str


def _model(name: str, **kwargs) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        return zoo.create_model(name, **{"in_channels": 1, "image_size": 28, **kwargs})

    return build


OPTIMISATIONS = [
    Optimisation("NHWC layout (channels_last=True), LeNet-5", ("lenet5", _model("lenet5")),
                 ("lenet5 NHWC", _model("lenet5", channels_last=True)), PREDICTED_LAYOUT["lenet5"], "raw-loop probe"),
    Optimisation("NHWC layout (channels_last=True), ResNet-9 fast", ("resnet9_fast NCHW", _model("resnet9_fast")),
                 ("resnet9_fast", _model("resnet9_fast", channels_last=True)), PREDICTED_LAYOUT["resnet9_fast"], "raw-loop probe"),
    Optimisation("max-pool after the stem (stem_pool=True), ResNet-9 16-32-64-128, NHWC",
                 ("no stem pool", _model("resnet9_fast", stem_pool=False, channels_last=True)),
                 ("resnet9_fast", _model("resnet9_fast", channels_last=True)), None, "forward FLOP ratio"),
    Optimisation("ResNet-9 fast instead of ResNet-20 (the earlier Fashion-MNIST recipe's network), both NHWC",
                 ("resnet20", _model("resnet20", channels_last=True)),
                 ("resnet9_fast", _model("resnet9_fast", channels_last=True)), None, "forward FLOP ratio"),
]  # fmt: skip


def flops_per_image(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """Forward FLOPs of ``model`` for one input of ``shape`` (batch of 2, halved), as torch's FLOP counter counts them."""
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    with torch.no_grad(), counter:
        model(torch.zeros(2, *shape))
    model.train(was_training)
    return counter.get_total_flops() / 2


def _steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, n: int) -> float:
    """Seconds for ``n`` training steps on (x, y)."""
    start = time.perf_counter()
    for _ in range(n):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
    return time.perf_counter() - start


def run_optimisations(settings: BenchSettings, optimisations: list[Optimisation] | None = None) -> Table:
    """Time every optimisation's two models; predicted and measured speed-ups side by side."""
    batch = 256 if not settings.quick else settings.batch_size
    steps = 2 if settings.quick else 20
    table = Table(
        name="optim",
        title="6. Optimisations: predicted vs measured training speed-up",
        columns=["optimisation", "baseline img/s", "optimised img/s", "predicted", "basis", "measured"],
        notes=[f"Training steps (forward, cross-entropy, backward, SGD) on a random batch of {batch} grey 28 px images, "
               f"{steps} steps per timing, baseline and optimised alternating, median of {max(1, settings.repeats)} rounds "
               "after a warm-up. See the module docstring of zoo/bench/optimisations.py for where each prediction comes from."],  # fmt: skip
    )
    device = torch.device(settings.device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    for opt in optimisations or OPTIMISATIONS:
        sides = []
        for _, build in (opt.baseline, opt.optimised):
            torch.manual_seed(0)
            model = build().to(device).train()
            sides.append((model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)))
        predicted = opt.predicted
        if predicted is None:
            predicted = ratio(flops_per_image(sides[0][0], (1, 28, 28)), flops_per_image(sides[1][0], (1, 28, 28)))
        for model, optimizer in sides:  # warm-up: allocator, oneDNN primitive caches
            _steps(model, optimizer, x, y, 2)
        seconds: list[list[float]] = [[], []]
        for _ in range(max(1, settings.repeats)):
            for i, (model, optimizer) in enumerate(sides):
                seconds[i].append(_steps(model, optimizer, x, y, steps))
        base, fast = (ratio(batch * steps, median(s)) for s in seconds)
        table.ratios[opt.name] = ratio(fast, base)
        table.rows.append({
            "optimisation": f"{opt.name}: {opt.baseline[0]} -> {opt.optimised[0]}", "baseline img/s": base,
            "optimised img/s": fast, "predicted": f"{predicted:.2f}x", "basis": opt.basis, "measured": f"{ratio(fast, base):.2f}x",
        })  # fmt: skip
    return table
