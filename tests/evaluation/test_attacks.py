"""FGSM: the attack in pixel space with the datamodule's normalization, the robustness evaluation and
its callback, and adversarial training that really feeds the model FGSM examples."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo import attacks
from zoo.core.base import ClassifierModule

MEAN, STD = [0.286], [0.353]


class PixelLinear(nn.Module):
    """logits = w * (sum of normalized pixels) for two classes: the FGSM step is known in closed form."""

    def forward(self, x):
        s = x.flatten(1).sum(1)
        return torch.stack([-s, s], dim=1)


def test_fgsm_steps_by_epsilon_in_pixel_space_and_clamps():
    pixels = torch.full((2, 1, 4, 4), 0.5)
    pixels[1, 0, 0, 0] = 0.98
    labels = torch.tensor([0, 1])
    adv = attacks.fgsm(PixelLinear(), pixels, labels, 0.1, mean=MEAN, std=STD)
    # label 0 wants a small sum: the attack raises every pixel; label 1: it lowers them
    assert torch.allclose(adv[0], torch.full((1, 4, 4), 0.6))
    assert torch.allclose(adv[1, 0, 1:], torch.full((3, 4), 0.4))
    big = attacks.fgsm(PixelLinear(), pixels, torch.tensor([0, 0]), 0.3)
    assert big.max() == 1.0 and big[1, 0, 0, 0] == 1.0  # clamped to the valid range
    assert torch.equal(attacks.fgsm(PixelLinear(), pixels, labels, 0.0), pixels)


def test_fgsm_normalized_round_trips_the_normalization():
    pixels = torch.rand(3, 1, 4, 4)
    x = (pixels - MEAN[0]) / STD[0]
    adv_x = attacks.fgsm_normalized(PixelLinear(), x, torch.tensor([0, 1, 0]), 0.05, MEAN, STD)
    adv_pixels = adv_x * STD[0] + MEAN[0]
    assert torch.allclose((adv_pixels - pixels).abs().max(), torch.tensor(0.05), atol=1e-5)
    assert adv_pixels.min() >= -1e-6 and adv_pixels.max() <= 1 + 1e-6


def test_fgsm_leaves_parameter_gradients_alone_and_works_under_inference_mode():
    model = zoo.create_model("lenet5").eval()
    x, y = torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,))
    adv = attacks.fgsm(model, x, y, 0.1, mean=MEAN, std=STD)
    assert all(p.grad is None for p in model.parameters())
    with torch.inference_mode():
        assert torch.equal(attacks.fgsm(model, x, y, 0.1, mean=MEAN, std=STD), adv)
    # a first-order attack raises the loss of a trained-or-not model for a small step
    loss = nn.functional.cross_entropy
    assert loss(model((adv - MEAN[0]) / STD[0]), y) > loss(model((x - MEAN[0]) / STD[0]), y)


def test_attacks_read_the_normalization_the_model_recorded():
    """Fails on the old code, where an attack without mean=/std= ignored the model's normalization."""
    torch.manual_seed(0)
    model = zoo.create_model("lenet5").eval()
    model.record_preprocessing(MEAN, STD)
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    explicit = attacks.fgsm(model, x, y, 0.1, mean=MEAN, std=STD)
    assert torch.equal(attacks.fgsm(model, x, y, 0.1), explicit)
    assert not torch.equal(attacks.fgsm(model, x, y, 0.1, mean=[0.0], std=[1.0]), explicit)  # explicit values override
    normalized = (x - MEAN[0]) / STD[0]
    assert torch.equal(attacks.fgsm_normalized(model, normalized, y, 0.1), attacks.fgsm_normalized(model, normalized, y, 0.1, MEAN, STD))
    batches = [(normalized, y)]
    assert attacks.robustness(model, batches, epsilons=[0.1, 0.3]) == attacks.robustness(model, batches, epsilons=[0.1, 0.3], mean=MEAN, std=STD)
    assert attacks.robustness(model, batches, epsilons=[0.1]) != attacks.robustness(model, batches, epsilons=[0.1], mean=[0.0], std=[1.0])


def _fixture_dm(vision_root):
    from datamodules import FashionMNISTDataModule

    dm = FashionMNISTDataModule(data_dir=str(vision_root.root), batch_size=32)
    return dm


def test_robustness_callback_prints_table_logs_and_saves_plot(vision_root, tmp_path, capsys):
    model = zoo.create_model("lenet5")
    dm = _fixture_dm(vision_root)
    callback = attacks.FGSMRobustness(output=str(tmp_path / "fgsm.png"), num_examples=4)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[callback], default_root_dir=tmp_path)
    trainer.test(model, datamodule=dm)
    out = capsys.readouterr().out
    assert "Robustness of LeNet5 (80 test images)" in out and "PGD-10" in out
    assert list(callback.results.fgsm) == list(attacks.EPSILONS) and list(callback.results.pgd) == [0.1]
    # eps = 0 is the clean accuracy the model's own test step measured
    assert callback.results.fgsm[0.0] == callback.results.clean == pytest.approx(float(trainer.callback_metrics["test/acc"]))
    assert float(trainer.callback_metrics["test/fgsm_acc_0.30"]) == pytest.approx(callback.results.fgsm[0.3])
    assert float(trainer.callback_metrics["test/pgd_acc_0.10"]) == pytest.approx(callback.results.pgd[0.1])
    assert (tmp_path / "fgsm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_robustness_function_matches_a_manual_loop():
    torch.manual_seed(0)
    model = zoo.create_model("simple_cnn").eval()
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    results = attacks.robustness(model, [(x[:8], y[:8]), (x[8:], y[8:])], epsilons=[0.0, 0.1], pgd_epsilons=[0.1], mean=MEAN, std=STD, seed=3)
    pixels = (x * STD[0] + MEAN[0]).clamp(0, 1)
    adv = attacks.fgsm(model, pixels, y, 0.1, mean=MEAN, std=STD)
    with torch.no_grad():
        manual = (model((adv - MEAN[0]) / STD[0]).argmax(1) == y).float().mean().item()
        clean = (model((pixels - MEAN[0]) / STD[0]).argmax(1) == y).float().mean().item()
        generator = torch.Generator().manual_seed(3)
        adv_pgd = attacks.pgd(model, pixels[:8], y[:8], 0.1, mean=MEAN, std=STD, generator=generator)
        adv_pgd = torch.cat([adv_pgd, attacks.pgd(model, pixels[8:], y[8:], 0.1, mean=MEAN, std=STD, generator=generator)])
        manual_pgd = (model((adv_pgd - MEAN[0]) / STD[0]).argmax(1) == y).float().mean().item()
    assert results.fgsm == {0.0: pytest.approx(clean), 0.1: pytest.approx(manual)}
    assert results.clean == pytest.approx(clean) and results.pgd == {0.1: pytest.approx(manual_pgd)}
    table = attacks.format_table(results).splitlines()
    assert table[1].split() == ["epsilon", "FGSM", "PGD-10"]
    assert table[3].split() == ["0.00", f"{clean:.4f}"] and table[4].split() == ["0.10", f"{manual:.4f}", f"{manual_pgd:.4f}"]


class RecordingLeNet(zoo.LeNet5):
    """Records the inputs its training_step receives."""

    seen: list

    def training_step(self, batch, batch_idx):
        self.seen.append(batch[0].detach().clone())
        return super().training_step(batch, batch_idx)


def test_adversarial_training_puts_fgsm_examples_in_the_batch(vision_root, tmp_path):
    from datamodules import FashionMNISTDataModule

    class FixedBatches(FashionMNISTDataModule):
        def train_dataloader(self):
            return DataLoader(TensorDataset(*self.train_set.tensors), batch_size=8, shuffle=False)

    L.seed_everything(0)
    dm = FixedBatches(data_dir=str(vision_root.root), batch_size=8, val_fraction=0.0)
    dm.setup()
    model = RecordingLeNet()
    model.seen = []
    callback = attacks.AdversarialTraining(epsilon=0.2, ratio=0.5)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        max_steps=1, callbacks=[callback], limit_val_batches=0)  # fmt: skip
    before = zoo.LeNet5()
    before.load_state_dict(model.state_dict())
    trainer.fit(model, datamodule=dm)
    seen = model.seen[0]  # what the training step got: normalized, half of it attacked
    x_clean, y = dm.train_set.tensors[0][:8], dm.train_set.tensors[1][:8]
    clean = dm.preprocess(x_clean)
    assert torch.equal(seen[4:], clean[4:])  # untouched half
    expected = attacks.fgsm_normalized(before.eval(), clean[:4], y[:4], 0.2, dm.normalization["mean"], dm.normalization["std"])
    assert torch.allclose(seen[:4], expected, atol=1e-5)
    assert (seen[:4] * dm.std[0] + dm.mean[0] - x_clean[:4].float() / 255).abs().max() == pytest.approx(0.2, abs=1e-4)


class NormDropNet(ClassifierModule):
    """A small classifier with batch norm and dropout, the layers whose train mode changes FGSM."""

    def __init__(self, **kwargs) -> None:
        super().__init__(num_classes=3, **kwargs)
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5))
        self.head = nn.Linear(4 * 8 * 8, 3)

    @property
    def input_shape(self):
        return (1, 8, 8)

    def forward_features(self, x):
        return self.features(x)  # (B, 256)


def test_adversarial_training_crafts_in_eval_mode_and_restores_every_mode():
    """Fails on the old code, which crafted in train mode: batch norm updated its running statistics on
    the batch and dropout randomized the gradient, so the examples were not the eval-mode FGSM."""
    torch.manual_seed(0)
    model = NormDropNet().train()
    model.head.eval()  # one submodule left in eval on purpose (as a frozen backbone's norms are)
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    batch = [x.clone(), y]
    attacks.AdversarialTraining(epsilon=0.1, ratio=0.5).on_train_batch_start(None, model, batch, 0)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # running mean/var, batch count
    expected = attacks.fgsm_normalized(model.eval(), x[:8], y[:8], 0.1, [0.0], [1.0])
    assert torch.equal(batch[0][:8], expected) and torch.equal(batch[0][8:], x[8:])
    assert not torch.equal(expected, x[:8])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"epsilon": -0.1}, "epsilon must be >= 0"),
        ({"ratio": 1.5}, "ratio"),
        ({"attack": "pgd10"}, "unknown attack 'pgd10'; choose one of fgsm, fgsm_rs, pgd"),
        ({"attack": "pgd", "steps": 0}, "steps must be an integer >= 1"),
        ({"attack": "pgd", "alpha": -0.01}, "alpha"),
        ({"attack": "fgsm", "alpha": 0.05}, "alpha applies to attack='fgsm_rs' or 'pgd'"),
        ({"attack": "fgsm_rs", "steps": 5}, "steps=5 applies to attack='pgd'"),
    ],
)
def test_adversarial_training_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        attacks.AdversarialTraining(**kwargs)
