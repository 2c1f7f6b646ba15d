"""PGD: one implementation with FGSM, its projection, the catastrophic-overfitting check (FGSM high while PGD
collapses) on a model whose gradient is masked at the clean images, and training with FGSM from a random start
or with PGD."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo import attacks
from zoo.core.base import ClassifierModule

MEAN, STD = [0.286], [0.353]


def test_pgd_with_one_step_of_epsilon_from_the_clean_image_is_fgsm():
    torch.manual_seed(0)
    model = zoo.create_model("lenet5").eval()
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    one_step = attacks.pgd(model, x, y, 0.1, steps=1, alpha=0.1, random_start=False, mean=MEAN, std=STD)
    # FGSM written out: one signed-gradient step of epsilon, clamped to [0, 1]
    pixels = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model((pixels - MEAN[0]) / STD[0]), y)
    (grad,) = torch.autograd.grad(loss, pixels)
    assert torch.equal(one_step, (x + 0.1 * grad.sign()).clamp(0, 1))
    assert torch.equal(attacks.fgsm(model, x, y, 0.1, mean=MEAN, std=STD), one_step)


def test_pgd_stays_in_the_ball_and_the_pixel_range_and_beats_fgsm():
    torch.manual_seed(0)
    model = zoo.create_model("lenet5").eval()
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    run = lambda seed: attacks.pgd(model, x, y, 0.1, mean=MEAN, std=STD, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    adv = run(0)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert torch.equal(run(0), adv) and not torch.equal(run(1), adv)  # the random start is the generator's
    loss = lambda images: nn.functional.cross_entropy(model((images - MEAN[0]) / STD[0]), y).item()  # noqa: E731
    assert loss(adv) > loss(attacks.fgsm(model, x, y, 0.1, mean=MEAN, std=STD)) > loss(x)
    assert torch.equal(attacks.pgd(model, x, y, 0.0), x)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"epsilon": -0.1}, "epsilon must be >= 0"), ({"steps": 0}, "steps must be an integer >= 1"),
     ({"steps": 2.5}, "steps must be an integer"), ({"alpha": 0.0}, "alpha")],
)  # fmt: skip
def test_pgd_and_the_robustness_callback_check_their_arguments(kwargs, match):
    model = zoo.create_model("lenet5")
    args = {"epsilon": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        attacks.pgd(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), args.pop("epsilon"), **args)
    callback_args = {"pgd_steps": kwargs.get("steps", 10), "pgd_alpha": kwargs.get("alpha"), "pgd_epsilons": [kwargs.get("epsilon", 0.1)]}
    with pytest.raises(ValueError, match=match):
        attacks.FGSMRobustness(**callback_args)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        attacks.fgsm(model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), -0.1)


# -- catastrophic overfitting -------------------------------------------------------------------------
class Brightness(ClassifierModule):
    """Two classes, dark (0) and bright (1), told apart by the mean pixel: ``logit = scale * (mean - 0.5)``.
    Linear, so FGSM is its strongest L-infinity attack.

    With ``masked``, the pixels first go through a staircase that is flat (zero gradient) within a hundredth of a grey
    level of every multiple of 1/255, where clean images lie, and has slope 1 between: the same predictions to half
    a grey level, but an input gradient of exactly zero at every clean image. That is gradient masking as a model
    that overfit catastrophically learns it: FGSM, which follows the gradient at the clean point, does nothing;
    PGD, from a random start off the grid, finds the real gradient."""

    def __init__(self, masked: bool = False) -> None:
        super().__init__(num_classes=2)
        self.masked = masked
        self.scale = nn.Parameter(torch.tensor(50.0))

    def forward(self, x):  # (B, 1, H, W) pixels (identity normalization) -> (B, 2)
        if self.masked:
            level = torch.round(x * 255)  # (B, 1, H, W) grey levels; no gradient
            frac = x * 255 - level  # in [-0.5, 0.5]
            x = (level + torch.relu(frac.abs() - 0.01) * torch.sign(frac)) / 255  # flat where |frac| < 0.01
        s = x.flatten(1).mean(1) - 0.5  # (B,)
        return self.scale * torch.stack([-s, s], dim=1)


def _images(dark: float, bright: float, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 8x8 images on the 1/255 grid, half around ``dark`` and half around ``bright`` (+-0.02)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    centre = torch.where(y == 1, bright, dark).view(n, 1, 1, 1)
    pixels = torch.round((centre + 0.04 * torch.rand(n, 1, 8, 8, generator=g) - 0.02) * 255) / 255  # (n, 1, 8, 8)
    return pixels, y


@pytest.mark.parametrize(
    "masked,dark,bright,flagged",
    [
        (True, 0.45, 0.55, True),  # masked gradient: FGSM finds nothing, PGD breaks every image
        (False, 0.45, 0.55, False),  # plain: FGSM and PGD both break it, nothing to suspect
        (False, 0.3, 0.7, False),  # genuinely robust at 0.1: neither attack can cross the margin of 0.2
        (True, 0.3, 0.7, False),  # masked but robust anyway: PGD finds nothing either
    ],
)
def test_catastrophic_overfitting_is_flagged_when_fgsm_holds_and_pgd_collapses(masked, dark, bright, flagged, recwarn):
    model = Brightness(masked=masked)
    pixels, y = _images(dark, bright)
    report = attacks.robustness(model, [(pixels[:16], y[:16]), (pixels[16:], y[16:])], epsilons=[0.0, 0.1], mean=[0.0], std=[1.0])
    assert report.clean == 1.0
    messages = [str(w.message) for w in recwarn if "catastrophic overfitting" in str(w.message)]
    if flagged:
        assert report.fgsm[0.1] == 1.0 and report.pgd[0.1] == 0.0
        assert report.suspected == [0.1]
        assert messages == ["catastrophic overfitting suspected at eps=0.1: PGD-10 accuracy 0.0000 is far below FGSM accuracy "
                            "1.0000 (more than 10 points): FGSM follows a masked gradient; train with attack='fgsm_rs' or 'pgd'"]  # fmt: skip
        assert "WARNING: catastrophic overfitting suspected at eps=0.1" in attacks.format_table(report)
    else:
        assert report.fgsm[0.1] == report.pgd[0.1] == (1.0 if bright - dark > 0.3 else 0.0)
        assert report.suspected == [] and messages == []


def test_the_overfitting_rule_needs_fgsm_to_claim_robustness_and_pgd_to_fall_past_the_margin():
    # the old docs' plain LeNet-5 (clean .89, FGSM .16 at 0.1): FGSM already breaks it, PGD breaking it more is no news
    assert not attacks.overfitting_suspected(clean=0.8918, fgsm=0.1582, pgd=0.01)
    assert attacks.overfitting_suspected(clean=0.85, fgsm=0.72, pgd=0.02)  # catastrophic overfitting
    assert not attacks.overfitting_suspected(clean=0.85, fgsm=0.72, pgd=0.65)  # PGD a few points below FGSM: robust
    assert attacks.overfitting_suspected(clean=0.85, fgsm=0.72, pgd=0.65, margin=0.05)


def test_the_margin_is_an_argument_of_the_evaluation():
    pixels, y = _images(0.45, 0.55)
    model = Brightness(masked=True)
    assert attacks.robustness(model, [(pixels, y)], epsilons=[0.1], mean=[0.0], std=[1.0], margin=1.0).suspected == []  # PGD can't fall > 100 points
    with pytest.raises(ValueError, match="margin is a fraction of accuracy in \\[0, 1\\], got 10"):
        attacks.robustness(model, [(pixels, y)], margin=10)
    with pytest.raises(ValueError, match="margin"):
        attacks.FGSMRobustness(margin=-0.1)


def test_the_robustness_callback_warns_and_logs_both_attacks(tmp_path, capsys):
    pixels, y = _images(0.45, 0.55)
    callback = attacks.FGSMRobustness(epsilons=[0.0, 0.1], output=str(tmp_path / "r.png"), mean=[0.0], std=[1.0], num_examples=2)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])
    with pytest.warns(UserWarning, match="catastrophic overfitting suspected at eps=0.1: PGD-10 accuracy 0.0000"):
        trainer.test(Brightness(masked=True), DataLoader(TensorDataset(pixels, y), batch_size=16), verbose=False)
    assert float(trainer.callback_metrics["test/fgsm_acc_0.10"]) == 1.0 and float(trainer.callback_metrics["test/pgd_acc_0.10"]) == 0.0
    assert "WARNING: catastrophic overfitting suspected" in capsys.readouterr().out


# -- training ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,pgd_kwargs",
    [
        ({"attack": "fgsm_rs"}, {"steps": 1, "alpha": 0.125, "random_start": True}),  # Wong et al.: alpha = 1.25 eps
        ({"attack": "fgsm_rs", "alpha": 0.05}, {"steps": 1, "alpha": 0.05, "random_start": True}),
        ({"attack": "pgd"}, {"steps": 10, "alpha": 0.025, "random_start": True}),
        ({"attack": "pgd", "steps": 3, "alpha": 0.04}, {"steps": 3, "alpha": 0.04, "random_start": True}),
        ({}, {"steps": 1, "alpha": 0.1, "random_start": False}),  # the default, as old recipes and checkpoints have it
    ],
)
def test_adversarial_training_attacks_as_configured(kwargs, pgd_kwargs):
    torch.manual_seed(0)
    model = zoo.create_model("lenet5").train()
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    batch = [x.clone(), y]
    torch.manual_seed(1)
    attacks.AdversarialTraining(epsilon=0.1, ratio=0.5, mean=MEAN, std=STD, **kwargs).on_train_batch_start(None, model, batch, 0)
    torch.manual_seed(1)  # the random start draws from the global generator, which seed_everything seeds
    expected = attacks.pgd_normalized(model.eval(), x[:4], y[:4], 0.1, MEAN, STD, **pgd_kwargs)
    assert torch.equal(batch[0][:4], expected) and torch.equal(batch[0][4:], x[4:])
    clean = (x[:4] * STD[0] + MEAN[0]).clamp(0, 1)
    assert (batch[0][:4] * STD[0] + MEAN[0] - clean).abs().max() <= 0.1 + 1e-5  # projected into the ball
    if pgd_kwargs["random_start"]:
        assert not torch.equal(expected, attacks.fgsm_normalized(model, x[:4], y[:4], 0.1, MEAN, STD))
