"""LightningDataModules for the zoo: every dataset loaded once into tensors, transformed per batch.

Each datamodule exposes ``num_classes``, ``input_shape``, ``class_names`` and ``normalization``;
``train.py`` links the first two into the model.
"""

from datamodules.base import CorruptDataError, DataNotFoundError, ImageDataModule, InMemoryDataset, ZooDataModule
from datamodules.corpus import TextCorpusDataModule
from datamodules.imagefolder import ImageFolderDataModule
from datamodules.pretraining import MaskedLMDataModule
from datamodules.rl import EnvironmentDataModule
from datamodules.streaming import StreamingImageDataModule
from datamodules.tabular import BlobsDataModule, DigitsDataModule, LinearRegressionDataModule
from datamodules.text import IMDBDataModule, TextDataModule, Tokenizer
from datamodules.timeseries import TimeSeriesDataModule
from datamodules.translation import TranslationDataModule
from datamodules.vision import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "BlobsDataModule",
    "CIFAR10DataModule",
    "CorruptDataError",
    "DataNotFoundError",
    "DigitsDataModule",
    "EnvironmentDataModule",
    "FashionMNISTDataModule",
    "IMDBDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "InMemoryDataset",
    "LinearRegressionDataModule",
    "MNISTDataModule",
    "MaskedLMDataModule",
    "StreamingImageDataModule",
    "TextDataModule",
    "TextCorpusDataModule",
    "TimeSeriesDataModule",
    "Tokenizer",
    "TranslationDataModule",
    "ZooDataModule",
]
