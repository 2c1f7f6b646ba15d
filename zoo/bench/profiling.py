"""``--profile``: run a comparison's timed section under torch.profiler and print its most expensive ops."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["maybe_profile"]


@contextlib.contextmanager
def maybe_profile(enabled: bool, label: str, *, row_limit: int = 15) -> Iterator[None]:
    """Profile the ``with`` body when ``enabled`` and print the top ``row_limit`` ops by self time.

    Args:
        enabled: profile at all (off: the body runs untouched).
        label: what the printed table is headed with.
        row_limit: how many ops to print.
    """
    if not enabled:
        yield
        return
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sort_by = "self_cuda_time_total" if len(activities) > 1 else "self_cpu_time_total"
    with torch.profiler.profile(activities=activities) as prof:
        yield
    print(f"\n--- torch.profiler: {label} (top {row_limit} ops by {sort_by}) ---", flush=True)
    print(prof.key_averages().table(sort_by=sort_by, row_limit=row_limit), flush=True)
