"""The code blocks of README.md and docs/ run, or say why not.

A block runs unless the line before it is ``<!-- not run: <why> -->``: ``python`` blocks are executed in this
process, in a scratch folder holding the images they name, and an expression whose line ends in a literal
comment (``zoo.list_models("resnet*")  # ['resnet18', ...]``) must give that value (``[a, b, ..., z]``: the list
starts with a, b and ends with z); ``bash`` blocks run in a subprocess from the repository root. Any other block (output, a file layout) must carry the comment. The README's Quickstart is
the one exception: tests/docs/test_readme.py checks its two commands and CI (.ci/run) runs the second.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
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


_NO_LITERAL = object()


def comment_literals(source: str) -> dict[int, object]:
    """Line number -> the value of a trailing comment that is a list, string, number or bool literal."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            try:
                value = ast.literal_eval(token.string[1:].strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, (list, str, bool, int, float)):
                found[token.start[0]] = value
    return found


def assert_documented(value, expected, where: str) -> None:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(expected, list) and Ellipsis in expected:
        # [a, b, ..., z]: the value starts with a, b and ends with z; items between two ... appear in that order
        value, first, last = list(value), expected.index(Ellipsis), len(expected) - expected[::-1].index(Ellipsis)
        head, middle, tail = expected[:first], [e for e in expected[first:last] if e is not Ellipsis], expected[last:]
        rest = iter(value[len(head) : len(value) - len(tail)])
        shown = value[: len(head)] == head and value[len(value) - len(tail) :] == tail and all(any(v == e for v in rest) for e in middle)
        assert shown and len(value) >= len(head) + len(tail), f"{where}: {value!r} does not show {expected!r}"
    else:
        assert value == expected, f"{where}: the page says {expected!r}, the code gives {value!r}"


def run_python(body: str, name: str) -> int:
    """Execute ``body`` statement by statement, checking documented values; the number checked."""
    namespace, literals, checked = {"__name__": "__docs__"}, comment_literals(body), 0
    for node in ast.parse(body).body:
        expected = literals.get(node.end_lineno, _NO_LITERAL) if isinstance(node, ast.Expr) else _NO_LITERAL
        if expected is _NO_LITERAL:
            exec(compile(ast.Module([node], type_ignores=[]), name, "exec"), namespace)
            continue
        expr = node.value
        if isinstance(expr, ast.Call) and getattr(expr.func, "id", None) == "print" and len(expr.args) == 1:
            expr = expr.args[0]  # print(x)  # value: check x
        value = eval(compile(ast.Expression(expr), name, "eval"), namespace)
        assert_documented(value, expected, f"{name}, line {node.lineno}")
        checked += 1
    return checked


@pytest.mark.parametrize("block", [b for b in RUN if b.lang == "python"], ids=lambda b: b.id)
def test_python_block_runs(block, scratch):
    run_python(block.body, block.id)


def test_documented_values_are_checked():
    assert run_python("x = [1, 2, 3]\nx  # [1, ..., 3]\nlen(x)  # 3\nprint(x[0])  # 1\nx  # a list\n", "t") == 3
    with pytest.raises(AssertionError, match="the page says 4"):
        run_python("len([1, 2, 3])  # 4\n", "t")
    for wrong in ("[3, ..., 1]", "[2, ...]", "[..., 2]", "[1, 2, 3, 4, ...]"):
        with pytest.raises(AssertionError, match="does not show"):
            run_python(f"[1, 2, 3]  # {wrong}\n", "t")
    assert run_python("[1, 2, 3, 4]  # [1, ..., 3, ...]\n", "t") == 1


@pytest.mark.parametrize("block", [b for b in RUN if b.lang == "bash"], ids=lambda b: b.id)
def test_bash_block_runs(block):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", block.body], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
