"""The generated blocks of README.md and the docs site: the model table, the recipes table and the model cards.

``python -m zoo.tools.model_card`` rewrites every block listed in ``TARGETS`` and ``--check`` exits 1 when
one differs. A block sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; nothing outside the
markers is touched.

- README.md and docs/index.md, ``models``: every ``zoo.list_models()`` name with its public class ``zoo.<Class>`` and its
  family, linking to the family's page;
- docs/guides/training.md, ``recipes``: every ``configs/*.yaml`` with the model and the data it names;
- docs/guides/pretrained.md, ``model-card``: the table of shipped weights (``render``);
- docs/model-cards.md, ``model-cards``: one card per entry of the manifest (``zoo/hub/shipped/manifest.json``);
- README.md ``quickstart-output``, docs/guides/training.md ``recipe-results`` and the family pages' ``results``:
  result figures, from the manifest (``zoo.tools.results_tables``);
- docs/guides/fine-tuning.md, ``finetune-strategies``: the fine-tuning strategies' table, from the results file
  ``docs/results/finetune_strategies.json`` that ``python -m zoo.bench.finetune_strategies`` writes, and
  ``finetune-one-epoch``: the shipped start against scratch after one epoch, from ``docs/results/finetune_one_epoch.json``;
- docs/models/adversarial.md, ``robustness``: accuracy under attack, from the results file
  ``docs/results/robustness.json`` that ``python -m zoo.tools.robustness`` writes;
- docs/models/text.md, ``label-efficiency``: BERT's label-efficiency curve, from ``docs/results/bert_label_efficiency.json``;
- docs/models/self-supervised.md, ``feature-eval`` and ``simclr-label-efficiency``: frozen encoders' linear probe and k-NN,
  from ``docs/results/feature_eval.json``, and the labels SimCLR saves, from ``docs/results/simclr_label_efficiency.json``
  (``zoo.tools.self_supervised_tables``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import zoo
from zoo.hub.download import WEIGHTS_URL
from zoo.tools.results_tables import format_value as _value
from zoo.tools.results_tables import (
    FINETUNE_ONE_EPOCH_RESULTS,
    ROBUSTNESS_RESULTS,
    render_finetune_strategies,
    render_label_efficiency,
    render_quickstart,
    render_recipe_results,
    render_robustness,
)
from zoo.tools.self_supervised_tables import render_feature_eval, render_simclr_label_efficiency

__all__ = [
    "END",
    "FAMILIES",
    "START",
    "TARGETS",
    "Target",
    "family_of",
    "format_metric",
    "marker",
    "render",
    "render_model_cards",
    "render_model_table",
    "render_recipes",
    "replace_block",
    "replace_card_block",
    "update",
]

START = "<!-- model-card:start -->"
END = "<!-- model-card:end -->"

_HEADER = "| name | architecture | dataset | metric | params | size | hardware | reproduce |\n|---|---|---|---|---|---|---|---|"


def format_metric(entry: dict[str, Any]) -> str:
    """``test/acc 93.12%``, plus the last-value baseline of a forecaster, the judge of a GAN, and the target
    when it was not reached."""
    m = entry["metric"]
    text = f"{m['name']} {_value(m['name'], m['value'])}"
    if "baseline" in m:
        text += f" (last-value forecast: {_value(m['name'], m['baseline']['value'])})"
    if "elbo" in m:
        text += f" (ELBO {_value('test/elbo', m['elbo'])})"
    if "judge" in m:
        text += f", judged by `{m['judge']['name']}`"
    target = entry.get("target")
    if target and not target.get("reached"):
        reference = f"; {target['reference']}" if target.get("reference") else ""
        text += f"; target {_value(m['name'], target['value'])} not reached{reference}"
    return text


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "wall time not recorded"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{max(1, minutes)} min"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(manifest: dict[str, Any]) -> str:
    """The Markdown table of ``manifest``'s entries (sorted by name), or a line saying none ship yet."""
    entries = sorted(manifest.get("weights", []), key=lambda e: e["name"])
    if not entries:
        return "No weights ship yet: the manifest lists none."
    rows = [_HEADER]
    for e in entries:
        r = e["reproduce"]
        chosen = r.get("checkpoint_epoch", r["epochs"])
        at = f", checkpoint of epoch {chosen}" if chosen != r["epochs"] else ""
        reproduce = f"`{r['command']}` ({r['epochs']} epochs{at}, {_duration(r.get('wall_time_s'))})"
        cells = [
            f"`{e['name']}`",
            f"`{e['arch']}` (`zoo.{e['zoo_class']}`)",
            f"{e['dataset']['name']}; {e['dataset']['license']}",
            format_metric(e),
            f"{e['params']:,}",
            _size(e["size_bytes"]),
            r["hardware"],
            reproduce,
        ]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def replace_card_block(readme: str, block: str) -> str:
    """``readme`` with the text between the shipped-weights table's markers (``START``, ``END``) replaced by ``block``."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError(f"the page needs exactly one {START} ... {END} block")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"



# Family page (relative to docs/) and title, and the public classes zoo.<Class> that belong to it. A model
# whose class is in no family fails the check: give it a family (and a page) when you add it.
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "vision": (
        "models/vision.md",
        "vision classifiers",
        ("MLP", "LeNet5", "SimpleCNN", "AlexNet", "AlexNetSmall", "VGG", "ResNet", "ResNet9", "WideResNet",
         "GoogLeNet", "DenseNet", "VisionTransformer"),
    ),
    "sequence": (
        "models/sequence.md",
        "sequence models",
        ("RecurrentClassifier", "LSTMForecaster", "Seq2Seq", "Transformer", "TransformerClassifier"),
    ),
    "text": ("models/text.md", "text: BERT", ("BertForMaskedLM", "BertClassifier")),
    "generative": ("models/generative.md", "generative", ("Autoencoder", "ConvAutoencoder", "VAE", "GAN", "DCGAN")),
    "self-supervised": ("models/self-supervised.md", "self-supervised", ("SimCLR",)),
    "rl": ("models/reinforcement-learning.md", "reinforcement learning", ("DQN",)),
    "regression": ("models/regression.md", "regression", ("LinearRegression",)),
}


def marker(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(text: str, name: str, block: str) -> str:
    """``text`` with the lines between the ``name`` markers replaced by ``block``."""
    start, end = marker(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"the page needs exactly one {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def family_of(cls: type) -> str:
    """The family key of a public zoo class, from ``FAMILIES``."""
    for key, (_, _, classes) in FAMILIES.items():
        if cls.__name__ in classes:
            return key
    raise ValueError(f"zoo.{cls.__name__} belongs to no family: add it to FAMILIES in {__name__}")


def render_model_table(link_prefix: str) -> str:
    """The README's table: every registered name, its class ``zoo.<Class>`` and its family page."""
    rows = ["| registry name | class | family |", "|---|---|---|"]
    for name in zoo.list_models():
        cls = zoo.get_model_class(name)
        if getattr(zoo, cls.__name__, None) is not cls:
            raise ValueError(f"{name}: its class {cls.__name__} is not the public zoo.{cls.__name__}")
        page, title, _ = FAMILIES[family_of(cls)]
        rows.append(f"| `{name}` | `zoo.{cls.__name__}` | [{title}]({link_prefix}{page}) |")
    return "\n".join(rows)


def _short(class_path: str | None) -> str:
    return f"`{class_path}`" if class_path else "—"


def render_recipes(configs: Path) -> str:
    """The recipes table: every ``configs/*.yaml``, the model and data classes it names, its epochs."""
    rows = ["| recipe | model | data | epochs | command |", "|---|---|---|---|---|"]
    for path in sorted(configs.glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        model, data = config.get("model") or {}, config.get("data") or {}
        model = model.get("class_path") if isinstance(model, dict) else model
        data = data.get("class_path") if isinstance(data, dict) else data
        epochs = (config.get("trainer") or {}).get("max_epochs", "—")
        command = f"`python train.py fit --config configs/{path.name}`"
        rows.append(f"| `{path.stem}` | {_short(model)} | {_short(data)} | {epochs} | {command} |")
    return "\n".join(rows)


def _family_link(class_name: str) -> str:
    cls = getattr(zoo, class_name, None)
    if not isinstance(cls, type):
        return ""
    page, title, _ = FAMILIES[family_of(cls)]
    return f" ([{title}]({page}))"


def render_model_cards(manifest: dict[str, Any]) -> str:
    """One card (a heading and a table of facts) per shipped entry, sorted by name."""

    entries = sorted(manifest.get("weights", []), key=lambda e: e["name"])
    if not entries:
        return "No weights ship yet: the manifest lists none."
    cards = []
    for e in entries:
        r = e["reproduce"]
        chosen = r.get("checkpoint_epoch", r["epochs"])
        epochs = f"{r['epochs']}" + (f" (checkpoint of epoch {chosen})" if chosen != r["epochs"] else "")
        target = e.get("target")
        facts = [
            ("architecture", f"`{e['arch']}`, class `zoo.{e['zoo_class']}`{_family_link(e['zoo_class'])}"),
            ("load", f"`zoo.load_pretrained(\"{e['name']}\")`"),
            ("dataset", f"{e['dataset']['name']} ({e['dataset'].get('split', 'test split')}); license {e['dataset']['license']}"),
            ("test metric", format_metric({k: v for k, v in e.items() if k != "target"})),
            ("tolerance of CI's re-measurement", f"{e['metric'].get('tolerance', '—')}"),
        ]
        if target:
            reached = "reached" if target.get("reached") else "not reached"
            value = _value(e["metric"]["name"], target["value"])
            facts.append(("target", f"{value} ({reached})" + (f"; {target['reference']}" if target.get("reference") else "")))
        facts += [
            ("parameters", f"{e['params']:,}"),
            ("files", f"`{e['file']}` ({_size(e['size_bytes'])}), `{e['config_file']}`"),
            ("download", f"<{WEIGHTS_URL}{e['file']}> (on first use, into the cache)"),
            ("SHA-256", f"`{e['sha256']}`"),
            ("reproduce", f"`{r['command']}`"),
            ("epochs", epochs),
            ("wall time", _duration(r.get("wall_time_s"))),
            ("hardware", r["hardware"]),
            ("versions", f"torch {r.get('torch', '?')}, lightning {r.get('lightning', '?')}"),
            ("date", str(r.get("date", "—"))),
        ]
        if e.get("notes"):
            facts.append(("notes", e["notes"]))
        table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in facts)])
        cards.append(f"## `{e['name']}`\n\n{table}")
    return "\n\n".join(cards)


@dataclass(frozen=True)
class Target:
    """One generated block: the file (relative to the repository root), its marker name, and what renders it."""

    path: str
    name: str
    render: Callable[[Path, dict[str, Any]], str]


def _shipped_table(root: Path, manifest: dict[str, Any]) -> str:

    return render(manifest)


TARGETS: tuple[Target, ...] = (
    Target("README.md", "models", lambda root, manifest: render_model_table("docs/")),
    Target("docs/index.md", "models", lambda root, manifest: render_model_table("")),
    Target("docs/guides/training.md", "recipes", lambda root, manifest: render_recipes(root / "configs")),
    Target("docs/guides/pretrained.md", "model-card", _shipped_table),
    Target("docs/model-cards.md", "model-cards", lambda root, manifest: render_model_cards(manifest)),
    Target("README.md", "quickstart-output", lambda root, manifest: render_quickstart(manifest)),
    Target("docs/guides/training.md", "recipe-results", lambda root, manifest: render_recipe_results(manifest)),
    Target("docs/models/sequence.md", "results", lambda root, manifest: render_recipe_results(manifest, FAMILIES["sequence"][2])),
    Target("docs/models/vision.md", "results", lambda root, manifest: render_recipe_results(manifest, FAMILIES["vision"][2])),
    Target("docs/models/generative.md", "results", lambda root, manifest: render_recipe_results(manifest, FAMILIES["generative"][2])),
    Target("docs/models/reinforcement-learning.md", "results", lambda root, manifest: render_recipe_results(manifest, FAMILIES["rl"][2])),
    Target("docs/guides/fine-tuning.md", "finetune-strategies", lambda root, manifest: render_finetune_strategies(root)),
    Target("docs/guides/fine-tuning.md", "finetune-one-epoch", lambda root, manifest: render_finetune_strategies(root, FINETUNE_ONE_EPOCH_RESULTS)),
    Target("docs/models/adversarial.md", "robustness", lambda root, manifest: render_robustness(root / ROBUSTNESS_RESULTS, manifest)),
    Target("docs/models/text.md", "label-efficiency", lambda root, manifest: render_label_efficiency(root)),
    Target("docs/models/self-supervised.md", "feature-eval", render_feature_eval),
    Target("docs/models/self-supervised.md", "simclr-label-efficiency", lambda root, manifest: render_simclr_label_efficiency(root)),
)


def update(root: Path, manifest: dict[str, Any], *, check: bool) -> list[Path]:
    """Rewrite (or, with ``check``, only compare) every target under ``root``; the files that differed."""
    stale = []
    for target in TARGETS:
        path = root / target.path
        text = path.read_text(encoding="utf-8")
        updated = replace_block(text, target.name, target.render(root, manifest))
        if updated != text:
            stale.append(path)
            if not check:
                path.write_text(updated, encoding="utf-8")
    return stale
