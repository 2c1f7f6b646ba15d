"""A NaN or infinite loss never reaches the weights: ``NonFiniteLossGuard`` stops the run naming the step
(default) or skips the step with a warning, for automatic optimization (a classifier) and for models that
step their optimizers themselves (a GAN, whose discriminator has BatchNorm statistics to protect)."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo
from datamodules import ZooDataModule
from zoo.training.cli import ZooCLI, main
from zoo.training.nonfinite_guard import NonFiniteLossError, NonFiniteLossGuard

BAD_BATCH = 3  # the batch whose inputs are NaN


def loader(*, n: int = 48, batch_size: int = 8, image: bool = False) -> DataLoader:
    """Deterministic (x, y) batches; every input of batch ``BAD_BATCH`` is NaN."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 28, 28, generator=g) if image else torch.randn(n, 6, generator=g)
    x[BAD_BATCH * batch_size : (BAD_BATCH + 1) * batch_size] = float("nan")
    return DataLoader(TensorDataset(x, torch.randint(0, 3, (n,), generator=g)), batch_size=batch_size)


def trainer(tmp_path, guard: NonFiniteLossGuard, **kwargs) -> L.Trainer:
    options = dict(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=tmp_path, callbacks=[guard])  # fmt: skip
    return L.Trainer(**{**options, **kwargs})


def classifier() -> zoo.MLP:
    torch.manual_seed(0)
    return zoo.MLP(in_features=6, hidden_sizes=[8], num_classes=3, optimizer="sgd", lr=0.1)


def finite(module: torch.nn.Module) -> bool:
    tensors = [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]
    return all(torch.isfinite(t).all() for t in tensors)


def test_a_nan_batch_stops_training_naming_the_step_before_the_weights_change(tmp_path):
    model = classifier()
    seen = {}

    class Spy(L.Callback):  # the weights just before the bad batch
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == BAD_BATCH:
                seen.update({k: v.clone() for k, v in module.state_dict().items()})

    with pytest.raises(NonFiniteLossError, match=rf"loss is nan at global step {BAD_BATCH} \(epoch 0, batch {BAD_BATCH}\)"):
        trainer(tmp_path, NonFiniteLossGuard(), callbacks=[Spy(), NonFiniteLossGuard()]).fit(model, loader())
    assert finite(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in seen.items())  # the bad step changed nothing


def test_skip_warns_keeps_finite_weights_and_trains_on(tmp_path):
    model, guard = classifier(), NonFiniteLossGuard(mode="skip")
    with pytest.warns(RuntimeWarning, match=rf"loss is nan at global step {BAD_BATCH} .*step skipped"):
        trainer(tmp_path, guard).fit(model, loader())
    assert finite(model)
    assert guard.skipped_steps == 1
    reference = classifier()  # the same run without the bad batch's step differs from the start: it trained on
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), reference.parameters()))


def test_an_infinite_gradient_is_caught_even_with_a_finite_loss(tmp_path):
    model = classifier()
    hook = model.head.weight.register_hook(lambda g: torch.full_like(g, float("inf")))
    with pytest.raises(NonFiniteLossError, match="a gradient is not finite at global step 0"):
        trainer(tmp_path, NonFiniteLossGuard()).fit(model, loader(n=16))
    hook.remove()
    assert finite(model)


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_gan_manual_optimization_raise_and_skip(name, tmp_path):
    def gan():
        torch.manual_seed(0)
        small = dict(feature_maps=8) if name == "dcgan" else dict(generator_sizes=[16], discriminator_sizes=[16])
        return zoo.create_model(name, latent_dim=8, num_sample_images=4, **small)

    with pytest.raises(NonFiniteLossError, match=rf"at global step {2 * BAD_BATCH} \(epoch 0, batch {BAD_BATCH}\)"):
        trainer(tmp_path, NonFiniteLossGuard(), limit_val_batches=0).fit(gan(), loader(n=32, image=True))

    model, guard = gan(), NonFiniteLossGuard(mode="skip")
    with pytest.warns(RuntimeWarning, match="step skipped"):
        trainer(tmp_path, guard, limit_val_batches=0).fit(model, loader(n=32, image=True))
    assert guard.skipped_steps >= 1
    assert finite(model)  # parameters, and the discriminator's BatchNorm statistics for the DCGAN
    assert int(model.g_updates) == len(loader(n=32, image=True))  # the generator kept training


@pytest.mark.parametrize("option, mode", [([], "raise"), (["--on_nonfinite_loss", "skip"], "skip")])
def test_the_cli_guards_every_fit_with_the_chosen_mode(option, mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--model", "zoo.MLP", "--data", "datamodules.BlobsDataModule", "--trainer.logger", "false", *option]
    cli = ZooCLI(zoo.ZooModule, ZooDataModule, subclass_mode_model=True, subclass_mode_data=True, args=args, run=False)
    assert [c.mode for c in cli.trainer.callbacks if isinstance(c, NonFiniteLossGuard)] == [mode]


def test_the_cli_refuses_an_unknown_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["fit", "--model", "zoo.MLP", "--data", "datamodules.BlobsDataModule", "--on_nonfinite_loss", "sometimes"])
    assert "sometimes" in capsys.readouterr().err


def test_float16_loss_scaling_keeps_its_infinite_gradients(tmp_path):
    """Under a GradScaler, inf gradients are how the scaler finds its scale (it skips those steps itself)."""
    from types import SimpleNamespace

    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.full((3,), float("inf"))
    optimizer = torch.optim.SGD([param], lr=0.1)
    fake = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=torch.amp.GradScaler("cpu")), global_step=0, current_epoch=0)
    NonFiniteLossGuard().on_before_optimizer_step(fake, None, optimizer)  # no error: the scaler's business
    fake.precision_plugin.scaler = None
    with pytest.raises(NonFiniteLossError, match="a gradient is not finite"):
        NonFiniteLossGuard().on_before_optimizer_step(fake, None, optimizer)
