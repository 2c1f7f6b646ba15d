"""The code blocks of README.md and docs/ run, or say why not.

A block runs unless the line before it is ``<!-- not run: <why> -->``: ``python`` blocks are executed in this
process, in a scratch folder holding the images they name; ``bash`` blocks run in a subprocess from the
repository root. Any other block (output, a file layout) must carry the comment. The README's Quickstart is
the one exception: tests/docs/test_readme.py checks its two commands and CI (.ci/run) runs the second.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[^\s`]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
NOT_RUN = re.compile(r"^<!-- not run: (?P<why>\S.*\S) -->$")
IMAGES = ("shoe.png", "shirt.png", "boot.png")  # the file names the runnable blocks use for "your image"


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    body: str
    not_run: str | None  # the reason, when the block is marked not run
    quickstart: bool

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    quickstart = (0, 0)
    if page.name == "README.md" and "\n## Quickstart\n" in text:
        start = text.index("\n## Quickstart\n")
        end = text.find("\n## ", start + 1)
        quickstart = (start, end if end != -1 else len(text))
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip().splitlines()
        mark = NOT_RUN.match(before[-1].strip()) if before else None
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, m.start()) + 1,
                lang=m.group("lang"),
                body=m.group("body"),
                not_run=mark.group("why") if mark else None,
                quickstart=quickstart[0] <= m.start() < quickstart[1],
            )
        )
    return found


ALL = [b for page in PAGES for b in blocks(page)]
RUN = [b for b in ALL if b.not_run is None and not b.quickstart]


def test_the_pages_have_blocks_and_some_run():
    assert len(ALL) > 40 and len(RUN) >= 5


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.id)
def test_every_block_runs_or_says_why_not(block):
    if block.quickstart or block.not_run:
        return
    assert block.lang in ("python", "bash"), (
        f"{block.id}: a ```{block.lang or ''} block is neither run nor marked: put `<!-- not run: why -->` on the line before it"
    )


def test_every_not_run_comment_sits_right_before_a_block():
    marked = {(b.page, b.line) for b in ALL if b.not_run}
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("<!-- not run"):
                assert NOT_RUN.match(line.strip()), f"{page}:{i + 1}: write <!-- not run: why -->"
                nxt = next(j for j in range(i + 1, len(lines)) if lines[j].strip())
                assert (page, nxt + 1) in marked, f"{page}:{i + 1}: no code block follows the comment"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A working folder with small grey images under the names the blocks use."""
    rng = np.random.default_rng(0)
    for name in IMAGES:
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("block", [b for b in RUN if b.lang == "python"], ids=lambda b: b.id)
def test_python_block_runs(block, scratch):
    code = compile(block.body, block.id, "exec")
    exec(code, {"__name__": "__docs__"})


@pytest.mark.parametrize("block", [b for b in RUN if b.lang == "bash"], ids=lambda b: b.id)
def test_bash_block_runs(block):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", block.body], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
