"""The shipped entries whose training takes about two minutes or less are trained again with the manifest's
exact command, and the test metric that the command prints is the recorded one within its tolerance.

README.md's Quickstart output is generated from ``lenet5.digits`` (``zoo.tools.results_tables``); its rerun
also checks the lines after the test table: the checkpoint that validation chose, with its score. When a
code change moves one of these results, the entry is exported again (``zoo-export --force``) or the change
is reverted.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.hub.manifest import SHIPPED_DIR
from zoo.hub.pretrained import read_manifest
from zoo.tools.results_tables import QUICKSTART_ENTRY, quickstart_lines

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {e["name"]: e for e in read_manifest(SHIPPED_DIR / "manifest.json")["weights"]}
QUICK_S = 130  # "about two minutes": the recorded wall time of the training command
# ...and these, whose commands take well under two minutes on a quiet 2-core CPU even where the recorded wall
# time was measured beside other work
ALWAYS = {"lenet5.digits", "dqn.cartpole", "lstm_forecaster.co2"}
QUICK = sorted(n for n, e in SHIPPED.items() if n in ALWAYS or (e["reproduce"].get("wall_time_s") or float("inf")) <= QUICK_S)


def printed_metric(output: str, name: str) -> float:
    """The value of ``name`` in the test table that ``train.py`` prints (a rich table, or plain columns)."""
    found = re.findall(rf"(?<![\w/]){re.escape(name)}\s*[│|]?\s+([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", output)
    assert found, f"the command printed no {name}:\n{output[-3000:]}"
    return float(found[-1])


def test_the_quick_entries_include_the_quickstart():
    assert QUICKSTART_ENTRY in QUICK, f"the Quickstart's entry {QUICKSTART_ENTRY} must stay a command of two minutes or less"


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("name", QUICK)
def test_the_manifest_command_reproduces_the_entry(name, tmp_path):
    entry = SHIPPED[name]
    argv = shlex.split(entry["reproduce"]["command"])
    assert argv[:3] == ["python", "train.py", "fit"], f"{name}: not a train.py command: {argv}"
    run_dir = tmp_path / "run"
    argv = [sys.executable, str(REPO / "train.py"), *argv[2:], "--trainer.default_root_dir", str(run_dir)]
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    metric = entry["metric"]
    measured = printed_metric(output, metric["name"])
    assert abs(measured - metric["value"]) <= metric["tolerance"], (
        f"{name}: `{entry['reproduce']['command']}` printed {metric['name']} {measured}, the manifest says "
        f"{metric['value']} +- {metric['tolerance']}: export the entry again, or revert what moved it"
    )
    if name == QUICKSTART_ENTRY:  # README.md's Quickstart output, generated from this entry, is what prints
        for line in quickstart_lines(entry, root_dir=f"{run_dir}/lightning_logs/version_0"):
            assert line in output.splitlines(), f"README's Quickstart promises {line!r}; the command printed:\n{output[-2000:]}"
