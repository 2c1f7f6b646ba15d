"""Fine-tuning strategies (zoo.training.finetuning, on Lightning's BaseFinetuning): what trains, when, and at
which learning rate, under the zoo's schedules; layer groups of ResNet, ViT and BERT; resuming; clear errors."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.training.finetuning import DiscriminativeLR, FreezeUnfreeze, LinearProbe, layer_groups

SMALL_RESNET = {"layers": [1, 1, 1], "widths": [8, 16, 16], "in_channels": 1, "image_size": 16, "num_classes": 4}


def small_resnet(**kwargs) -> zoo.ResNet:
    torch.manual_seed(0)
    return zoo.create_model("resnet20", **{**SMALL_RESNET, **kwargs})


def loader(model: zoo.ZooModule, n: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, *model.input_shape, generator=g), torch.randint(0, 4, (n,), generator=g)), batch_size=8)


class Recorder(L.Callback):
    """Per training step: the learning rate of every optimizer group; per epoch end: a copy of the weights."""

    def __init__(self) -> None:
        self.lrs: list[tuple[int, list[float]]] = []
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append((trainer.current_epoch, [g["lr"] for g in trainer.optimizers[0].param_groups]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.weights.append({k: v.clone() for k, v in pl_module.state_dict().items()})


def fit(model: zoo.ZooModule, strategy: L.Callback, epochs: int, ckpt_path=None, **kwargs) -> Recorder:
    recorder = Recorder()
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, callbacks=[strategy, recorder], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, **kwargs)  # fmt: skip
    trainer.fit(model, train_dataloaders=loader(model), val_dataloaders=loader(model, 8), ckpt_path=ckpt_path)
    return recorder


def changed(before: dict, after: dict, head: bool) -> set[str]:
    return {k for k in before if k.startswith("head.") == head and not torch.equal(before[k], after[k])}


def test_linear_probe_trains_the_head_alone_and_keeps_the_backbones_statistics():
    model = small_resnet(scheduler="cosine")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recorder = fit(model, LinearProbe(), epochs=2)
    assert changed(before, recorder.weights[-1], head=False) == set()  # weights and batch-norm running statistics
    assert changed(before, recorder.weights[-1], head=True) == {"head.weight", "head.bias"}
    assert all(len(lrs) == 2 for _, lrs in recorder.lrs)  # the head's weights and bias: no other group ever
    assert model.freeze_backbone and not model.bn1.training


def test_freeze_unfreeze_adds_the_backbone_at_its_epoch_at_a_fixed_ratio_of_the_onecycle_rate():
    model = small_resnet(scheduler="onecycle", lr=0.01, weight_decay=0.05)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recorder = fit(model, FreezeUnfreeze(unfreeze_at_epoch=1, backbone_lr_ratio=0.1), epochs=3)
    assert changed(before, recorder.weights[0], head=False) == set()  # epoch 0: the backbone is frozen
    assert changed(recorder.weights[0], recorder.weights[2], head=False) == {k for k in before if not k.startswith("head.")}  # then all of it
    epoch0 = [lrs for epoch, lrs in recorder.lrs if epoch == 0]
    later = [lrs for epoch, lrs in recorder.lrs if epoch >= 1]
    assert all(len(lrs) == 2 for lrs in epoch0) and all(len(lrs) == 4 for lrs in later)
    for lrs in later:  # head (weights, biases) then backbone (weights, biases), on the one-cycle curve
        assert lrs[2] == pytest.approx(0.1 * lrs[0]) and lrs[3] == pytest.approx(0.1 * lrs[1])
    assert len({round(lrs[0], 12) for lrs in later}) == len(later)  # the schedule moves the backbone's rate too
    groups = model.trainer.optimizers[0].param_groups
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0, 0.05, 0.0]  # weights decay, biases and norms do not
    assert not model.freeze_backbone and model.bn1.training and model.hparams.freeze_backbone is False


@pytest.mark.parametrize("scheduler", ["cosine", "plateau", "none"])
def test_freeze_unfreeze_keeps_its_ratio_under_every_schedule(scheduler):
    model = small_resnet(scheduler=scheduler, lr=0.01)
    recorder = fit(model, FreezeUnfreeze(unfreeze_at_epoch=1, backbone_lr_ratio=0.25), epochs=3)
    later = [lrs for epoch, lrs in recorder.lrs if epoch >= 1]
    assert later and all(lrs[2] == pytest.approx(0.25 * lrs[0]) for lrs in later)


def test_discriminative_lr_gives_each_resnet_stage_its_rate_and_every_parameter_one_group():
    model = small_resnet(scheduler="none", lr=0.01)
    strategy = DiscriminativeLR(lr_decay=0.5)
    recorder = fit(model, strategy, epochs=1)
    optimizer = model.trainer.optimizers[0]
    in_optimizer = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(in_optimizer) == len({id(p) for p in in_optimizer}) == len(list(model.parameters()))
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    groups = layer_groups(model)  # stem, layer1, layer2, layer3
    assert [len(g) for g in groups] == [3, 6, 9, 9]
    assert [{rate[id(p)] for p in g} for g in groups] == [{0.01 / 16}, {0.01 / 8}, {0.01 / 4}, {0.01 / 2}]
    assert {rate[id(p)] for p in model.head.parameters()} == {0.01}
    assert strategy.learning_rates(model, 0.01) == pytest.approx([0.01 / 16, 0.01 / 8, 0.01 / 4, 0.01 / 2])
    assert all(len(lrs) == 10 for _, lrs in recorder.lrs)  # 5 levels x (weights, biases/norms)


def test_layer_groups_of_a_vit_and_of_bert_are_the_embeddings_then_one_per_block():
    vit = zoo.create_model("vit_tiny", depth=3)
    groups = layer_groups(vit)
    names = {id(p): n for n, p in vit.named_parameters()}
    assert len(groups) == 4
    assert {names[id(p)] for p in groups[0]} == {"patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed"}
    assert all({names[id(p)].split(".")[1] for p in g} == {str(i)} for i, g in enumerate(groups[1:]))
    assert "norm.weight" not in {names[id(p)] for g in groups for p in g}  # the final norm trains with the head
    bert = zoo.create_model("bert_small_classifier", num_layers=2)
    groups = layer_groups(bert)
    names = {id(p): n for n, p in bert.named_parameters()}
    assert len(groups) == 3 and all(names[id(p)].startswith("bert.embeddings.") for p in groups[0])
    assert all(names[id(p)].startswith(f"bert.layers.layers.{i}.") for i, g in enumerate(groups[1:]) for p in g)
    assert sum(len(g) for g in groups) == len(list(bert.parameters())) - 2  # all but the head's weight and bias


def test_discriminative_lr_on_a_vit_decays_per_block():
    torch.manual_seed(0)
    model = zoo.create_model("vit_tiny", depth=2, dim=24, heads=2, in_channels=1, image_size=16, num_classes=4, scheduler="none", lr=0.01)
    fit(model, DiscriminativeLR(lr_decay=0.5), epochs=1, limit_train_batches=1)
    rate = {id(p): g["lr"] for g in model.trainer.optimizers[0].param_groups for p in g["params"]}
    assert rate[id(model.cls_token)] == pytest.approx(0.01 / 8)  # embeddings, block 0, block 1, then the head
    assert rate[id(model.blocks[0].attn.qkv.weight)] == pytest.approx(0.01 / 4)
    assert rate[id(model.blocks[1].attn.qkv.weight)] == pytest.approx(0.01 / 2)
    assert rate[id(model.norm.weight)] == rate[id(model.head.weight)] == 0.01


def test_a_resumed_freeze_unfreeze_run_gets_its_groups_and_a_trainable_backbone_back(tmp_path):
    model = small_resnet(scheduler="cosine", lr=0.01)
    strategy = FreezeUnfreeze(unfreeze_at_epoch=1, backbone_lr_ratio=0.1)
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, callbacks=[strategy], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)  # fmt: skip
    trainer.fit(model, train_dataloaders=loader(model))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    resumed = small_resnet(scheduler="cosine", lr=0.01)
    recorder = fit(resumed, FreezeUnfreeze(unfreeze_at_epoch=1, backbone_lr_ratio=0.1), epochs=3, ckpt_path=tmp_path / "last.ckpt")
    assert [epoch for epoch, _ in recorder.lrs] == [2] * 4 and all(len(lrs) == 4 and lrs[2] == pytest.approx(0.1 * lrs[0]) for _, lrs in recorder.lrs)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    assert all(p.requires_grad for p in resumed.parameters()) and {"conv1.weight", "layer3.0.conv2.weight"} <= changed(saved, recorder.weights[-1], head=False)


def test_bad_arguments_and_models_are_clear_errors():
    with pytest.raises(ValueError, match="unfreeze_at_epoch must be >= 0"):
        FreezeUnfreeze(unfreeze_at_epoch=-1)
    with pytest.raises(ValueError, match=r"backbone_lr_ratio must be in \(0, 1\]"):
        FreezeUnfreeze(backbone_lr_ratio=0.0)
    with pytest.raises(ValueError, match=r"lr_decay must be in \(0, 1\]"):
        DiscriminativeLR(lr_decay=1.5)
    with pytest.raises(ValueError, match="MLP has no layer groups for discriminative learning rates"):
        fit(zoo.create_model("mlp", in_features=256, num_classes=4), DiscriminativeLR(), epochs=1)
    with pytest.raises(ValueError, match="LinearProbe fine-tunes a zoo classifier"):
        fit(zoo.create_model("linear_regression", in_features=256), LinearProbe(), epochs=1)


def test_freeze_unfreeze_past_the_last_epoch_warns(caplog):
    model = small_resnet()
    with caplog.at_level("WARNING", logger="zoo.training.finetuning"):
        fit(model, FreezeUnfreeze(unfreeze_at_epoch=2), epochs=1, limit_train_batches=1)
    assert "unfreeze_at_epoch=2 but max_epochs=1: the backbone never trains" in caplog.text
