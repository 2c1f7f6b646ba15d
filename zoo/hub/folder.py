"""Hugging Face folders: ``model.save_pretrained(folder)``, ``Model.from_pretrained(folder or repo id)``, ``push_to_hub``.

    >>> model.save_pretrained("lenet5-digits", metrics={"test/acc": 0.975})     # doctest: +SKIP
    >>> model = zoo.LeNet5.from_pretrained("lenet5-digits")                      # doctest: +SKIP
    >>> model = zoo.ZooModule.from_pretrained("someone/lenet5-digits")           # doctest: +SKIP  (huggingface_hub)

The layout is huggingface_hub's ``PyTorchModelHubMixin``'s, so the Hub's tools (``snapshot_download``,
``upload_folder``, the model page) take it as it is:

``config.json``        the constructor arguments at the top level, and under ``"zoo"`` what the zoo needs
                       besides: its format, the class, the registry name, the preprocessing (input shape,
                       normalization, class names), the weight averaging the weights hold, the card's SHA-256
``model.safetensors``  the state dict, training progress (``ZooModule.training_state``) left out
``README.md``          a model card written from the metrics the caller passes

Loading follows the rule of every zoo loader (docs/guides/security.md): the class named in ``config.json`` is
looked up among the zoo's own classes (``resolve_model_class``), never imported; the arguments are checked by
``build_from_file``; the tensors are read by safetensors. ``save_pretrained`` into a folder that already holds a
``config.json``, ``model.safetensors`` or ``README.md`` it did not write (or a card edited since) refuses, and
replaces only the three files it writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from zoo.core.base import ZooModule
from zoo.core.module import provide_folder_io
from zoo.core.registry import get_model_class, list_models
from zoo.hub.checkpoint import resolve_model_class
from zoo.hub.pretrained import (
    PretrainedWeightsUnavailable,
    _build_and_load,
    _is_training_state,
    _write_atomic,
    clean_hparams,
    load_pretrained,
    pretrained_entry,
)

__all__ = ["CARD_NAME", "CONFIG_NAME", "WEIGHTS_NAME", "load_folder", "push_folder", "save_entry_folder", "save_folder"]

CONFIG_NAME, WEIGHTS_NAME, CARD_NAME = "config.json", "model.safetensors", "README.md"
FORMAT = 1
#: A Hub repository id: "owner/name" (letters, digits, "-", "_", ".").
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_AVERAGING = (None, "ema", "swa", "unknown")  # "unknown": averaged by a callback that did not record how


# -- what config.json records ------------------------------------------------------------------------------
def _preprocessing(model: ZooModule) -> dict[str, Any]:
    """How one raw sample becomes one input: the input shape, and for image models their ``transforms()``."""
    out: dict[str, Any] = {}
    try:
        out["input_shape"] = [int(d) for d in model.input_shape]
    except (NotImplementedError, ValueError, AttributeError):
        pass
    transforms = getattr(model, "transforms", None)
    if callable(transforms):
        try:
            t = transforms()
        except ValueError:  # not square images: the arguments below still say everything
            t = None
        if t is not None:
            out.update(crop_size=t.crop_size, resize_size=t.resize_size, channels=t.channels, mean=t.mean, std=t.std)
    class_names = model.hparams.get("class_names")
    if class_names is not None:
        out["class_names"] = [str(c) for c in class_names]
    return out


def _check_rebuilds(model: ZooModule, hparams: dict[str, Any]) -> None:
    cls = type(model)
    if resolve_model_class(cls.__name__) is not cls:
        raise ValueError(f"{cls.__qualname__} is not a zoo model class that the loader can find by its name")
    rebuilt = {k: tuple(v.shape) for k, v in cls(**hparams).state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if rebuilt != actual:
        diff = sorted(set(rebuilt.items()) ^ set(actual.items()))[:6]
        raise ValueError(f"{cls.__name__}(**hparams) does not rebuild this model's state dict (differs at {diff}); not saved")


def _card(model: ZooModule, arch: str | None, metrics: dict[str, float], averaging: str | None, preprocessing: dict[str, Any]) -> str:
    cls = type(model).__name__
    summary = (type(model).__doc__ or "").strip().splitlines()[0] if type(model).__doc__ else ""
    params = sum(p.numel() for p in model.parameters())
    lines = [
        "---",
        "library_name: lightning-zoo",
        "tags:",
        *(f"- {t}" for t in ("lightning-zoo", "pytorch", "model_hub_mixin", "pytorch_model_hub_mixin", *([arch] if arch else []))),
        "---",
        "",
        f"# {arch or cls} ({cls})",
        "",
        summary,
        "",
        "## Metrics",
        "",
    ]
    if metrics:
        lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.6g} |" for k, v in metrics.items()), ""]
    else:
        lines += ["No metrics were given when these weights were saved.", ""]
    averaged = {"ema": "an exponential moving average (EMA)", "swa": "a stochastic weight average (SWA)", "unknown": "an average"}.get(averaging or "")
    lines += [
        "## Model",
        "",
        f"- class: `zoo.{cls}`" + (f", registry name `{arch}`" if arch else ""),
        f"- parameters: {params:,}",
        f"- weights: {averaged} of the training weights" if averaged else "- weights: the training weights (not averaged)",
        f"- input shape: {tuple(preprocessing['input_shape'])}" if "input_shape" in preprocessing else "- input shape: see config.json",
        "",
        "The constructor arguments and the preprocessing are in `config.json`; the weights in `model.safetensors`.",
        "",
        "## Use",
        "",
        "```python",
        "import zoo",
        "",
        f'model = zoo.{cls}.from_pretrained("<this folder or repo id>")  # eval mode',
        "```",
        "",
    ]
    return "\n".join(lines)


# -- the folder's own files --------------------------------------------------------------------------------
def _zoo_block(config_path: Path) -> dict[str, Any] | None:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    block = config.get("zoo") if isinstance(config, dict) else None
    return block if isinstance(block, dict) and block.get("format") == FORMAT else None


def _sha256(text_or_path: str | Path) -> str:
    data = text_or_path.read_bytes() if isinstance(text_or_path, Path) else text_or_path.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _refuse_foreign_files(folder: Path) -> None:
    """FileExistsError when the folder holds one of the three names and it is not a file an earlier save wrote, unchanged."""
    targets = [folder / n for n in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)]
    if not any(p.exists() for p in targets):
        return
    block = _zoo_block(folder / CONFIG_NAME)
    foreign = [p.name for p in targets if p.exists()] if block is None else []
    card = folder / CARD_NAME
    if block is not None and card.exists() and block.get("card_sha256") != _sha256(card):
        foreign.append(f"{CARD_NAME} (edited since it was written)")
    if foreign:
        raise FileExistsError(
            f"{folder} already holds {', '.join(foreign)}, which save_pretrained did not write; nothing was written. "
            "Save into an empty folder (or one an earlier save_pretrained wrote), or move those files first."
        )


def save_folder(
    model: ZooModule,
    folder: str | os.PathLike,
    *,
    metrics: dict[str, float] | None = None,
    weight_averaging: str | None = None,
    arch: str | None = None,
) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` into ``folder`` (created if absent); returns it.

    Args:
        model: a zoo model whose hyperparameters rebuild it.
        folder: the folder; other files in it are left alone.
        metrics: metric name -> value, for the model card (``{"test/acc": 0.975}``).
        weight_averaging: None, "ema", "swa" or "unknown": the averaging the weights hold, recorded in the config and the card.
        arch: the registry name the model was built by (``"resnet20"``); default: the class's only registry name, or
            None when several names build it (``resnet20`` and ``resnet56`` are both a ``ResNet``).

    Raises:
        FileExistsError: the folder holds a config, weights or card that no earlier save wrote (or an edited card).
        ValueError: a metric that is not a number, an unknown ``weight_averaging``, or hyperparameters that do not
            rebuild the model.
    """
    import safetensors.torch

    if weight_averaging not in _AVERAGING:
        raise ValueError(f"weight_averaging is one of {_AVERAGING}, got {weight_averaging!r}")
    metrics = dict(metrics or {})
    for key, value in metrics.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
            raise ValueError(f"metrics map names to numbers (e.g. {{'test/acc': 0.97}}); got {key!r}: {value!r}")
        metrics[key] = float(value)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; save_pretrained writes a folder")
    hparams = clean_hparams(model)
    if "zoo" in hparams:
        raise ValueError("a constructor argument named 'zoo' would collide with config.json's 'zoo' section")
    _check_rebuilds(model, hparams)
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_foreign_files(folder)

    if arch is None:
        names = [n for n in list_models() if get_model_class(n) is type(model)]
        arch = names[0] if len(names) == 1 else None
    elif get_model_class(arch) is not type(model):
        raise ValueError(f"arch={arch!r} builds a {get_model_class(arch).__name__}, not a {type(model).__name__}")
    preprocessing = _preprocessing(model)
    card = _card(model, arch, metrics, weight_averaging, preprocessing)
    zoo_block = {
        "format": FORMAT,
        "class": type(model).__name__,
        "arch": arch,
        "preprocessing": preprocessing,
        "weight_averaging": weight_averaging,
        "metrics": metrics,
        "card_sha256": _sha256(card),
    }
    text = json.dumps({**hparams, "zoo": zoo_block}, indent=2, allow_nan=False) + "\n"
    # Weights only: training progress (a replay buffer, counters) resumes runs from .ckpt files and is not saved here.
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if not _is_training_state(model, k)}
    metadata = {"format": "pt", "zoo_class": type(model).__name__}
    _write_atomic(folder / WEIGHTS_NAME, lambda tmp: safetensors.torch.save_file(state, tmp, metadata=metadata))
    _write_atomic(folder / CARD_NAME, lambda tmp: Path(tmp).write_text(card, encoding="utf-8"))
    _write_atomic(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))  # last: marks the folder complete
    return folder


def save_entry_folder(name: str, folder: str | os.PathLike) -> Path:
    """A shipped entry (SHA-256 checked) as a Hugging Face folder, its card from the entry's manifest row."""
    entry = pretrained_entry(name)
    model = load_pretrained(name)
    metric = entry.get("metric") or {}
    metrics = {metric["name"]: metric["value"]} if "name" in metric and "value" in metric else {}
    averaging = (entry.get("weight_averaging") or {}).get("method")
    return save_folder(model, folder, metrics=metrics, weight_averaging=averaging, arch=entry.get("arch"))


# -- loading -----------------------------------------------------------------------------------------------
def _download(repo_id: str, revision: str | None, cache_dir: str | os.PathLike | None, local_files_only: bool) -> Path:
    """The repo's snapshot in the Hugging Face cache (downloaded when online); one clear error otherwise."""
    try:
        import huggingface_hub
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    except ImportError:
        raise ImportError(
            f"{repo_id!r} is not a local folder; loading a Hugging Face Hub repo id needs huggingface_hub "
            "(pip install huggingface_hub). Or pass the path of a folder that save_pretrained wrote."
        ) from None
    try:
        path = huggingface_hub.snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME], library_name="lightning-zoo",
        )  # fmt: skip
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        raise PretrainedWeightsUnavailable(
            f"{repo_id!r} is not in the Hugging Face cache ({cache_dir or huggingface_hub.constants.HF_HUB_CACHE}) and the Hub "
            "cannot be reached (offline: HF_HUB_OFFLINE=1, local_files_only=True, or no network). Load it once while "
            "online, or pass the path of a local folder."
        ) from e
    except (HfHubHTTPError, OSError) as e:
        raise PretrainedWeightsUnavailable(f"{repo_id!r} could not be downloaded from the Hugging Face Hub: {e}") from e
    return Path(path)


def load_folder(
    source: str | os.PathLike,
    *,
    model: str | type | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    map_location: str | torch.device = "cpu",
    **overrides: Any,
) -> ZooModule:
    """The model in a folder that ``save_pretrained`` wrote, or in a Hub repo holding one, in eval mode.

    Args:
        source: a local folder, or a Hub repo id ``"owner/name"`` (needs huggingface_hub; cached snapshots load offline).
        model: the class it must hold (``Model.from_pretrained`` passes its own); needed for a folder whose
            ``config.json`` has no ``"zoo"`` section (one written by huggingface_hub's mixin for a zoo class).
        revision, cache_dir, local_files_only: ``huggingface_hub.snapshot_download``'s, for a repo id.
        map_location: device the model is moved to.
        **overrides: as for ``zoo.load_pretrained``: ``num_classes=`` / ``in_channels=`` adapt the loaded model,
            other arguments replace the recorded ones before it is built.
    """
    path = Path(source)
    if path.is_dir():
        folder = path
    elif path.exists():
        raise ValueError(
            f"{source} is a file; from_pretrained takes a folder (config.json, model.safetensors). "
            "A .safetensors file with its .json loads with zoo.load_pretrained, a .ckpt with zoo.load_checkpoint."
        )
    elif isinstance(source, str) and _REPO_ID.fullmatch(source) and not source.startswith((".", "/")):
        folder = _download(source, revision, cache_dir, local_files_only)
    else:
        raise FileNotFoundError(f"{source} is neither a folder nor a Hugging Face Hub repo id ('owner/name')")
    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    missing = [p.name for p in (config_path, weights) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{source}: {' and '.join(missing)} missing; a zoo folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} is not a JSON object of constructor arguments")
    block = config.get("zoo")
    expected = resolve_model_class(model) if model is not None else None
    if isinstance(block, dict) and block.get("format") == FORMAT and isinstance(block.get("class"), str):
        recorded = block["class"]
    elif expected is not None and expected is not ZooModule and block is None:
        recorded = expected.__name__  # the caller's class, not a name read from the file
    else:
        raise ValueError(f"{config_path} has no format-{FORMAT} 'zoo' section naming its class; load it with <ZooClass>.from_pretrained")
    try:
        found = resolve_model_class(recorded)
    except ValueError as e:
        raise ValueError(f"{config_path}: {e}") from None
    if expected is not None and not issubclass(found, expected):
        raise ValueError(f"{source} holds a {found.__name__}, not a {expected.__name__}; load it with zoo.{found.__name__}.from_pretrained")
    hparams = {k: v for k, v in config.items() if k != "zoo"}
    return _build_and_load({"zoo_class": recorded, "hparams": hparams, "name": str(source)}, config_path, weights, dict(overrides), map_location)


def push_folder(model: ZooModule, repo_id: str, *, metrics: dict[str, float] | None = None, weight_averaging: str | None = None,
                private: bool | None = None, token: str | None = None, commit_message: str = "Upload lightning-zoo model") -> str:  # fmt: skip
    """``save_folder`` into a temporary folder, then ``huggingface_hub.upload_folder`` to ``repo_id`` (created if absent);
    returns the commit URL. Needs huggingface_hub, a network and a token (``hf auth login``)."""
    import tempfile

    try:
        import huggingface_hub
    except ImportError:
        raise ImportError("push_to_hub needs huggingface_hub (pip install huggingface_hub)") from None
    with tempfile.TemporaryDirectory() as tmp:
        save_folder(model, tmp, metrics=metrics, weight_averaging=weight_averaging)
        api = huggingface_hub.HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        return str(api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message))


provide_folder_io(save=save_folder, load=load_folder, push=push_folder)
