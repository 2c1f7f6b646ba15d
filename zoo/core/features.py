"""Feature maps of the image classifiers, timm's way: ``forward_intermediates``, ``feature_info`` and ``features_only``.

    >>> final, maps = model.forward_intermediates(x)                  # doctest: +SKIP  every stage's map
    >>> maps = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True)  # doctest: +SKIP
    >>> backbone = zoo.create_model("resnet20", features_only=True, out_indices=(1, 2, 3))  # doctest: +SKIP
    >>> backbone(x)                                                   # doctest: +SKIP  [(B, 16, 28, 28), (B, 32, 14, 14), (B, 64, 7, 7)]
    >>> backbone.feature_info.channels(), backbone.feature_info.reduction()  # doctest: +SKIP  ([16, 32, 64], [1, 2, 4])

A model describes its network as a list of ``FeatureStage``: run one after the other on the input, they give
the map at the end of each stage (ResNet: the stem, then layer1, layer2, ...; VGG: the map before each
max-pool; ViT: each block's tokens, reshaped to a map). ``forward_neck`` turns the last stage's output into
``forward_features``'s (B, num_features), so ``forward_head(forward_intermediates(x)[0])`` is ``forward(x)``.

``indices`` follow timm's ``feature_take_indices``: None takes every stage, an int n the last n, a list the
stages it names (negative from the end).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

__all__ = ["OUTPUT_FORMATS", "FeatureBackbone", "FeatureInfo", "FeatureStage", "feature_take_indices", "run_intermediates", "sequential_stages"]

#: Layouts of the returned maps: (B, C, H, W), or (B, H*W, C) tokens (timm's "NLC").
OUTPUT_FORMATS = ("NCHW", "NLC")


@dataclass(frozen=True)
class FeatureStage:
    """One stage of a network: what it computes from the previous stage's output, and what its map is.

    Args:
        module: the module whose output is the stage's map (timm's ``feature_info[i]["module"]``).
        num_chs: channels of the map.
        reduction: how many input pixels one map pixel spans along a side (its total stride).
        params: names (or name prefixes) of the parameters the stage runs; the layer-wise learning rates of
            ``zoo.training.finetuning`` group parameters by stage with them.
        run: the previous stage's output (the image, for the first) -> this stage's output.
    """

    module: str
    num_chs: int
    reduction: int
    params: tuple[str, ...]
    run: Callable[[Tensor], Tensor]

    def info(self) -> dict[str, Any]:
        return {"num_chs": self.num_chs, "reduction": self.reduction, "module": self.module}


def sequential_stages(layers: nn.Sequential, prefix: str, ends: list[int], channels: list[int], reductions: list[int]) -> list[FeatureStage]:
    """The stages of a plain ``nn.Sequential`` network (LeNet-5, VGG, AlexNet): stage i is ``layers[ends[i-1]:ends[i]]``
    and its map the output of ``layers[ends[i] - 1]``, called ``f"{prefix}.{ends[i] - 1}"``."""
    stages, start = [], 0
    for end, chs, reduction in zip(ends, channels, reductions):
        params = tuple(f"{prefix}.{j}" for j in range(start, end))
        stages.append(FeatureStage(f"{prefix}.{end - 1}", chs, reduction, params, layers[start:end]))  # a slice shares the layers
        start = end
    return stages


def feature_take_indices(num_features: int, indices: int | Sequence[int] | None = None) -> tuple[list[int], int]:
    """The stage indices to return, counted from 0, and the largest (timm's rule; out of range is a ValueError).

    None: every stage; an int n: the last n; a sequence: those named, negative ones counted from the end.
    """
    if num_features < 1:
        raise ValueError("this model has no feature stages")
    if indices is None:
        indices = num_features
    if isinstance(indices, (bool, str)) or not isinstance(indices, (int, Sequence)):
        raise ValueError(f"indices must be None, an int (the last n stages) or a list of stage indices, got {indices!r}")
    if isinstance(indices, int):
        if not 0 < indices <= num_features:
            raise ValueError(f"indices={indices} asks for the last {indices} stages; this model has {num_features} (1 to {num_features})")
        take = list(range(num_features - indices, num_features))
    else:
        take = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int):
                raise ValueError(f"stage indices must be ints, got {i!r} in {list(indices)}")
            if not -num_features <= i < num_features:
                raise ValueError(f"stage index {i} is out of range: this model has {num_features} stages (0 to {num_features - 1}, or -{num_features} to -1)")
            take.append(i % num_features)
        if not take:
            raise ValueError("indices is empty: name at least one stage")
        if len(set(take)) != len(take):
            raise ValueError(f"indices name a stage twice: {list(indices)}")
    return take, max(take)


def _format(x: Tensor, output_fmt: str) -> Tensor:
    return x.flatten(2).transpose(1, 2) if output_fmt == "NLC" else x  # (B, C, H, W) -> (B, H*W, C)


def run_intermediates(
    model: nn.Module,
    x: Tensor,
    indices: int | Sequence[int] | None = None,
    *,
    norm: bool = False,
    stop_early: bool = False,
    output_fmt: str = "NCHW",
    intermediates_only: bool = False,
) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
    """What ``ImageClassifier.forward_intermediates`` computes, from the model's ``feature_stages``,
    ``feature_map`` and ``forward_neck``; see that method for the arguments."""
    if output_fmt not in OUTPUT_FORMATS:
        raise ValueError(f"output_fmt must be one of {OUTPUT_FORMATS}, got {output_fmt!r}")
    if stop_early and not intermediates_only:
        raise ValueError("stop_early=True skips the stages after the last one asked for, so there are no final features: pass intermediates_only=True")
    stages = model.feature_stages()
    take, last = feature_take_indices(len(stages), indices)
    run = stages[: last + 1] if intermediates_only else stages  # the later stages change none of the maps
    maps = {}
    for i, stage in enumerate(run):
        x = stage.run(x)
        if i in take:
            maps[i] = _format(model.feature_map(x, norm=norm), output_fmt)
    intermediates = [maps[i] for i in take]
    if intermediates_only:
        return intermediates
    return model.forward_neck(x), intermediates  # (B, num_features), the maps


class FeatureInfo(list):
    """timm's ``FeatureInfo`` of a ``features_only`` backbone: one dict (num_chs, reduction, module, index) per
    returned map, and ``channels()``, ``reduction()``, ``module_name()`` lists (or one value for ``idx``)."""

    def __init__(self, info: list[dict[str, Any]], out_indices: list[int]) -> None:
        super().__init__({**info[i], "index": i} for i in out_indices)
        self.out_indices = list(out_indices)

    def get(self, key: str, idx: int | None = None) -> Any:
        return [f[key] for f in self] if idx is None else self[idx][key]

    def channels(self, idx: int | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | None = None) -> Any:
        return self.get("module", idx)


class FeatureBackbone(nn.Module):
    """An image classifier as a backbone: images (B, C, H, W) -> the maps of the ``out_indices`` stages, a list.

    ``create_model(name, features_only=True, out_indices=...)`` builds it. The classifier is ``model`` (its
    weights are ``model.*``); its head is replaced by ``nn.Identity``, as it takes no part. ``feature_info``
    gives the maps' channels and reductions.

    Args:
        model: an image classifier (one with ``forward_intermediates``).
        out_indices: the stages whose maps are returned: None every one, an int n the last n, a list those named.
        norm: ``forward_intermediates``' ``norm`` (ViT: the final layer norm applied to every map).
        output_fmt: "NCHW" or "NLC".
    """

    def __init__(self, model: nn.Module, out_indices: int | Sequence[int] | None = None, *, norm: bool = False, output_fmt: str = "NCHW") -> None:
        super().__init__()
        name = type(model).__name__
        if not callable(getattr(model, "feature_stages", None)):
            raise ValueError(f"features_only needs an image classifier with stages of feature maps (ResNet, VGG, ViT, ...); a {name} has none")
        stages = model.feature_stages()
        if not stages:
            raise ValueError(f"features_only: this {name} has no feature stages (a ViT of depth 0?)")
        if output_fmt not in OUTPUT_FORMATS:
            raise ValueError(f"output_fmt must be one of {OUTPUT_FORMATS}, got {output_fmt!r}")
        take, _ = feature_take_indices(len(stages), out_indices)
        self.out_indices = take
        self.norm = norm
        self.output_fmt = output_fmt
        self.feature_info = FeatureInfo([s.info() for s in stages], take)
        model.head = nn.Identity()  # the head's weights are not features; nothing reads it here
        self.model = model

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, C, H, W) -> one map per out_index, (B, num_chs_i, H / reduction_i, W / reduction_i) each."""
        return self.model.forward_intermediates(
            x, self.out_indices, norm=self.norm, stop_early=True, output_fmt=self.output_fmt, intermediates_only=True
        )
