"""VGG: the paper's configurations only (A, B, D, E: depths 11, 13, 16, 19)."""

import pytest

import zoo


def test_bad_depth_is_a_clear_error():
    with pytest.raises(ValueError, match="depth must be one of"):
        zoo.VGG(depth=12)
