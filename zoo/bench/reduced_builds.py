"""Cheap builds of the registry's large networks: the same layers and depth, narrow and on small images.

``create_model(name, **REDUCED[name])`` builds in milliseconds and runs a batch in a fraction of a second,
so the registry-wide tests (tests/models/test_models.py, test_finetune.py, test_checkpoint.py) and the inference
benchmark (``zoo.bench``) cover every architecture, ImageNet networks included. Their full-size
configurations are tested in each family's own test file (parameter counts, 224 px forwards, torchvision's
weights).
"""

from __future__ import annotations

__all__ = ["IMAGENET_REDUCED", "REDUCED", "reduced_kwargs"]

#: The ImageNet-size (224 px, 1000 classes) networks: registry name -> ``create_model`` overrides.
IMAGENET_REDUCED: dict[str, dict] = {"alexnet": {"image_size": 64, "classifier_width": 64, "num_classes": 10}}
for _name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"):
    IMAGENET_REDUCED[_name] = {"image_size": 32, "width": 8, "classifier_width": 64, "num_classes": 10}
for _name in ("resnet18", "resnet34", "resnet50"):
    IMAGENET_REDUCED[_name] = {"image_size": 32, "widths": [8, 16, 32, 64], "num_classes": 10}
IMAGENET_REDUCED["googlenet"] = {"image_size": 32, "width": 0.125, "num_classes": 10}
IMAGENET_REDUCED["densenet121"] = {"image_size": 32, "growth_rate": 4, "num_init_features": 8, "num_classes": 10}

#: Every network with a cheap build: the ImageNet ones, and the Wide ResNets at width k=1 on 16 px (the same
#: depth and blocks; WRN-28-10 has 36.5 M parameters at full width).
REDUCED: dict[str, dict] = {**IMAGENET_REDUCED, **{n: {"widen_factor": 1, "image_size": 16} for n in ("wide_resnet", "wrn16_4", "wrn28_10")}}


def reduced_kwargs(name: str, *, imagenet_only: bool = False) -> dict:
    """The overrides of ``name``'s cheap build ({} for a network that is already small, or, with
    ``imagenet_only``, one that is not ImageNet-size)."""
    return dict((IMAGENET_REDUCED if imagenet_only else REDUCED).get(name, {}))
