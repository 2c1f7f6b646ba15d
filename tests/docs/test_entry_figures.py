"""A figure that a page quotes next to a shipped entry's name is the manifest's, and a test file that a page names exists.

Prose cannot be generated everywhere; where a sentence or a table cell names a shipped entry (in backticks,
``resnet20.fashionmnist``) and then gives a percentage or a parameter count, this test holds it to the
manifest row: the entry's test metric (as a percentage, to the decimals the page prints) or its ``params``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zoo.hub.manifest import SHIPPED_DIR
from zoo.hub.pretrained import read_manifest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", REPO / "BENCHMARKS.md", REPO / "checkpoints" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SHIPPED = {e["name"]: e for e in read_manifest(SHIPPED_DIR / "manifest.json")["weights"]}

# the entry's name in backticks, then within the same table cell or clause (no | or ;) and 60 characters: a percentage or a count
PERCENT = re.compile(r"`(?P<name>[a-z0-9_]+\.[a-z0-9_]+)`[^|`%;]{0,60}?(?P<value>\d+(?:\.(?P<dec>\d+))?)%")
COUNT = re.compile(r"`(?P<name>[a-z0-9_]+\.[a-z0-9_]+)`[^|`;]{0,60}?(?P<value>\d{1,3}(?:,\d{3})+) param")


def quoted_figures() -> list[tuple[str, int, str, str, str]]:
    """(page, line number, kind, entry, figure as printed) for every figure quoted after an entry's name."""
    found = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for kind, pattern in (("percent", PERCENT), ("count", COUNT)):
                for m in pattern.finditer(line):
                    if m["name"] in SHIPPED:
                        found.append((str(page.relative_to(REPO)), number, kind, m["name"], m["value"]))
    return found


def test_the_scan_finds_the_pages_quotes():
    """The guard is live: the self-supervised page quotes the classifier entry that it compares with."""
    assert any(entry == "resnet20.fashionmnist" and kind == "percent" for _, _, kind, entry, _ in quoted_figures())


@pytest.mark.parametrize(("page", "line", "kind", "entry", "figure"), quoted_figures())
def test_a_figure_quoted_next_to_an_entry_is_the_manifests(page, line, kind, entry, figure):
    row = SHIPPED[entry]
    if kind == "count":
        assert int(figure.replace(",", "")) == row["params"], f"{page}:{line}: {entry} has {row['params']:,} parameters, the page says {figure}"
        return
    decimals = len(figure.split(".")[1]) if "." in figure else 0
    expected = f"{100 * row['metric']['value']:.{decimals}f}"
    assert figure == expected, f"{page}:{line}: {entry}'s {row['metric']['name']} is {expected}% in the manifest, the page says {figure}%"


def test_every_test_file_a_page_or_docstring_names_exists():
    """Pages and docstrings point readers at the tests that prove a claim; the path must still be there."""
    sources = [*PAGES, *sorted((REPO / "configs").glob("*.yaml")), *sorted((REPO / "zoo").rglob("*.py")),
               *sorted((REPO / "datamodules").rglob("*.py"))]  # fmt: skip
    named = {(str(p.relative_to(REPO)), m) for p in sources for m in re.findall(r"tests/[A-Za-z0-9_/]*\.py", p.read_text(encoding="utf-8"))}
    assert len(named) > 20  # the scan sees the pages' references
    missing = sorted(f"{page}: {path}" for page, path in named if not (REPO / path).is_file())
    assert not missing, "pages name test files that do not exist:\n" + "\n".join(missing)
