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

from zoo.alexnet import AlexNet, AlexNetSmall
from zoo import attacks
from zoo.autoencoder import Autoencoder, ConvAutoencoder
from zoo.base import ClassifierModule, RegressorModule, SupervisedModule, ZooModule
from zoo.bert import BertClassifier, BertForMaskedLM
from zoo.checkpoint import load_checkpoint
from zoo.cnn import SimpleCNN
from zoo.decoding import translate
from zoo.densenet import DenseNet
from zoo.deploy import export_onnx, export_program, read_export_metadata
from zoo.dqn import DQN
from zoo.envs import play
from zoo.forecaster import LSTMForecaster
from zoo.gan import DCGAN, GAN
from zoo.generative import generate
from zoo.googlenet import GoogLeNet
from zoo.image import ImageClassifier, ImagePreprocessing
from zoo.lenet import LeNet5
from zoo.linear import LinearRegression
from zoo.mlp import MLP
from zoo.inference import predict
from zoo.preprocessing import ImageInputMixin
from zoo.imagenet import ImageNetWeights, get_weights
from zoo.pretrained import PretrainedWeightsUnavailable, list_pretrained, load_pretrained
from zoo.registry import create_model, get_model_class, list_models, register_model
from zoo.resnet import ResNet
from zoo.resnet9 import ResNet9
from zoo.rnn import RecurrentClassifier
from zoo.seq2seq import Seq2Seq
from zoo.simclr import SimCLR
from zoo.transformer import Transformer, TransformerClassifier
from zoo.vae import VAE
from zoo.vgg import VGG
from zoo.vit import VisionTransformer
from zoo.wide_resnet import WideResNet

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
    "DQN",
    "GAN",
    "GoogLeNet",
    "LeNet5",
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
__version__ = "0.1.0"
