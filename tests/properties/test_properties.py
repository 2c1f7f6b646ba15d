"""Property-based tests (hypothesis): any constructor arguments and input shape either give a forward pass
of the right output shape, or a ValueError / TypeError raised by the zoo's own checks that names the
argument at fault, never an exception from deep inside torch.

Arguments are drawn around and beyond their valid ranges (0, negatives, sizes that do not divide,
probabilities >= 1); inputs are the model's own shape or a perturbed one. The examples are derandomized
(the same on every run); ``ZOO_HYPOTHESIS_EXAMPLES`` raises their number for a longer search.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from zoo.models.sequence.bert import CLS_ID, FIRST_WORD_ID, SEP_ID

ZOO_DIR = Path(zoo.__file__).resolve().parent
EXAMPLES = int(os.environ.get("ZOO_HYPOTHESIS_EXAMPLES", "30"))

def _settings(cls: type) -> settings:
    examples = EXAMPLES // 3 if cls is zoo.AlexNet else EXAMPLES  # 224-px-scale convolutions: the slowest by far
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def maybe(valid: st.SearchStrategy, *bad) -> st.SearchStrategy:
    """Mostly ``valid`` values, sometimes one of ``bad`` (out of range, not dividing, ...): when the
    selector drawn from 0..7 is 7, a bound, which hypothesis draws more often than an inner value such
    as 5 (with 5, a run of 30 examples could draw no bad value for a model at all).

    (``st.one_of`` would pick the few bad values about as often as the valid range, and most drawn
    models would then never reach a forward pass.)
    """
    return st.tuples(st.integers(0, 7), valid, st.sampled_from(bad)).map(lambda t: t[2] if t[0] == 7 else t[1])


size = maybe(st.integers(1, 40), -1, 0)
width = maybe(st.integers(1, 12), -1, 0)
small = maybe(st.integers(1, 6), -1, 0)
probability = maybe(st.sampled_from([0.0, 0.25, 0.5]), -0.1, 1.0, 1.5)
classes = maybe(st.integers(2, 12), -1, 0, 1)
channels = maybe(st.integers(1, 4), -1, 0)
widths = maybe(st.lists(st.integers(1, 12), min_size=1, max_size=4), [], [4, 0], [-1])


def image_args(image_size: st.SearchStrategy, **extra) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"in_channels": channels, "image_size": image_size, "num_classes": classes, "dropout": probability, **extra})


#: class -> strategy of constructor arguments. The arguments not drawn keep their defaults.
MODELS: dict[type, st.SearchStrategy[dict]] = {
    zoo.LeNet5: image_args(
        maybe(st.sampled_from([28, 32]), 0, 27, 30, 64),
        activation=maybe(st.sampled_from(["tanh", "relu"]), "swish"), pooling=maybe(st.sampled_from(["avg", "max"]), "min"),
    ),  # fmt: skip
    zoo.SimpleCNN: image_args(maybe(st.integers(16, 36), 0, 12, 15), channels=maybe(st.lists(st.integers(1, 12), min_size=2, max_size=2), [4], [4, 0], [2, 3, 4]), hidden_size=width),
    zoo.AlexNetSmall: image_args(maybe(st.integers(8, 36), 0, 7), channels=maybe(st.lists(st.integers(1, 12), min_size=5, max_size=5), [4] * 4, [4, 4, 0, 4, 4]), hidden_size=width),
    zoo.AlexNet: image_args(maybe(st.sampled_from([63, 64, 70]), -1, 32, 62), classifier_width=width),
    zoo.VGG: image_args(maybe(st.integers(17, 40), 8, 16), depth=maybe(st.sampled_from([11, 13, 16, 19]), 0, 12), width=small, pool_size=small, classifier_width=width),
    zoo.ResNet: st.integers(1, 4).flatmap(
        lambda stages: image_args(
            size,
            block=maybe(st.sampled_from(["basic", "bottleneck"]), "dense"),
            layers=maybe(st.lists(st.integers(1, 2), min_size=stages, max_size=stages), [], [0] * stages, [1] * (stages + 1)),
            widths=maybe(st.lists(st.integers(1, 8), min_size=stages, max_size=stages), [], [-1] * stages),
            stem=maybe(st.sampled_from(["cifar", "imagenet"]), "tiny"),
        )
    ),
    zoo.VisionTransformer: image_args(
        maybe(st.sampled_from([8, 12, 16, 28, 32]), 0, 7, 30), patch_size=maybe(st.sampled_from([1, 2, 4]), -1, 0, 3),
        heads=maybe(st.sampled_from([1, 2]), 0, 3), dim=maybe(st.sampled_from([4, 8, 12]), 0, 5),
        depth=maybe(st.integers(0, 2), -1), mlp_ratio=maybe(st.sampled_from([0.5, 2.0]), -1.0, 0.0),
    ),  # fmt: skip
    zoo.MLP: st.fixed_dictionaries({"in_features": width, "hidden_sizes": widths, "num_classes": classes, "dropout": probability}),
    zoo.RecurrentClassifier: st.fixed_dictionaries(
        {"cell": maybe(st.sampled_from(["rnn", "lstm", "gru"]), "tcn"), "input_size": width, "seq_len": small, "hidden_size": width,
         "num_layers": maybe(st.integers(1, 3), -1, 0), "dropout": probability, "bidirectional": st.booleans(), "num_classes": classes}
    ),  # fmt: skip
    zoo.LSTMForecaster: st.integers(1, 4).flatmap(
        lambda columns: st.fixed_dictionaries(
            {"input_size": st.just(columns), "window": small, "horizon": small, "hidden_size": width, "num_layers": maybe(st.integers(1, 3), -1, 0),
             "dropout": probability, "target": maybe(st.integers(0, columns - 1), -1, columns)}
        )
    ),  # fmt: skip
    zoo.Autoencoder: st.fixed_dictionaries({"in_channels": channels, "image_size": size, "latent_dim": width, "hidden_sizes": widths}),
    zoo.ConvAutoencoder: st.fixed_dictionaries(
        {"in_channels": channels, "image_size": maybe(st.sampled_from([4, 8, 16, 28]), 0, 6, 30), "latent_dim": width,
         "channels": maybe(st.lists(st.integers(1, 8), min_size=2, max_size=2), [4], [0, 4])}
    ),  # fmt: skip
    zoo.GAN: st.fixed_dictionaries(
        {"in_channels": channels, "image_size": size, "latent_dim": width, "generator_sizes": widths,
         "discriminator_sizes": widths, "dropout": probability, "conditional": st.booleans(), "num_classes": classes}
    ),  # fmt: skip
    zoo.DCGAN: st.fixed_dictionaries(
        {"in_channels": channels, "image_size": maybe(st.sampled_from([4, 8, 16, 28]), 0, 6, 30), "latent_dim": width,
         "feature_maps": small, "conditional": st.booleans(), "num_classes": classes}
    ),  # fmt: skip
    # Two arguments only: their out-of-range values drawn about half the time, or hardly any model would be refused.
    zoo.LinearRegression: st.fixed_dictionaries({"in_features": st.one_of(small, st.sampled_from([-1, 0])), "out_features": st.one_of(small, st.sampled_from([-1, 0]))}),
    zoo.GoogLeNet: image_args(
        maybe(st.sampled_from([16, 28, 32]), 0, 3), stem=maybe(st.just("cifar"), "tiny"),
        width=maybe(st.sampled_from([0.0625, 0.125]), 0.0, -0.5),
    ),  # fmt: skip
    zoo.DenseNet: image_args(
        maybe(st.integers(8, 32), 0), stem=maybe(st.sampled_from(["cifar", "imagenet"]), "tiny"), growth_rate=small,
        block_config=maybe(st.lists(st.integers(1, 2), min_size=1, max_size=3), [], [0], [1, -1]),
        num_init_features=width, bn_size=small, compression=maybe(st.sampled_from([0.5, 1.0]), 0.0, 1.5), drop_rate=probability,
    ),  # fmt: skip
    zoo.WideResNet: image_args(
        maybe(st.integers(8, 32), 0), depth=maybe(st.just(10), 0, 12, 11, 4),
        widen_factor=maybe(st.integers(1, 2), 0, -1), block_dropout=probability,
    ),  # fmt: skip
    zoo.VAE: st.fixed_dictionaries(
        {"in_channels": channels, "image_size": maybe(st.sampled_from([4, 8, 16, 28]), 0, 6, 30), "latent_dim": width,
         "encoder": maybe(st.sampled_from(["mlp", "conv"]), "rnn"), "hidden_sizes": widths,
         "channels": maybe(st.lists(st.integers(1, 8), min_size=2, max_size=2), [4], [0, 4]),
         "likelihood": maybe(st.sampled_from(["bernoulli", "gaussian"]), "poisson"),
         "gaussian_std": maybe(st.sampled_from([0.0, 0.1]), -0.1), "beta": maybe(st.sampled_from([0.5, 1.0]), -1.0),
         "iw_samples": maybe(st.integers(1, 5), 0, -1)}
    ),  # fmt: skip
    zoo.SimCLR: st.fixed_dictionaries(
        {"backbone": maybe(st.sampled_from(["lenet5", "simple_cnn", "resnet20"]), "no_such_model", "dqn"), "in_channels": channels,
         "image_size": maybe(st.sampled_from([28, 32]), 0, 3), "num_classes": classes, "projection_hidden": width, "projection_dim": width,
         "temperature": maybe(st.sampled_from([0.1, 0.5]), 0.0, -1.0), "crop_scale": maybe(st.sampled_from([0.3, 1.0]), 0.0, 1.5),
         "brightness": maybe(st.sampled_from([0.0, 0.4]), -0.1, 1.0), "knn_k": maybe(st.integers(1, 10), 0)}
    ),  # fmt: skip
    zoo.BertForMaskedLM: st.fixed_dictionaries(
        {"vocab_size": maybe(st.integers(6, 40), 0, 5), "d_model": maybe(st.sampled_from([4, 8, 12]), 0, -4),
         "nhead": maybe(st.sampled_from([1, 2, 4]), 0, 5), "num_layers": maybe(st.integers(1, 2), 0, -1),
         "dim_feedforward": width, "dropout": probability, "max_len": maybe(st.integers(1, 24), 0, -1),
         "mask_prob": maybe(st.sampled_from([0.15, 0.5]), 0.0, 1.0)}
    ),  # fmt: skip
    zoo.BertClassifier: st.fixed_dictionaries(
        {"vocab_size": maybe(st.integers(6, 40), 0, 5), "d_model": maybe(st.sampled_from([4, 8, 12]), 0, -4),
         "nhead": maybe(st.sampled_from([1, 2, 4]), 0, 5), "num_layers": maybe(st.integers(1, 2), 0, -1),
         "dim_feedforward": width, "dropout": probability, "max_len": maybe(st.integers(1, 24), 0, -1), "num_classes": classes}
    ),  # fmt: skip
}


def _raised_by_the_zoo(error: Exception) -> bool:
    """Whether the innermost frame of ``error``'s traceback is the zoo's own code (not torch's)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(ZOO_DIR)


def _check_refusal(error: Exception, names: list[str], what: str) -> None:
    assert isinstance(error, (ValueError, TypeError)), f"{what}: {type(error).__name__} from deep inside: {error}"
    assert _raised_by_the_zoo(error), f"{what}: {type(error).__name__} raised outside the zoo: {error}\n{''.join(traceback.format_tb(error.__traceback__)[-2:])}"
    assert any(name in str(error) for name in names), f"{what}: the message names none of {names}: {error}"


def _io(model) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """(one input sample's shape, one output sample's shape, what the input is) of ``model``."""
    if isinstance(model, zoo.GAN) or isinstance(model, zoo.DCGAN):
        return (model.latent_dim,), tuple(model.input_shape), "noise"
    if isinstance(model, zoo.BertForMaskedLM):
        return tuple(model.input_shape), (*model.input_shape, model.hparams.vocab_size), "token ids"
    if isinstance(model, zoo.SimCLR):
        return tuple(model.input_shape), (model.num_features,), "images"
    if isinstance(model, (zoo.Autoencoder, zoo.ConvAutoencoder, zoo.VAE)):
        return tuple(model.input_shape), tuple(model.input_shape), "images"
    if isinstance(model, zoo.LSTMForecaster):
        return tuple(model.input_shape), (model.hparams.horizon,), "series"
    if isinstance(model, zoo.LinearRegression):
        return tuple(model.input_shape), (model.hparams.out_features,), "features"
    return tuple(model.input_shape), (model.num_outputs,), "samples"


@pytest.mark.parametrize("cls", list(MODELS), ids=lambda c: c.__name__)
def test_any_arguments_and_input_give_a_forward_pass_or_a_clear_error(cls):
    outcomes = {"refused arguments": 0, "refused input": 0, "forward": 0}

    @_settings(cls)
    @given(kwargs=MODELS[cls], batch=st.integers(1, 3), perturb=st.sampled_from([None, None, 0, -1]), delta=st.sampled_from([-3, -1, 1, 4]))
    def check(kwargs, batch, perturb, delta):
        torch.manual_seed(0)
        what = f"{cls.__name__}(**{kwargs})"
        try:
            model = cls(**kwargs)
        except Exception as error:  # noqa: BLE001  (the property: which exceptions, from where)
            _check_refusal(error, [*kwargs, cls.__name__], what)
            outcomes["refused arguments"] += 1
            return
        model.eval()
        sample, out, _ = _io(model)
        shape = list(sample)
        if perturb is not None and shape:
            shape[perturb] = max(1, shape[perturb] + delta)  # another size in one dimension
        x = torch.randn(batch, *shape)
        if isinstance(model, (zoo.BertForMaskedLM, zoo.BertClassifier)):  # token ids: [CLS] words [SEP]
            x = torch.randint(FIRST_WORD_ID, model.hparams.vocab_size, (batch, *shape))
            x[:, 0], x[:, -1] = CLS_ID, SEP_ID
        with torch.no_grad():
            try:
                y = model(x)
            except Exception as error:  # noqa: BLE001
                assert tuple(shape) != tuple(sample), f"{what} refused its own input shape {sample}: {error!r}"
                _check_refusal(error, ["expects", "shape", "input"], f"{what} on {tuple(x.shape)}")
                outcomes["refused input"] += 1
                return
        if tuple(shape) != tuple(sample):  # accepted another shape: only where the model allows it
            variable_length = (zoo.MLP, zoo.RecurrentClassifier, zoo.LSTMForecaster, zoo.BertForMaskedLM, zoo.BertClassifier)
            assert isinstance(model, variable_length), f"{what} accepted {tuple(x.shape)}"
            return
        assert tuple(y.shape) == (batch, *out), f"{what}: output {tuple(y.shape)} for input {tuple(x.shape)}"
        assert torch.isfinite(y).all(), f"{what}: non-finite output"
        outcomes["forward"] += 1

    check()
    assert outcomes["forward"] >= 3 and outcomes["refused arguments"] >= 3, outcomes  # both sides were explored
