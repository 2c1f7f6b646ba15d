"""Fine-tuning from checkpoints: ``pretrained=`` on every zoo model, from Python and from the CLI.

``pretrained=`` (a shipped entry, a ``.ckpt`` or a ``.safetensors`` path) copies weights into a model once it
is built: a new ``num_classes`` keeps a fresh head, a new ``in_channels`` adapts the first convolution, any
other mismatch is a ValueError. The optimizer, epoch and step start at zero; ``fit --ckpt_path`` stays the
full resume. The learning test fine-tunes ResNet-20 from Fashion-MNIST on the digits
(configs/resnet20_digits_finetune.yaml) and checks that it beats the same recipe from scratch.
"""

import logging
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import zoo
from zoo.hub import apply_pretrained
from datamodules import DigitsDataModule
from datamodules.base import ZooDataModule
from zoo.bench.reduced_builds import REDUCED
from zoo.core.base import ZooModule
from zoo.training.cli import ZooCLI, main

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "resnet20_digits_finetune.yaml"
LENET_DIGITS = REPO / "configs" / "lenet5_digits.yaml"

# ImageNet-size networks: the same layers, narrow and on small images (zoo.reduced).
OVERRIDES: dict[str, dict] = dict(REDUCED)


def build(name: str, seed: int, **kwargs) -> ZooModule:
    torch.manual_seed(seed)
    return zoo.create_model(name, **{**OVERRIDES.get(name, {}), **kwargs})


def save(model: ZooModule, path: Path) -> Path:
    """What ``Trainer.save_checkpoint`` writes for the model: weights, hyperparameters, the model's own entries."""
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": L.__version__}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def weights(model: ZooModule, skip: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict without the training-progress buffers (and without keys starting with ``skip``)."""
    names = model.training_state
    fresh = {k for k in model.state_dict() if any(k == n or (n.endswith(".") and k.startswith(n)) for n in names)}
    return {k: v for k, v in model.state_dict().items() if k not in fresh and not (skip and k.startswith(skip))}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(v, b[k]) for k, v in a.items())


def outputs(model: ZooModule, inputs) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model.eval()(*inputs) if isinstance(inputs, tuple) else model.eval()(inputs)
    return [t for t in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(t, torch.Tensor)]


def instantiate(args: list[str]) -> ZooCLI:
    """The CLI's model and datamodule, linked and built as ``train.py`` builds them, without running."""
    return ZooCLI(ZooModule, ZooDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=args)


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])  # the CLI reads args, not pytest's command line
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # seed_everything's environment, restored after the test
        monkeypatch.delenv(name, raising=False)
    return tmp_path


# --------------------------------------------------------------------------------------------------
# Every model
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_starts_from_a_checkpoint_of_itself(name, tmp_path):
    """pretrained=<a .ckpt of the same model>: the same weights and outputs (every model calls _finish_init)."""
    source = build(name, seed=0)
    path = save(source, tmp_path / "source.ckpt")
    model = build(name, seed=1, pretrained=str(path))
    assert not same(weights(build(name, seed=1)), weights(source))  # the seeds alone do not make them equal
    assert same(weights(model), weights(source))
    assert model.hparams.pretrained == str(path)
    x = source.example_input_array
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        x = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(outputs(model, x), outputs(source, x), strict=True))


def test_training_progress_starts_afresh(tmp_path):
    """A DQN fine-tuned from a trained one: its networks, but an empty replay buffer and epsilon_start."""
    small = dict(hidden_sizes=[16], buffer_size=200, learning_starts=20, steps_per_epoch=10, eval_episodes=3)
    source = build("dqn", seed=0, **small)
    source.env_steps.fill_(5000)
    source.epsilon.fill_(0.05)
    source.replay.size.fill_(200)
    path = save(source, tmp_path / "dqn.ckpt")
    model = build("dqn", seed=1, **{**small, "buffer_size": 500}, pretrained=str(path))  # another buffer size is fine
    assert same(weights(model), weights(source))
    assert (int(model.env_steps), float(model.epsilon), int(model.replay.size)) == (0, 1.0, 0)
    assert model.replay.obs.shape[0] == 500


# --------------------------------------------------------------------------------------------------
# Head, channels and mismatches
# --------------------------------------------------------------------------------------------------
def test_a_different_num_classes_keeps_a_fresh_head(tmp_path, caplog):
    source = build("lenet5", seed=0)
    source.record_preprocessing([0.3], [0.4], [f"c{i}" for i in range(10)])
    path = save(source, tmp_path / "lenet.ckpt")
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = build("lenet5", seed=1, num_classes=5, pretrained=str(path))
    assert "its head is dropped, a new 5-class head is initialised" in caplog.text
    assert same(weights(model, skip="head."), weights(source, skip="head."))
    fresh = build("lenet5", seed=1, num_classes=5)  # the head the model was built with stays
    assert torch.equal(model.head.weight, fresh.head.weight) and model.head.weight.shape == (5, 84)
    assert (model.hparams.mean, model.hparams.std) == ([0.3], [0.4])  # what the features expect travels
    assert model.hparams.class_names is None  # the source's labels are not this head's

    same_head = build("lenet5", seed=1, pretrained=str(path))
    assert same(weights(same_head), weights(source)) and same_head.class_names == [f"c{i}" for i in range(10)]


def test_a_different_in_channels_adapts_the_first_convolution_as_adapt_input_channels_does(tmp_path, caplog):
    source = build("resnet20", seed=0, in_channels=3, image_size=28)
    source.record_preprocessing([0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
    path = save(source, tmp_path / "rgb.ckpt")
    with caplog.at_level(logging.INFO, logger="zoo"):
        model = build("resnet20", seed=1, in_channels=1, image_size=28, pretrained=str(path))
    assert "adapted from 3 to 1 input channels" in caplog.text
    reference = zoo.load_checkpoint(path)
    reference.adapt_input_channels(1)
    assert same(model.state_dict(), reference.state_dict())
    assert model.hparams.mean == pytest.approx(reference.hparams.mean) and model.hparams.mean == pytest.approx([0.4])
    grey = torch.randn(2, 1, 28, 28)
    assert torch.allclose(outputs(model, grey)[0], outputs(source, grey.expand(-1, 3, -1, -1))[0], atol=1e-5)

    wider = build("resnet20", seed=1, in_channels=4, image_size=28, pretrained=str(path))
    reference = zoo.load_checkpoint(path)
    reference.adapt_input_channels(4)
    assert same(wider.state_dict(), reference.state_dict())


def test_another_image_size_of_a_vit_is_a_value_error_listing_keys_and_shapes(tmp_path):
    path = save(build("vit_tiny", seed=0, image_size=32, depth=1), tmp_path / "vit32.ckpt")
    with pytest.raises(ValueError) as error:
        build("vit_tiny", seed=1, image_size=28, depth=1, pretrained=str(path))
    message = str(error.value)
    assert "pos_embed: (1, 65, 96) in the source, (1, 50, 96) here" in message
    assert "image_size=28 (source: 32)" in message


def test_missing_and_extra_keys_are_listed(tmp_path):
    path = save(build("mlp", seed=0, hidden_sizes=[32, 16]), tmp_path / "mlp.ckpt")
    with pytest.raises(ValueError) as error:
        build("mlp", seed=1, hidden_sizes=[32], pretrained=str(path))
    message = str(error.value)
    assert "not in this model: features.3.weight, features.3.bias" in message
    assert "head.weight: (10, 16) in the source, (10, 32) here" in message
    assert "hidden_sizes=[32] (source: [32, 16])" in message


def test_another_class_is_refused(tmp_path):
    path = save(build("lenet5", seed=0), tmp_path / "lenet.ckpt")
    with pytest.raises(ValueError, match="holds a LeNet5, but this model is a SimpleCNN"):
        build("simple_cnn", seed=0, pretrained=str(path))


def test_a_missing_source_is_a_clear_error(tmp_path):
    """What every builder does with pretrained= (create_model, the CLI, hubconf): zoo.hub.apply_pretrained."""
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
        apply_pretrained(zoo.LeNet5(), str(tmp_path / "nowhere.ckpt"))
    with pytest.raises(KeyError, match="lenet5.nosuchdata"):
        apply_pretrained(zoo.LeNet5(), "lenet5.nosuchdata")


def test_a_constructor_given_pretrained_points_to_the_builders(tmp_path):
    """A model's __init__ builds the network and loads nothing: pretrained= there is a ValueError naming create_model."""
    with pytest.raises(ValueError, match=r"zoo.create_model\('lenet5', pretrained='lenet5.tiny'\)"):
        zoo.LeNet5(pretrained="lenet5.tiny")
    with pytest.raises(ValueError, match=r"zoo.create_model\('resnet\w+', pretrained="):
        zoo.ResNet(pretrained=str(tmp_path / "any.ckpt"))
    assert zoo.LeNet5(pretrained=None).hparams.pretrained is None


def test_a_different_vocabulary_is_refused(tmp_path):
    """A text model's embedding rows stand for its tokenizer's tokens: another vocabulary cannot reuse them."""
    tokens = {"level": "word", "lowercase": True, "tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]}
    source = build("transformer_classifier", seed=0, vocab_size=6, tokenizer=tokens)
    path = save(source, tmp_path / "text.ckpt")
    other = {**tokens, "tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "b", "c"]}
    with pytest.raises(ValueError, match="tokenizer differs"):
        build("transformer_classifier", seed=1, vocab_size=6, tokenizer=other, pretrained=str(path))
    model = build("transformer_classifier", seed=1, vocab_size=6, pretrained=str(path))
    assert model.hparams.tokenizer == tokens  # carried over, so the model encodes raw text


def test_freeze_backbone_with_pretrained_trains_only_the_new_head(tmp_path):
    source = build("lenet5", seed=0, image_size=28)
    path = save(source, tmp_path / "lenet.ckpt")
    model = build("lenet5", seed=1, image_size=28, num_classes=10, freeze_backbone=True, pretrained=str(path), lr=0.01)
    assert same(weights(model), weights(source))
    assert all(p.requires_grad == n.startswith("head.") for n, p in model.named_parameters())
    head_before = model.head.weight.detach().clone()
    trainer = L.Trainer(max_steps=3, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(image_size=28, batch_size=32))
    assert same(weights(model, skip="head."), weights(source, skip="head."))
    assert not torch.equal(model.head.weight, head_before)


# --------------------------------------------------------------------------------------------------
# From the CLI: fine-tuning and resuming stay distinct
# --------------------------------------------------------------------------------------------------
def test_cli_pretrained_links_the_data_then_copies_the_weights(in_tmp_cwd):
    """--model.init_args.pretrained <ckpt>: a 3-channel, 5-class source into the 1-channel, 10-class digits."""
    source = build("resnet20", seed=0, in_channels=3, image_size=28, num_classes=5)
    path = save(source, in_tmp_cwd / "source.ckpt")
    cli = instantiate(["--config", str(LENET_DIGITS), "--model", "zoo.ResNet", "--data.image_size=28",
                       "--model.init_args.pretrained", str(path)])  # fmt: skip
    model = cli.model
    assert (model.in_channels, model.num_classes, model.hparams.pretrained) == (1, 10, str(path))
    reference = zoo.load_checkpoint(path)
    reference.adapt_input_channels(1)
    assert same(weights(model, skip="head."), weights(reference, skip="head."))

    fit = main(["fit", "--config", str(LENET_DIGITS), "--model", "zoo.ResNet", "--data.image_size=28",
                "--model.init_args.pretrained", str(path), "--trainer.fast_dev_run=true"])  # fmt: skip
    assert fit.trainer.state.finished and fit.trainer.global_step == 1


def last_checkpoint(trainer) -> Path:
    """The run's last.ckpt: the CLI's LastCheckpoint keeps it (the best-model checkpoint keeps the best only)."""
    from zoo.training.resume import LastCheckpoint

    (callback,) = [c for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)]
    assert callback.last_model_path
    return Path(callback.last_model_path)


def test_fine_tuning_starts_at_step_0_and_resume_continues(in_tmp_cwd):
    limits = ["--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1", "--test_after_fit=false"]
    first = main(["fit", "--config", str(LENET_DIGITS), "--trainer.max_epochs=2", "--trainer.default_root_dir=first", *limits])
    last = last_checkpoint(first.trainer)
    trained = torch.load(last, weights_only=True)
    assert trained["global_step"] == 6

    tune = main(["fit", "--config", str(LENET_DIGITS), "--trainer.max_epochs=1", "--trainer.default_root_dir=tune",
                 "--model.init_args.pretrained", str(last), *limits])  # fmt: skip
    assert (tune.trainer.current_epoch, tune.trainer.global_step) == (1, 3)  # a new run: epoch and step from 0
    adam = tune.trainer.optimizers[0].state
    assert {int(s["step"]) for s in adam.values()} == {3}  # a fresh optimizer: 3 steps, not 6 + 3

    resume = main(["fit", "--config", str(LENET_DIGITS), "--trainer.max_epochs=3", "--trainer.default_root_dir=resume",
                   "--ckpt_path", str(last), *limits])  # fmt: skip
    assert (resume.trainer.current_epoch, resume.trainer.global_step) == (3, 9)
    assert {int(s["step"]) for s in resume.trainer.optimizers[0].state.values()} == {9}

    # Both: the model is built from pretrained=, then the resumed checkpoint's weights replace it.
    other = save(build("lenet5", seed=5, image_size=32), in_tmp_cwd / "other.ckpt")
    both = main(["fit", "--config", str(LENET_DIGITS), "--trainer.max_epochs=2", "--trainer.default_root_dir=both",
                 "--model.init_args.pretrained", str(other), "--ckpt_path", str(last), *limits])  # fmt: skip
    assert both.trainer.global_step == 6  # nothing left to train: the checkpoint's weights, as saved
    assert same(both.model.state_dict(), trained["state_dict"])

    # The fine-tuned checkpoint records its start, but loading it needs only its own weights.
    tuned = last_checkpoint(tune.trainer)
    assert torch.load(tuned, weights_only=True)["hyper_parameters"]["pretrained"] == str(last)
    last.unlink()
    loaded = zoo.load_checkpoint(tuned)
    assert loaded.hparams.pretrained is None
    assert same(loaded.state_dict(), torch.load(tuned, weights_only=True)["state_dict"])


# --------------------------------------------------------------------------------------------------
# Learning: the Fashion-MNIST start beats scratch on the digits
# --------------------------------------------------------------------------------------------------
SOURCE = "resnet20.fashionmnist"  # the shipped entry (checkpoints/), re-verified by tests/test_shipped_weights.py
# The recipe's one epoch, digits test split (359 images), from the shipped entry, seeds 0, 1, 2:
#   pretrained 0.9220, 0.9526, 0.9554; scratch 0.1421, 0.2730, 0.6017: the smallest gain 0.354 (seed 2).
# After 2 epochs scratch catches up for some seeds (seed 2: 0.9554), so the budget is one.
MARGIN = 0.20


@pytest.mark.learning
def test_the_fashion_mnist_start_beats_scratch_on_the_digits(in_tmp_cwd):
    recipe = yaml.safe_load(RECIPE.read_text())
    assert recipe["model"]["init_args"]["pretrained"] == SOURCE and recipe["data"]["init_args"]["image_size"] == 28
    assert zoo.list_pretrained(SOURCE) == [SOURCE]
    accuracy = {}
    for start in (SOURCE, "null"):
        cli = main(["fit", "--config", str(RECIPE), "--model.init_args.pretrained", start,
                    f"--trainer.default_root_dir={in_tmp_cwd / start.replace('/', '_')}"])  # fmt: skip
        accuracy[start] = float(cli.trainer.callback_metrics["test/acc"])
    pretrained, scratch = accuracy[SOURCE], accuracy["null"]
    print(f"digits test accuracy after {recipe['trainer']['max_epochs']} epochs: pretrained {pretrained:.4f}, scratch {scratch:.4f}")
    assert pretrained >= scratch + MARGIN, accuracy
