"""Results files: the JSON that a measuring command writes and a docs page renders (``zoo.tools.docs_tables``).

    >>> row = {"source": "random:resnet20", "knn_acc": 0.70, **provenance("python -m zoo.evaluation.feature_eval random:resnet20")}  # doctest: +SKIP
    >>> write_row("docs/results/feature_eval.json", row, key=("source",))                                                       # doctest: +SKIP

A row says how it can be measured again: the exact command, the date, the machine and the library versions
(``provenance``). ``write_results`` writes a whole file; ``write_row`` keeps a file of rows keyed by some of their
fields: a new measurement replaces the row with the same key and leaves the others.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["cpu_name", "provenance", "write_results", "write_row"]


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def provenance(command: str, note: str = "") -> dict[str, Any]:
    """What a results file records about the run that measured it: ``command``, ``hardware`` (CPU, cores,
    OMP_NUM_THREADS, then ``note``), ``load_average_at_start``, ``date`` (UTC) and ``versions`` (python, torch, lightning).

    Args:
        command: the exact command line.
        note: appended to the hardware field (say, that the machine was shared).
    """
    import lightning
    import torch

    hardware = f"{cpu_name()}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return {
        "command": command,
        "hardware": hardware + (f"; {note}" if note else ""),
        "load_average_at_start": load,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "lightning": lightning.__version__},
    }


def write_row(path: str | os.PathLike, row: dict[str, Any], *, key: Sequence[str], rows: str = "entries") -> Path:
    """Put ``row`` into the list ``rows`` of the JSON file at ``path`` (created when absent), replacing the row
    whose ``key`` fields are equal; the list is sorted by those fields. Written whole, then renamed into place.

    Args:
        path: the results file.
        row: the new row.
        key: the fields that identify a row.
        rows: the name of the file's list of rows.
    """
    path = Path(path)
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def key_of(r: dict[str, Any]) -> tuple[str, ...]:
        return tuple(json.dumps(r.get(k)) for k in key)

    kept = [r for r in results.get(rows, []) if key_of(r) != key_of(row)]
    results[rows] = sorted([*kept, row], key=key_of)
    return write_results(path, results)


def write_results(path: str | os.PathLike, results: dict[str, Any]) -> Path:
    """Write ``results`` as the JSON file at ``path`` (its folder created), atomically (``write_text``)."""
    return write_text(path, json.dumps(results, indent=1) + "\n")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to the file at ``path`` (its folder created): whole, into a temporary file renamed into place,
    so a reader never sees half a file. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
