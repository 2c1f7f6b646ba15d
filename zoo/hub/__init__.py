"""Every way a model gets its weights: ``create_model``, ``load_checkpoint``, ``load_pretrained``.

``create``      ``create_model(name, pretrained=, weights=, **overrides)``: the registry's builders, weights applied
``checkpoint``  ``load_checkpoint(path)``: a training checkpoint, weights only
``pretrained``  ``load_pretrained`` / ``list_pretrained``: the shipped safetensors entries; ``load_trained``, the one
                resolver of "entry name or path"
``manifest``    the manifest of the shipped entries (package data, ``shipped/``) and where their weights files are
``download``    the weights files' URL (the release assets, or ``$ZOO_WEIGHTS_URL``), the cache, the checked download
``finetune``    ``apply_pretrained(model, source)``: a built model takes a source's weights (``pretrained=``)
``imagenet``    torchvision's ImageNet weights (``create_model("resnet18", weights="DEFAULT")``)
``folder``      Hugging Face folders behind ``model.save_pretrained`` / ``Model.from_pretrained`` / ``push_to_hub``
"""

from zoo.hub.checkpoint import load_checkpoint
from zoo.hub.create import create_model
from zoo.hub.finetune import apply_pretrained
from zoo.hub.folder import load_folder, save_folder
from zoo.hub.imagenet import ImageNetWeights, get_weights
from zoo.hub.pretrained import PretrainedWeightsUnavailable, list_pretrained, load_pretrained, load_trained

__all__ = [
    "ImageNetWeights",
    "PretrainedWeightsUnavailable",
    "apply_pretrained",
    "create_model",
    "get_weights",
    "list_pretrained",
    "load_checkpoint",
    "load_folder",
    "load_pretrained",
    "load_trained",
    "save_folder",
]
