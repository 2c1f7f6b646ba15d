"""Random erasing (Zhong et al., 2017) as a batch augmentation of the image datamodules (``random_erasing=p``)."""

import pytest
import torch

from datamodules import FashionMNISTDataModule
from datamodules.base import random_erasing


def erased_masks(images: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return (out != images).any(1)  # (B, H, W): the pixels that changed


def test_p1_erases_one_rectangle_per_image_within_the_area_range():
    torch.manual_seed(0)
    images = torch.full((200, 1, 28, 28), -1.0)  # never a value of the uniform noise, so every erased pixel shows
    masks = erased_masks(images, random_erasing(images, p=1.0))
    for mask in masks:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert mask.sum() == h * w  # one filled rectangle
        assert 0.02 * 784 * 0.5 <= h * w <= 0.4 * 784 * 1.1  # the area range (rounding and clipping aside)
    assert masks.float().mean().item() == pytest.approx(0.21, abs=0.05)  # mean erased area, (0.02 + 0.4) / 2
    out = random_erasing(images, p=1.0)
    assert out[out != -1].min() >= 0 and out[out != -1].max() <= 1  # noise pixels in [0, 1]


def test_p_is_the_share_of_erased_images_and_0_is_off():
    torch.manual_seed(0)
    images = torch.full((2000, 1, 8, 8), -1.0)
    erased = erased_masks(images, random_erasing(images, p=0.5)).flatten(1).any(1)
    assert erased.float().mean().item() == pytest.approx(0.5, abs=0.04)
    assert torch.equal(random_erasing(images, p=0.0), images)


def test_datamodule_erases_training_batches_only(vision_root):
    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), random_erasing=1.0, batch_size=16)
    raw = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    plain = dm.preprocess(raw)
    assert torch.equal(dm.preprocess(raw, train=False), plain)
    assert (dm.preprocess(raw, train=True) != plain).flatten(1).any(1).all()  # every training image erased
    with pytest.raises(ValueError, match="random_erasing"):
        FashionMNISTDataModule(data_dir=str(vision_root.root), random_erasing=1.5)
