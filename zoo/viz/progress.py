"""Progress bars for the zoo's long loops outside Lightning's own (downloads, FGSM tables, GAN metrics, agent evaluation).

``progress_bar`` is tqdm (a Lightning dependency) writing to standard error: shown on a terminal, hidden
when standard error is not one (logs, pipes, CI), and forced on or off with ``progress=True`` / ``False``.
Downloads already show one: torchvision's ``download_url`` (the datasets), ``torch.hub.download_url_to_file``
(ImageNet weights, ``progress=True``) and ``zoo.hub.download`` (the zoo's own weights, this bar).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

__all__ = ["loop_progress", "progress_bar", "show_progress"]


def show_progress(progress: bool | None) -> bool:
    """``progress`` when it is True or False; None: whether standard error is a terminal."""
    if progress is not None:
        return bool(progress)
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    unit_scale: bool = False,
    progress: bool | None = None,
) -> tqdm:
    """A tqdm bar on standard error over ``iterable`` (or updated by hand up to ``total``).

    Args:
        iterable: what to iterate over; None for a bar advanced with ``update(n)``.
        total: number of items (default: ``len(iterable)`` when it has one).
        desc: the label in front of the bar.
        unit: what one item is ("batch", "episode", "image", "B").
        unit_scale: counts with k, M, G prefixes (a download's bytes: "6.76MB").
        progress: True shows the bar, False hides it, None shows it on a terminal only.
    """
    return tqdm(
        iterable, total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr,
        disable=not show_progress(progress), leave=False, dynamic_ncols=True,
    )  # fmt: skip


def loop_progress(progress: bool | None, trainer: Any) -> bool:
    """``show_progress`` for a bar inside one of Lightning's loops: None also hides it while a rich progress
    bar is live (rich would print every redraw of the tqdm bar as a line of its own)."""
    if progress is not None:
        return bool(progress)
    from lightning.pytorch.callbacks import RichProgressBar

    return show_progress(None) and not isinstance(getattr(trainer, "progress_bar_callback", None), RichProgressBar)
