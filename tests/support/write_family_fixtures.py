"""Write tests/fixtures/legacy/families/: one tiny model per family, as a training checkpoint and as a shipped entry.

    OMP_NUM_THREADS=1 python tests/support/write_family_fixtures.py

Run once, by the code as it was before a change to the file formats, and committed: the files are the old
formats that tests/compat/test_family_fixtures.py loads with the code after. Each model takes two training
steps on random data (so optimizer state, BatchNorm statistics and counters are not their initial values),
is saved with ``trainer.save_checkpoint`` (``<name>.ckpt``) and with ``zoo.hub.pretrained.save_pretrained``
(``<arch>.fixture.safetensors`` + ``.json``); ``outputs.safetensors`` holds a fixed input and each model's output.
Do not run it again to "refresh" the files: that would test the new code against itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.models.generative.gan_base import GANModule
from zoo.hub.pretrained import save_pretrained

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "families"

#: fixture name -> (family, registry name, tiny constructor arguments)
FIXTURES: dict[str, tuple[str, str, dict]] = {
    "vision_resnet": ("vision", "resnet20", dict(layers=[1, 1, 1], widths=[4, 8, 8], image_size=8, num_classes=3,
                                                 mean=[0.5], std=[0.25], class_names=["a", "b", "c"])),
    "sequence_lstm": ("sequence", "lstm", dict(input_size=4, seq_len=5, hidden_size=8, num_layers=1, num_classes=3)),
    "generative_vae": ("generative", "vae", dict(hidden_sizes=[16], latent_dim=4, image_size=8, iw_samples=2)),
    "generative_gan": ("generative", "gan", dict(generator_sizes=[8], discriminator_sizes=[8], latent_dim=4, image_size=8,
                                                 num_sample_images=4)),
    "selfsupervised_simclr": ("selfsupervised", "simclr", dict(backbone_args={"layers": [1, 1, 1], "widths": [4, 8, 8]}, image_size=8,
                                                               num_classes=3, projection_hidden=8, projection_dim=4, knn_k=2, probe_steps=2)),
    "rl_dqn": ("rl", "dqn", dict(hidden_sizes=[8], batch_size=4, buffer_size=32, learning_starts=4, steps_per_epoch=4, eval_episodes=1)),
    "regression_linear": ("regression", "linear_regression", dict(in_features=3, out_features=2)),
}  # fmt: skip


def example_input(model: zoo.ZooModule, g: torch.Generator) -> torch.Tensor:
    """A fixed input of the model's forward: images, rows, observations or latent vectors."""
    if isinstance(model, GANModule):
        return torch.randn(4, model.hparams.latent_dim, generator=g)  # (B, Z)
    return torch.randn(4, *model.input_shape, generator=g)  # (B, *input_shape)


def train_two_steps(model: zoo.ZooModule, root: Path) -> L.Trainer:
    g = torch.Generator().manual_seed(1)
    options = dict(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, max_steps=2, default_root_dir=root, limit_val_batches=0)  # fmt: skip
    trainer = L.Trainer(**options)
    if isinstance(model, zoo.DQN):
        trainer.fit(model)
        return trainer
    x = torch.randn(8, *model.input_shape, generator=g)  # (B, *input_shape)
    if isinstance(model, zoo.RegressorModule):
        y = torch.randn(8, model.hparams.out_features, generator=g)
    else:
        y = torch.randint(0, int(model.hparams.get("num_classes") or 3), (8,), generator=g)
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=4))
    return trainer


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    outputs, index = {}, {}
    for fixture, (family, name, kwargs) in FIXTURES.items():
        torch.manual_seed(0)
        model = zoo.create_model(name, **kwargs)
        trainer = train_two_steps(model, OUT / ".work")
        trainer.save_checkpoint(OUT / f"{fixture}.ckpt")
        model.eval()
        entry = f"{name}.fixture"
        save_pretrained(model, OUT, entry)
        x = example_input(model, torch.Generator().manual_seed(2))
        with torch.no_grad():
            outputs[f"{fixture}.input"] = x.contiguous()
            outputs[f"{fixture}.output"] = model(x).contiguous()
        index[fixture] = {"family": family, "arch": name, "class": type(model).__name__, "entry": entry}
    save_file(outputs, OUT / "outputs.safetensors")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    (OUT / "index.json").write_text(json.dumps({"written_at_commit": commit, "fixtures": index}, indent=2) + "\n")
    for p in (OUT / ".work").rglob("*"):
        print("left over:", p, file=sys.stderr)


if __name__ == "__main__":
    main()
