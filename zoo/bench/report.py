"""Tables, the machine's description and the BENCHMARKS.md writer shared by every comparison."""

from __future__ import annotations

import argparse

import datetime as _dt
import math
import os
import platform
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.evaluation.results_file import write_text
from zoo.tools.export import _cpu_name as cpu_name  # the CPU line the manifest rows record

__all__ = ["FIGURE", "KEEP_END", "KEEP_START", "ORDER", "Table", "analysis_block", "comma_floats", "comma_ints", "figure", "kept_analysis", "kept_tables", "kept_tables_text", "parse_tables", "refresh", "refresh_figures", "table_block", "machine_info", "median", "plural", "ratio", "render_markdown", "write_report"]


@dataclass
class Table:
    """One comparison's result: a titled table of rows, the ratios it is judged by, and notes.

    Args:
        name: the comparison's key (``overhead``, ``data``, ...).
        title: heading of the table.
        columns: column names, in order.
        rows: one dict per row, keyed by column name.
        ratios: the figures the comparison is judged by (``{"lenet5": 1.03}``): same-run time ratios.
        goal: what the ratios should reach, in words (``"<= 1.05x"``), or "".
        notes: sentences printed under the table (what is measured and how).
    """

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    goal: str = ""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in self.columns) + " |")
        lines.append("")
        if self.goal:
            lines.append(f"Goal: {self.goal}.")
        lines += self.notes
        return "\n".join(lines).rstrip() + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def comma_ints(value: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``: the ``type=`` of the benchmarks' seed options."""
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def comma_floats(value: str) -> list[float]:
    """``"0.01,0.1,1"`` -> ``[0.01, 0.1, 1.0]``: the ``type=`` of the benchmarks' options that list numbers (one at least)."""
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {value!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one number")
    return out


def median(values: list[float]) -> float:
    """The median of ``values`` (NaN for none)."""
    return statistics.median(values) if values else float("nan")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 epoch"``, ``"3 epochs"``."""
    return f"{n} {word if n == 1 else words or word + 's'}"


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when the denominator is not a positive number."""
    return numerator / denominator if denominator > 0 else float("nan")


def machine_info(device: str = "cpu") -> dict[str, str]:
    """What the figures depend on: machine, CPU model, cores, threads, accelerator and library versions."""
    import lightning
    import torch
    import torchvision

    info = {
        "date (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} ({platform.platform()})",
        "CPU": cpu_name(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torchvision": torchvision.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load average at start"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    if device == "cuda" and torch.cuda.is_available():
        info["GPU"] = torch.cuda.get_device_name(0)
    return info


#: The order tables appear in, whichever runs measured them.
ORDER = ("overhead", "data", "accuracy", "dqn", "inference", "optim")


def table_block(table: Table, command: str, date: str) -> str:
    """One table as it stands in BENCHMARKS.md: a marker naming it, the table, and the run that measured it."""
    return f"<!-- table:{table.name} -->\n{table.markdown()}\nMeasured by `{command}` ({date} UTC).\n"


def kept_tables(path: Path) -> dict[str, str]:
    """The table blocks (``table_block``) of the file at ``path``, by comparison name."""
    return kept_tables_text(path.read_text(encoding="utf-8")) if path.is_file() else {}


def kept_tables_text(text: str) -> dict[str, str]:
    """The table blocks (``table_block``) of a BENCHMARKS.md text, by comparison name."""
    pattern = r"<!-- table:(\w+) -->\n.*?(?=<!-- table:|<!-- analysis:start -->|\Z)"
    return {m.group(1): m.group(0).rstrip() + "\n" for m in re.finditer(pattern, text, flags=re.DOTALL)}


def render_markdown(tables: list[Table], info: dict[str, str], command: str, kept: dict[str, str] | None = None) -> str:
    """BENCHMARKS.md: the machine and versions, then every table (this run's, and ``kept`` blocks of earlier
    runs for the comparisons this one did not run), each followed by the command that measured it."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m zoo.bench`; every ratio compares two timings taken in the same run, and each table",
        "names the command that measured it. A run of some comparisons (`--only`) keeps the others' tables.",
        "",
        f"Latest command: `{command}`",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines.append("")
    blocks = dict(kept or {})
    blocks.update({t.name: table_block(t, command, info.get("date (UTC)", "")) for t in tables})
    names = [n for n in ORDER if n in blocks] + [n for n in blocks if n not in ORDER]
    lines += [blocks[n] for n in names]
    return "\n".join(lines).rstrip() + "\n"


#: A block of the existing file between these markers is written people's analysis of the figures: kept,
#: at the end, when the tables are rewritten.
KEEP_START, KEEP_END = "<!-- analysis:start -->", "<!-- analysis:end -->"


def kept_analysis(path: Path) -> str:
    """The ``KEEP_START`` ... ``KEEP_END`` block of the file at ``path`` (markers included), or ""."""
    return analysis_block(path.read_text(encoding="utf-8")) if path.is_file() else ""


def analysis_block(text: str) -> str:
    """The ``KEEP_START`` ... ``KEEP_END`` block of a BENCHMARKS.md text (markers included), or ""."""
    start, end = text.find(KEEP_START), text.find(KEEP_END)
    return text[start : end + len(KEEP_END)] if 0 <= start < end else ""


#: A measured figure quoted in the analysis block: ``<span data-figure="TABLE|KEY|...|COLUMN[|pct]">VALUE</span>``.
#: TABLE is a comparison's name, the KEYs match a row's first cells in order, COLUMN names the cell; ``pct``
#: shows a fraction as a percentage with one decimal. ``refresh_figures`` rewrites every VALUE from the tables.
FIGURE = re.compile(r'<span data-figure="([^"]+)">(.*?)</span>')


def parse_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """The rows of every table block in a BENCHMARKS.md text, by comparison name: one ``{column: cell}`` per row."""
    tables: dict[str, list[dict[str, str]]] = {}
    for name, block in kept_tables_text(text).items():
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if len(lines) < 2:
            continue
        cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
        header, rows = cells[0], cells[2:]  # cells[1]: the |---| line
        tables[name] = [dict(zip(header, row)) for row in rows]
    return tables


def figure(tables: dict[str, list[dict[str, str]]], reference: str) -> str:
    """The cell that ``reference`` (``TABLE|KEY|...|COLUMN[|pct]``) names, as the analysis quotes it."""
    parts = reference.split("|")
    as_percent = parts[-1] == "pct"
    if as_percent:
        parts = parts[:-1]
    if len(parts) < 2 or parts[0] not in tables:
        raise ValueError(f"figure {reference!r}: no table {parts[0]!r} (tables: {', '.join(tables) or 'none'})")
    name, keys, column = parts[0], parts[1:-1], parts[-1]
    rows = [row for row in tables[name] if list(row.values())[: len(keys)] == keys]
    if len(rows) != 1 or column not in rows[0]:
        raise ValueError(f"figure {reference!r}: {len(rows)} rows of table {name!r} start with {keys}, and the column must be one of theirs")
    value = rows[0][column]
    return f"{100 * float(value.replace(',', '')):.1f}%" if as_percent else value


def refresh_figures(analysis: str, tables: dict[str, list[dict[str, str]]]) -> str:
    """``analysis`` with every quoted figure (``FIGURE``) set to what the tables now say."""
    return FIGURE.sub(lambda m: f'<span data-figure="{m.group(1)}">{figure(tables, m.group(1))}</span>', analysis)


def write_report(path: str | Path, tables: list[Table], info: dict[str, str], command: str) -> Path:
    """Write ``render_markdown(...)`` to ``path`` (atomically: a temporary file, then a rename), keeping
    the file's analysis block (``kept_analysis``) at the end with its quoted figures refreshed from the tables."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    text = render_markdown(tables, info, command, kept_tables_text(old))
    if analysis := analysis_block(old):
        text += "\n" + refresh_figures(analysis, parse_tables(text)) + "\n"
    return write_text(path, text)


def refresh(path: str | Path) -> Path:
    """Rewrite the quoted figures of the analysis block of the file at ``path`` from its tables (nothing is measured)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if analysis := analysis_block(text):
        write_text(path, text.replace(analysis, refresh_figures(analysis, parse_tables(text))))
    return path
