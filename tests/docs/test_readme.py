"""The README stays true: its Quickstart commands, CI's test command, its model table; and every recipe is in the docs."""

import re
from pathlib import Path

import zoo

REPO = Path(__file__).resolve().parents[2]
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


def generated_block(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]


def test_every_model_is_in_the_readme_model_table():
    table = generated_block(README, "models")
    for name in zoo.list_models():
        assert f"| `{name}` | `zoo.{zoo.get_model_class(name).__name__}` |" in table, name


def test_every_recipe_is_in_the_training_page():
    recipes = generated_block((REPO / "docs" / "guides" / "training.md").read_text(), "recipes")
    configs = sorted((REPO / "configs").glob("*.yaml"))
    assert configs
    for config in configs:
        assert f"configs/{config.name}" in recipes, config.name


def test_readme_stays_short_and_links_into_the_docs():
    assert len(README.splitlines()) <= 300
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (REPO / link).is_file(), link
