"""A PyTorch Lightning model zoo: classic architectures as LightningModules.

    >>> import zoo
    >>> zoo.list_models()                                   # doctest: +SKIP
    ['dnn', 'lenet5', 'linear_regression', 'mlp', 'simple_cnn']
    >>> model = zoo.create_model("lenet5", num_classes=10)  # an nn.Module and a LightningModule

Every model is a ``lightning.LightningModule``: use it as a plain ``nn.Module`` or train it with
``lightning.Trainer``; ``python train.py fit --config configs/<recipe>.yaml`` does the latter from the CLI.
"""

from zoo.base import ClassifierModule, RegressorModule, ZooModule
from zoo.cnn import SimpleCNN
from zoo.lenet import LeNet5
from zoo.linear import LinearRegression
from zoo.mlp import MLP
from zoo.registry import create_model, get_model_class, list_models, register_model
from zoo.rnn import RecurrentClassifier

__all__ = [
    "MLP",
    "ClassifierModule",
    "LeNet5",
    "LinearRegression",
    "RecurrentClassifier",
    "RegressorModule",
    "SimpleCNN",
    "ZooModule",
    "create_model",
    "get_model_class",
    "list_models",
    "register_model",
]
__version__ = "0.1.0"
