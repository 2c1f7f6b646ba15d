"""``channels_last=True``: NHWC kernels and inputs, same keys and values, same outputs, checkpoints load either way."""

import pytest
import torch

import zoo
from zoo.hub.pretrained import save_pretrained

NAMES = ["lenet5", "simple_cnn", "resnet20", "vgg11_small"]


def pair(name: str) -> tuple[zoo.ZooModule, zoo.ZooModule]:
    torch.manual_seed(0)
    plain = zoo.create_model(name, in_channels=1, image_size=28).eval()
    nhwc = zoo.create_model(name, in_channels=1, image_size=28, channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    return plain, nhwc


@pytest.mark.parametrize("name", NAMES)
def test_kernels_are_channels_last_and_outputs_are_equal(name):
    plain, nhwc = pair(name)
    kernels = [p for p in nhwc.parameters() if p.ndim == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in nhwc_kernels(nhwc))
    assert list(plain.state_dict()) == list(nhwc.state_dict())
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(nhwc(x), plain(x), rtol=1e-4, atol=1e-5)


def test_a_training_step_keeps_the_layout_and_matches_the_plain_model():
    plain, nhwc = pair("resnet20")
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for model in (plain, nhwc):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in nhwc_kernels(nhwc))
    for (k, a), b in zip(plain.state_dict().items(), nhwc.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=k)


def nhwc_kernels(model: zoo.ZooModule) -> list[torch.Tensor]:
    """The 4-D kernels whose layout can differ (one input channel, or a 1x1 kernel, reads the same in both)."""
    return [p for p in model.parameters() if p.ndim == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1]


def test_checkpoints_load_across_layouts(tmp_path):
    plain, nhwc = pair("resnet20")
    x = torch.randn(3, 1, 28, 28)
    # A state dict saved from the NHWC model loads into a plain one, and the reverse.
    torch.save(nhwc.state_dict(), tmp_path / "nhwc.pt")
    again = zoo.create_model("resnet20", in_channels=1, image_size=28).eval()
    again.load_state_dict(torch.load(tmp_path / "nhwc.pt", weights_only=True))
    assert all(p.is_contiguous() for p in again.parameters())
    torch.testing.assert_close(again(x), plain(x), rtol=1e-4, atol=1e-5)
    back = zoo.create_model("resnet20", in_channels=1, image_size=28, channels_last=True).eval()
    back.load_state_dict(plain.state_dict())
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in nhwc_kernels(back))
    torch.testing.assert_close(back(x), plain(x), rtol=1e-4, atol=1e-5)
    # safetensors needs contiguous tensors: the NHWC model's weights are saved and read back as the same values.
    weights, _ = save_pretrained(nhwc, tmp_path, "resnet20.nhwc")
    loaded = zoo.load_pretrained(weights).eval()  # rebuilt from the config saved beside the weights
    assert loaded.hparams.channels_last is True
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in nhwc_kernels(loaded))
    torch.testing.assert_close(loaded(x), plain(x), rtol=1e-4, atol=1e-5)
