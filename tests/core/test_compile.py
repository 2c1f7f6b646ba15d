"""``compile=True``: every model compiles in place (``nn.Module.compile``), and checkpoints cross over.

A model compiled with ``torch.compile(model)`` would be wrapped, and its state-dict keys would gain an
``_orig_mod.`` prefix that an eager model cannot load. The zoo compiles in place, so a checkpoint saved by
a compiled model loads into an eager one, and the reverse, with the same outputs. The compiled runs use
the real Inductor backend (a C++ compiler builds kernels: tens of seconds), so those are marked slow.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo


def train_briefly(model: zoo.ZooModule, tmp_path, steps: int = 3) -> str:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g)
    trainer = L.Trainer(
        accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=8))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return str(path)


def test_compile_is_in_place_and_keeps_state_dict_keys():
    compiled, eager = zoo.create_model("lenet5", compile=True), zoo.create_model("lenet5")
    assert compiled._compiled_call_impl is not None and eager._compiled_call_impl is None
    assert compiled.hparams.compile is True
    assert list(compiled.state_dict()) == list(eager.state_dict())  # no "_orig_mod." prefix
    eager.load_state_dict(compiled.state_dict(), strict=True)
    compiled.load_state_dict(eager.state_dict(), strict=True)


def test_shipped_hparams_do_not_record_compile():
    from zoo.hub.pretrained import clean_hparams

    assert "compile" not in clean_hparams(zoo.create_model("lenet5", compile=True))


@pytest.mark.slow
def test_checkpoint_saved_compiled_loads_eagerly_and_the_reverse(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(5, 1, 28, 28)

    # compiled -> eager
    compiled = zoo.create_model("lenet5", compile=True)
    path = train_briefly(compiled, tmp_path / "compiled")
    compiled.eval()
    with torch.no_grad():
        expected = compiled(x)
    state = torch.load(path, weights_only=True)["state_dict"]
    eager = zoo.create_model("lenet5")
    eager.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(eager.eval()(x), expected, atol=1e-5, rtol=1e-4)
    reloaded = zoo.load_checkpoint(path)  # records compile=True: compiled again, same answers
    assert reloaded._compiled_call_impl is not None
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), expected, atol=1e-5, rtol=1e-4)

    # eager -> compiled
    eager = zoo.create_model("lenet5")
    path = train_briefly(eager, tmp_path / "eager")
    with torch.no_grad():
        expected = eager.eval()(x)
    compiled = zoo.create_model("lenet5", compile=True)
    compiled.load_state_dict(torch.load(path, weights_only=True)["state_dict"], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(x), expected, atol=1e-5, rtol=1e-4)
