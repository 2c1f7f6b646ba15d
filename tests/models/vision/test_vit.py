"""Vision Transformer: patch embedding, class token and positions, encoder depth, argument checks."""

import pytest
import torch

import zoo


def test_vit_parts():
    model = zoo.create_model("vit_tiny", in_channels=1, image_size=28)
    assert model.pos_embed.shape == (1, 7 * 7 + 1, 96)  # 49 patches + the class token
    assert model.patch_embed(torch.randn(2, 1, 28, 28)).shape == (2, 49, 96)
    assert len(model.blocks) == 6 and model.num_features == 96
    with pytest.raises(ValueError, match="patch_size .* must divide image_size"):
        zoo.create_model("vit_tiny", image_size=30)
    with pytest.raises(ValueError, match="heads .* must divide dim"):
        zoo.VisionTransformer(dim=100, heads=3)
