"""The README stays true: its Quickstart commands, CI's test command, and its model and recipe tables."""

import re
from pathlib import Path

import zoo

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [b.strip() for b in blocks if b.strip()]


def test_quickstart_has_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    config = re.search(r"--config (\S+)", commands[0]).group(1)
    assert (REPO / config).is_file()


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert quickstart_commands()[1] in ci_lines
    assert ci_lines[-1] == "python -m pytest -m slow"  # after it, in its venv: the slow recipe runs
    assert "export ZOO_REQUIRE_REAL_DATA=1" in ci_lines
    assert any("apt-get install -y dataset-fashion-mnist" in ln for ln in ci_lines)


def test_every_model_and_recipe_is_in_the_readme():
    for name in zoo.list_models():
        assert f"| `{name}` |" in README, name
    for config in (REPO / "configs").glob("*.yaml"):
        assert f"configs/{config.name}" in README, config.name
