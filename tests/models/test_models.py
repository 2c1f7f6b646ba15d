"""Every (x, y)-batch model, parametrized: shapes, gradients, a fast_dev_run fit, checkpoint round trip, input checks.

Models trained one loss per ``(x, y)`` batch (every ``ClassifierModule`` and ``RegressorModule``) are
tested here the moment they are registered. The other families (encoder-decoders, autoencoders, GANs,
DQN) have their own batches and loops; their test files run the same standard tests over them, and
``test_every_registered_model_has_standard_tests`` keeps that list complete.
"""

import inspect
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.bench.reduced_builds import REDUCED
from tests.support.trainers import quiet_trainer

TESTS = Path(__file__).resolve().parents[1]  # tests/, every folder
MODELS = [n for n in zoo.list_models() if issubclass(zoo.get_model_class(n), (zoo.ClassifierModule, zoo.RegressorModule))]

# Cheaper builds of the large models for these tests (e.g. ImageNet networks on small images):
# name -> create_model overrides (zoo.reduced). Their full-size configuration is tested in the family's own file.
OVERRIDES: dict[str, dict] = dict(REDUCED)


def build(name: str, **kwargs) -> zoo.ZooModule:
    return zoo.create_model(name, **{**OVERRIDES.get(name, {}), **kwargs})


def takes_tokens(model: zoo.ZooModule) -> bool:
    """True for models reading integer token ids (B, T) rather than float tensors."""
    return not model.example_input_array.is_floating_point()


def make_input(model: zoo.ZooModule, n: int = 8, g: torch.Generator | None = None) -> torch.Tensor:
    g = g or torch.Generator().manual_seed(0)
    shape = (n, *model.example_input_array.shape[1:])
    if takes_tokens(model):
        return torch.randint(1, model.hparams.vocab_size, shape, generator=g)  # 0 is padding
    return torch.randn(shape, generator=g)


def output_width(model: zoo.ZooModule) -> int:
    return model.num_outputs


def make_batch(model: zoo.ZooModule, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of the model's input shape with targets of the right kind."""
    g = torch.Generator().manual_seed(0)
    x = make_input(model, n, g)
    if isinstance(model, zoo.ClassifierModule):
        y = torch.randint(0, model.num_classes, (n,), generator=g)
    else:
        y = torch.randn(n, output_width(model), generator=g)
    return x, y


def test_every_registered_model_has_standard_tests():
    """Models outside MODELS must be named in a family test file running the standard tests."""
    sources = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py") if p.name != Path(__file__).name)
    missing = [n for n in zoo.list_models() if n not in MODELS and f'"{n}"' not in sources]
    assert not missing, f"no standard tests for {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shapes_and_finite_gradients(name):
    model = build(name)
    x, y = make_batch(model)
    out = model(x)
    assert out.shape == (8, output_width(model))
    assert torch.isfinite(out).all()
    loss = model.compute_loss(out, y)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"


@pytest.mark.parametrize("name", MODELS)
def test_example_input_array_matches_input_shape(name):
    model = build(name)
    if not takes_tokens(model):
        assert model.example_input_array.shape == (2, *model.input_shape)
    assert model(model.example_input_array).shape == (2, output_width(model))


@pytest.mark.parametrize("name", MODELS)
def test_fast_dev_run_fit(name):
    model = build(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(TensorDataset(*make_batch(model, 16)), batch_size=8)
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    trainer.test(model, dataloaders=loader)
    assert trainer.state.finished
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "no parameter changed"
    assert "test/loss" in trainer.callback_metrics


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip_is_exact_and_weights_only(name, tmp_path):
    model = build(name)
    loader = DataLoader(TensorDataset(*make_batch(model, 16)), batch_size=8)
    trainer = quiet_trainer(max_steps=2, default_root_dir=tmp_path, enable_checkpointing=False)
    trainer.fit(model, train_dataloaders=loader)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    raw = torch.load(path, weights_only=True)  # primitive hyperparameters only: no pickled objects
    assert raw["hyper_parameters"] == dict(model.hparams)

    loaded = type(model).load_from_checkpoint(path, weights_only=True)
    assert type(loaded) is type(model)
    x, _ = make_batch(model)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def _is_primitive(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_primitive(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_primitive(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def documented_arguments(cls: type) -> dict[str, str]:
    """The ``Args:`` section of ``cls``'s own docstring: argument -> its help text, one line."""
    doc = inspect.cleandoc(vars(cls).get("__doc__") or "")
    if "Args:" not in doc:
        return {}
    args, name = {}, None
    for line in doc.split("Args:", 1)[1].splitlines()[1:]:
        if not line.strip():
            break
        if line.startswith("    ") and not line.startswith("        ") and ":" in line:
            name, text = line.strip().split(":", 1)
            args[name] = text.strip()
        elif name is not None:
            args[name] += " " + line.strip()
    return args


def defining_class(cls: type, argument: str) -> type | None:
    """The first class in ``cls``'s MRO whose own ``__init__`` takes ``argument``: the one whose docstring
    documents it, and the one whose docstring LightningCLI's ``--help`` reads."""
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and argument in inspect.signature(klass.__init__).parameters:
            return klass
    return None


@pytest.mark.parametrize("name", zoo.list_models())  # every family, not only (x, y)-batch models
def test_hyperparameters_are_primitive_and_documented(name):
    """Every recorded argument is documented by the class whose ``__init__`` defines it: the optimizer
    arguments by ZooModule, num_classes by ClassifierModule; a model does not copy its bases' Args: lines."""
    model = build(name)
    cls = type(model)
    assert _is_primitive(dict(model.hparams))
    # The arguments of every __init__ along the MRO (BertClassifier's own __init__ takes only **kwargs: its
    # encoder arguments are BertBase's), all recorded.
    params = [
        p
        for klass in cls.__mro__
        if "__init__" in vars(klass) and klass.__module__.startswith("zoo.")
        for p in inspect.signature(klass.__init__).parameters.values()
        if p.kind == p.KEYWORD_ONLY
    ]
    assert params and set(p.name for p in params) <= set(model.hparams)
    for key in model.hparams:
        owner = defining_class(cls, key)
        assert owner is not None, f"{cls.__name__} records {key!r}, which no __init__ in its MRO takes"
        assert key in documented_arguments(owner), f"{owner.__name__} docstring has no Args: line for {key!r}"


@pytest.mark.parametrize("model", ["LeNet5", "ResNet"])
def test_model_help_shows_inherited_arguments_with_their_help(model, capsys, monkeypatch):
    """``train.py fit --model.help <Model>`` lists every argument, those it inherits with their base's help text."""
    from zoo.training.cli import main

    cls = getattr(zoo, model)
    monkeypatch.setenv("COLUMNS", "1000")  # one line per argument: no wrapping inside the help texts
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.help", model])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    arguments = {
        p.name
        for klass in cls.__mro__
        if "__init__" in vars(klass) and issubclass(klass, zoo.ZooModule)
        for p in inspect.signature(klass.__init__).parameters.values()
        if p.kind == p.KEYWORD_ONLY
    }
    for argument in arguments:
        assert f"--model.{argument} " in out, f"--model.{argument} missing from the help"
        owner = defining_class(cls, argument)
        text = documented_arguments(owner)[argument]
        assert text in out, f"--model.{argument}: {owner.__name__}'s help text {text!r} not shown"
    inherited = {"optimizer", "lr", "weight_decay", "momentum", "scheduler", "num_classes", "binary", "label_smoothing"}
    assert {defining_class(cls, a) for a in inherited} == {zoo.ZooModule, zoo.ClassifierModule}


@pytest.mark.parametrize("name", MODELS)
def test_wrong_dtype_is_a_clear_error(name):
    model = build(name)
    if takes_tokens(model):
        with pytest.raises(ValueError, match=r"expects an integer tensor of token ids"):
            model(torch.zeros(2, 5))
        return
    x = torch.zeros(2, *model.input_shape, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"expects a floating-point tensor of shape \(B, "):
        model(x)


@pytest.mark.parametrize("name", MODELS)
def test_wrong_shape_is_a_clear_error(name):
    model = build(name)
    if takes_tokens(model):
        with pytest.raises(ValueError, match=r"expects input of shape \(B, T\)"):
            model(torch.ones(2, 3, 4, dtype=torch.long))
        return
    shape = list(model.input_shape)
    shape[0] += 1  # one channel / feature too many
    with pytest.raises(ValueError, match=r"expects input of shape \(B, .*got \(2, "):
        model(torch.zeros(2, *shape))
    with pytest.raises(ValueError, match="expects input of shape"):
        model(torch.zeros(*model.input_shape))  # no batch dimension


@pytest.mark.parametrize("name", [n for n in MODELS if issubclass(zoo.get_model_class(n), zoo.ClassifierModule)])
def test_classifier_api_features_head_and_reset(name):
    model = build(name).eval()
    x, _ = make_batch(model)
    features = model.forward_features(x)
    assert features.shape == (8, model.num_features)
    assert torch.equal(model.forward_head(features), model(x))

    model.reset_classifier(3)
    assert model(x).shape == (8, 3)
    assert model.num_features == features.shape[1]
    assert model.hparams.num_classes == 3
    probs = model.predict_step((x,), 0)
    assert probs.shape == (8, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(8))


def test_lenet5_matches_the_paper():
    model = zoo.LeNet5(in_channels=1, image_size=32, num_classes=10)
    # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850 (dense C3, as in most reimplementations)
    assert sum(p.numel() for p in model.parameters()) == 61_706
    x = torch.randn(2, 1, 32, 32)
    assert model.features[:3](x).shape == (2, 6, 14, 14)  # C1 + S2
    assert model.features[:6](x).shape == (2, 16, 5, 5)  # C3 + S4
    padded = zoo.LeNet5(image_size=28)
    assert padded.features[0].padding == (2, 2)
    assert sum(p.numel() for p in padded.parameters()) == 61_706


@pytest.mark.parametrize("size", [8, 30, 64])
def test_lenet5_refuses_other_sizes(size):
    with pytest.raises(ValueError, match="28x28 or 32x32"):
        zoo.LeNet5(image_size=size)


@pytest.mark.parametrize("size,flat", [(28, 320), (32, 500)])
def test_simple_cnn_feature_sizes(size, flat):
    model = zoo.SimpleCNN(image_size=size, in_channels=3)
    assert model.features[-3].in_features == flat  # fc 50 reads 20 x side x side
    assert model(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_mlp_flattens_images_and_binary_mode():
    model = zoo.MLP(in_features=784, hidden_sizes=[32, 16])
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert model(torch.randn(3, 784)).shape == (3, 10)
    binary = zoo.MLP(in_features=2, num_classes=2, binary=True)
    logits = binary(torch.randn(5, 2))
    assert logits.shape == (5, 1)
    loss = binary.compute_loss(logits, torch.tensor([0, 1, 0, 1, 1]))
    assert loss.ndim == 0 and loss > 0
    with pytest.raises(ValueError, match="binary=True needs num_classes=2"):
        zoo.MLP(in_features=2, num_classes=3, binary=True)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"scheduler": "warp"}, "scheduler must be one of"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"num_classes": 1}, "num_classes must be >= 2"),
        ({"activation": "swish2"}, "activation must be one of"),
        ({"pooling": "median"}, "pooling must be"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.LeNet5(**kwargs)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("scheduler", ["none", "cosine", "onecycle", "plateau"])
def test_optimizers_and_schedulers(optimizer, scheduler):
    model = zoo.create_model("mlp", in_features=4, num_classes=3, optimizer=optimizer, scheduler=scheduler, lr=0.01, weight_decay=0.1)
    loader = DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 3, (32,))), batch_size=8)
    trainer = quiet_trainer(max_epochs=2, enable_checkpointing=False)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    opt = trainer.optimizers[0]
    assert type(opt).__name__.lower() == optimizer
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    if scheduler == "cosine":
        assert opt.param_groups[0]["lr"] < 0.01 * 0.01  # decayed to (almost) nothing by the end of the run
    if scheduler == "onecycle":
        assert opt.param_groups[0]["lr"] < 0.01 * 0.1  # annealed far below its peak


def test_the_supervised_step_lives_once_in_zoo_module():
    """ZooModule holds the loss-per-(x, y)-batch steps, once; classifiers and regressors inherit them unchanged,
    and every model with its own loop replaces all three steps (none falls back to the (x, y) step)."""
    from zoo.core.base import SupervisedModule
    from zoo.models.sequence.decoding import TranslationModule

    assert SupervisedModule is zoo.ZooModule  # the old name of the (x, y)-batch base stays importable
    steps = ("training_step", "validation_step", "test_step")
    for cls in (zoo.ClassifierModule, zoo.RegressorModule, zoo.ResNet, zoo.LinearRegression):
        assert all(getattr(cls, step) is getattr(zoo.ZooModule, step) for step in steps)
    for cls in (zoo.GAN, zoo.DCGAN, zoo.DQN, TranslationModule, zoo.BertForMaskedLM, zoo.SimCLR, zoo.VAE):
        assert not [step for step in steps if getattr(cls, step) is getattr(zoo.ZooModule, step)], cls.__name__
    with pytest.raises(NotImplementedError, match="defines no compute_loss"):
        zoo.ZooModule().compute_loss(torch.zeros(1), torch.zeros(1))
