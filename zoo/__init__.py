"""A PyTorch Lightning model zoo: classic architectures as LightningModules.

    >>> import zoo
    >>> zoo.list_models("vgg1?")
    ['vgg11', 'vgg13', 'vgg16', 'vgg19']
    >>> model = zoo.create_model("lenet5", num_classes=10)  # an nn.Module and a LightningModule
    >>> model = zoo.load_checkpoint("best.ckpt")            # doctest: +SKIP  (weights only, eval mode)
    >>> zoo.predict(model, uint8_images, topk=3)            # doctest: +SKIP  (the model's own preprocessing)

Every model is a ``lightning.LightningModule``: use it as a plain ``nn.Module`` or train it with
``lightning.Trainer``; ``python train.py fit --config configs/<recipe>.yaml`` does the latter from the CLI.
"""

import importlib as _importlib

from zoo._legacy_modules import LEGACY_MODULES as _LEGACY_MODULES
from zoo._legacy_modules import install as _install_legacy_modules

_install_legacy_modules()  # ``import zoo.resnet`` and the other paths of the flat layout: see zoo._legacy_modules

from zoo.core.base import ClassifierModule, RegressorModule, SupervisedModule, ZooModule  # noqa: E402
from zoo.core.features import FeatureBackbone  # noqa: E402
from zoo.core.image import ImageClassifier  # noqa: E402
from zoo.core.preprocessing import ImageInputMixin, ImagePreprocessing  # noqa: E402
from zoo.core.registry import get_model_class, list_models, register_model  # noqa: E402
from zoo.models.generative import DCGAN, GAN, VAE, Autoencoder, ConvAutoencoder  # noqa: E402
from zoo.models.regression import LinearRegression  # noqa: E402
from zoo.models.rl import DQN  # noqa: E402
from zoo.models.selfsupervised import SimCLR  # noqa: E402
from zoo.models.sequence import (  # noqa: E402
    BertClassifier,
    BertForMaskedLM,
    LSTMForecaster,
    RecurrentClassifier,
    Seq2Seq,
    Transformer,
    TransformerClassifier,
)
from zoo.models.vision import (  # noqa: E402
    MLP,
    VGG,
    AlexNet,
    AlexNetSmall,
    DenseNet,
    GoogLeNet,
    LeNet5,
    ResNet,
    ResNet9,
    SimpleCNN,
    VisionTransformer,
    WideResNet,
)
from zoo.hub import (  # noqa: E402
    ImageNetWeights,
    PretrainedWeightsUnavailable,
    create_model,
    get_weights,
    list_pretrained,
    load_checkpoint,
    load_pretrained,
)
from zoo.evaluation import attacks  # noqa: E402
from zoo.training.finetuning import DiscriminativeLR, FreezeUnfreeze, LinearProbe  # noqa: E402
from zoo.version import __version__  # noqa: E402
from zoo.serving import export_onnx, export_program, generate, play, predict, read_export_metadata, translate  # noqa: E402

__all__ = [
    "AlexNet",
    "AlexNetSmall",
    "BertClassifier",
    "BertForMaskedLM",
    "ImageClassifier",
    "ImageInputMixin",
    "ImageNetWeights",
    "ImagePreprocessing",
    "MLP",
    "Autoencoder",
    "ClassifierModule",
    "ConvAutoencoder",
    "DCGAN",
    "DenseNet",
    "DiscriminativeLR",
    "FeatureBackbone",
    "FreezeUnfreeze",
    "DQN",
    "GAN",
    "GoogLeNet",
    "LeNet5",
    "LinearProbe",
    "LinearRegression",
    "LSTMForecaster",
    "PretrainedWeightsUnavailable",
    "RecurrentClassifier",
    "RegressorModule",
    "SupervisedModule",
    "Seq2Seq",
    "ResNet",
    "ResNet9",
    "SimCLR",
    "SimpleCNN",
    "Transformer",
    "TransformerClassifier",
    "VAE",
    "VGG",
    "VisionTransformer",
    "WideResNet",
    "ZooModule",
    "attacks",
    "create_model",
    "export_onnx",
    "export_program",
    "generate",
    "get_model_class",
    "get_weights",
    "list_models",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "play",
    "predict",
    "read_export_metadata",
    "register_model",
    "translate",
]


def __getattr__(name: str):
    """``zoo.pretrained``, ``zoo.resnet``, ...: the modules of the flat layout, as attributes too (``zoo._legacy_modules``)."""
    if f"zoo.{name}" in _LEGACY_MODULES:
        return _importlib.import_module(f"zoo.{name}")
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
