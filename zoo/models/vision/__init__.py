"""Image classifiers: MLP, LeNet-5, SimpleCNN, AlexNet, VGG, ResNet, ResNet-9, Wide ResNet, DenseNet, GoogLeNet, ViT."""

from zoo.models.vision.alexnet import AlexNet, AlexNetSmall
from zoo.models.vision.cnn import SimpleCNN
from zoo.models.vision.densenet import DenseNet
from zoo.models.vision.googlenet import GoogLeNet
from zoo.models.vision.lenet import LeNet5
from zoo.models.vision.mlp import MLP
from zoo.models.vision.resnet import ResNet
from zoo.models.vision.resnet9 import ResNet9
from zoo.models.vision.vgg import VGG
from zoo.models.vision.vit import VisionTransformer
from zoo.models.vision.wide_resnet import WideResNet

__all__ = ["MLP", "VGG", "AlexNet", "AlexNetSmall", "DenseNet", "GoogLeNet", "LeNet5", "ResNet", "ResNet9", "SimpleCNN", "VisionTransformer", "WideResNet"]
