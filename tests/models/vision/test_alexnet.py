"""AlexNet: the ImageNet network needs images of at least 63 px (its strided stem and three max-pools)."""

import pytest

import zoo


def test_too_small_images_are_a_clear_error():
    with pytest.raises(ValueError, match="at least 63 px"):
        zoo.create_model("alexnet", image_size=32)
