"""Comparison 5, inference: images per second of every registered classifier, eager vs ``torch.compile``.

Each classifier is built at its own size, the ImageNet networks as the model tests build them (narrow and
on small images: ``zoo.reduced.IMAGENET_REDUCED``), put in eval mode, and fed a random batch of its input shape (token ids for text
classifiers) under ``torch.no_grad``. Eager: one warm-up pass, then the median of ``repeats`` timed passes.
Compiled: ``model.compile()`` in place; the first pass (tracing and code generation included) is reported
as the compile time, then the median of ``repeats`` timed passes.

Peak memory, per model, over the eager passes (warm-up included) and apart over the compiled passes
(after the compiling first call):
* GPU: ``torch.cuda.max_memory_allocated`` minus the memory allocated before the passes (the caching
  allocator's tensors: activations, workspace);
* CPU: the growth of the process's peak resident set size (Linux ``VmHWM``, reset through
  ``/proc/self/clear_refs`` before each measurement) above its resident size before the passes. That counts
  every allocation the passes make (tensors, oneDNN workspaces), not just tensors, but not memory the
  allocator already holds from earlier models and reuses: a lower bound. Without a resettable peak (not
  Linux) the column is left empty.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

import zoo
from zoo.bench.profiling import maybe_profile
from zoo.bench.reduced_builds import reduced_kwargs
from zoo.bench.report import Table, median, plural, ratio
from zoo.bench.settings import BenchSettings

__all__ = ["classifier_names", "run_inference"]

def _build(name: str):
    return zoo.create_model(name, **reduced_kwargs(name, imagenet_only=True))  # the rest at their own size


def classifier_names() -> list[str]:
    """Every registered model that is a classifier (``zoo.ClassifierModule``)."""
    return [n for n in zoo.list_models() if issubclass(zoo.get_model_class(n), zoo.ClassifierModule)]


def _input(model, batch: int, device: torch.device) -> torch.Tensor:
    example = model.example_input_array
    shape = (batch, *example.shape[1:])
    g = torch.Generator().manual_seed(0)
    if not example.is_floating_point():  # token ids; 0 is padding
        return torch.randint(1, model.hparams.vocab_size, shape, generator=g).to(device)
    return torch.randn(shape, generator=g).to(device)


def _proc_status(field: str) -> int | None:
    """A ``/proc/self/status`` size in bytes (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class _PeakMemory:
    """Peak memory growth over a ``with`` block (see the module docstring); ``bytes`` is None when unmeasurable."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.bytes, self._base = device, None, None

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
                self._base = _proc_status("VmRSS")
            except OSError:
                self._base = None
        return self

    def __exit__(self, *exc) -> None:
        if self._base is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        elif (peak := _proc_status("VmHWM")) is not None:
            self.bytes = max(0, peak - self._base)


def _timed_passes(model, x: torch.Tensor, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        seconds.append(time.perf_counter() - start)
    return seconds


def _measure(name: str, settings: BenchSettings) -> dict:
    device = torch.device(settings.device)
    torch.manual_seed(0)
    model = _build(name).to(device).eval()
    x = _input(model, settings.inference_batch, device)
    batch, repeats = x.shape[0], max(1, settings.repeats)
    row = {"model": name, "input": "x".join(map(str, x.shape[1:]))}
    with torch.no_grad():
        with _PeakMemory(device) as memory:
            model(x)  # warm-up
            with maybe_profile(settings.profile, f"inference: {name}, eager"):
                eager = median(_timed_passes(model, x, repeats))
        row["eager img/s"] = ratio(batch, eager)
        row["eager peak MiB"] = _mib(memory.bytes)
        if settings.compile and (settings.compile_models is None or name in settings.compile_models):
            model.compile()  # in place: the state-dict keys stay the same
            start = time.perf_counter()
            model(x)  # the first call traces and generates code
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            row["compile s"] = time.perf_counter() - start
            with _PeakMemory(device) as memory:
                with maybe_profile(settings.profile, f"inference: {name}, compiled"):
                    compiled = median(_timed_passes(model, x, repeats))
            row["compiled img/s"] = ratio(batch, compiled)
            row["speed-up"] = ratio(eager, compiled)
            row["compiled peak MiB"] = _mib(memory.bytes)
    return row


def _mib(n: int | None) -> float | str:
    return n / 2**20 if n is not None else ""


def run_inference(settings: BenchSettings) -> Table:
    """Images/s of every classifier (or ``settings.models``) at ``settings.inference_batch``, eager and compiled."""
    names = settings.models or classifier_names()
    columns = ["model", "input", "eager img/s", "eager peak MiB"]
    if settings.compile:
        columns += ["compiled img/s", "speed-up", "compile s", "compiled peak MiB"]
    memory = "peak GPU memory above the start (max_memory_allocated)" if settings.device == "cuda" else (
        "growth of the process's peak RSS (Linux VmHWM, reset per measurement) over the passes")
    table = Table(
        name="inference",
        title=f"5. Inference: images/s at batch {settings.inference_batch}, eager vs torch.compile",
        columns=columns,
        notes=[f"Median of {plural(max(1, settings.repeats), 'pass', 'passes')} after a warm-up, under torch.no_grad, eval mode; "
               f"peak MiB: {memory}; ImageNet networks at their reduced sizes (zoo.reduced); compiled: "
               f"{'every model' if settings.compile_models is None else ', '.join(settings.compile_models)}."],  # fmt: skip
    )
    for name in names:
        row = _measure(name, settings)
        table.rows.append(row)
        table.ratios[f"{name}_eager_img_s"] = row["eager img/s"]
        if "speed-up" in row:  # compiled (settings.compile_models)
            table.ratios[f"{name}_compile_speedup"] = row["speed-up"]
    return table
