"""Streaming image data (litdata chunks): written from a zoo datamodule, read back batch for batch as in memory.

The fixture Fashion-MNIST (IDX files from ``vision_root``) is written as a streaming copy once per session;
the tests compare what ``StreamingImageDataModule`` serves with what ``FashionMNISTDataModule`` serves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from datamodules import DataNotFoundError, FashionMNISTDataModule, StreamingImageDataModule
from datamodules.streaming import read_metadata, write_split, write_streaming_dataset
from zoo.tools.stream import main as stream_main

REPO = Path(__file__).resolve().parents[2]


def fashion(root: Path, **kwargs) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(data_dir=str(root), download=False, batch_size=32, val_fraction=0.25, seed=7, **kwargs)


@pytest.fixture(scope="session")
def streaming_copy(vision_root, tmp_path_factory) -> Path:
    """The fixture Fashion-MNIST written by ``write_streaming_dataset`` (train 120 / val 40 / test 80)."""
    out = tmp_path_factory.mktemp("streaming") / "fashionmnist"
    return write_streaming_dataset(fashion(vision_root.root), out, chunk_bytes="20KB")  # several chunks per split


def batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


def test_written_copy_describes_the_data(streaming_copy):
    meta = read_metadata(str(streaming_copy))
    assert meta["sizes"] == {"train": 120, "val": 40, "test": 80}
    assert meta["num_classes"] == 10 and meta["input_shape"] == [1, 28, 28] and meta["mean"] == [0.286]
    assert meta["class_names"][0] == "T-shirt/top" and meta["source"] == "FashionMNISTDataModule"
    assert len(list((streaming_copy / "train").glob("chunk-*.bin"))) > 1  # chunk_bytes splits it
    dm = StreamingImageDataModule(data_dir=str(streaming_copy))
    memory = fashion(streaming_copy.parent)  # attributes only: nothing is read
    for attribute in ("num_classes", "input_shape", "class_names", "normalization"):
        assert getattr(dm, attribute) == getattr(memory, attribute), attribute


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_same_batches_as_in_memory(streaming_copy, vision_root, split):
    """Shuffle off: the streamed batches, raw and after preprocess, equal the in-memory datamodule's."""
    memory = fashion(vision_root.root)
    memory.setup("fit")
    stream = StreamingImageDataModule(data_dir=str(streaming_copy), batch_size=32)
    stream.setup("fit")
    if split == "train":  # the training stream shuffles; turn it off to compare the order
        stream.streams["train"].shuffle = False
        expected = batches(memory._loader(memory.train_set, shuffle=False))
    else:
        expected = batches(getattr(memory, f"{split}_dataloader")())
    got = batches(getattr(stream, f"{split}_dataloader")())
    assert [len(y) for _, y in got] == [len(y) for _, y in expected]  # 32, 32, ..., the remainder
    for (x, y), (ex, ey) in zip(got, expected, strict=True):
        assert x.dtype == torch.uint8 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.long
        assert torch.equal(x, ex) and torch.equal(y, ey)
        assert torch.equal(stream.preprocess(x), memory.preprocess(ex))  # what the model sees


def test_training_stream_shuffles_the_same_samples(streaming_copy, vision_root):
    memory = fashion(vision_root.root)
    memory.setup("fit")
    stream = StreamingImageDataModule(data_dir=str(streaming_copy), batch_size=32, seed=3)
    stream.setup("fit")
    x, y = map(torch.cat, zip(*stream.train_dataloader()))
    mx, my = memory.train_set.tensors
    assert not torch.equal(y, my)  # another order ...
    order = [next(i for i in range(len(mx)) if torch.equal(mx[i], image)) for image in x]
    assert sorted(order) == list(range(len(mx))) and torch.equal(my[order], y)  # ... of the same samples, each once


def test_written_from_source_on_first_use_and_refused_when_split_differs(vision_root, tmp_path):
    target = tmp_path / "fm-stream"
    dm = StreamingImageDataModule(data_dir=str(target), source="FashionMNISTDataModule", source_dir=str(vision_root.root),
                                  val_fraction=0.25, seed=7)  # fmt: skip
    assert not target.exists() and dm.num_classes == 10 and dm.input_shape == (1, 28, 28)  # known before writing
    dm.prepare_data()
    assert json.loads((target / "dataset.json").read_text())["sizes"] == {"train": 120, "val": 40, "test": 80}
    dm.prepare_data()  # present and matching: left as it is
    other = StreamingImageDataModule(data_dir=str(target), source="FashionMNISTDataModule", val_fraction=0.1, seed=7)
    with pytest.raises(ValueError, match="val_fraction"):
        other.prepare_data()
    assert not list(tmp_path.glob(".fm-stream*"))  # no temporary folder left behind


def test_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="python -m zoo.tools.stream"):
        StreamingImageDataModule(data_dir=str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="FashionMNISTDataModule"):
        StreamingImageDataModule(data_dir=str(tmp_path), source="fashion")
    with pytest.raises(ValueError, match="uint8"):
        write_split(torch.zeros(2, 1, 4, 4), torch.zeros(2), tmp_path / "x")


def test_command_line_writes_the_copy(vision_root, tmp_path, capsys):
    out = stream_main(["--source", "FashionMNISTDataModule", "--data-dir", str(vision_root.root), "--out", str(tmp_path / "c"),
                       "--val-fraction", "0"])  # fmt: skip
    assert read_metadata(str(out))["sizes"] == {"train": 160, "test": 80}
    assert "train 160, test 80" in capsys.readouterr().out
    dm = StreamingImageDataModule(data_dir=str(out))
    dm.setup("fit")
    assert dm.val_dataloader() == []  # no validation split: no validation loop


def test_train_py_fit_streams(streaming_copy, tmp_path, monkeypatch):
    """``train.py fit --data StreamingImageDataModule``: the model gets the stream's shape and classes linked in."""
    from zoo.training.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])
    cli = main(["fit", "--model", "LeNet5", "--data", "StreamingImageDataModule", f"--data.data_dir={streaming_copy}",
                "--data.batch_size=16", "--trainer.fast_dev_run=true"])  # fmt: skip
    assert cli.trainer.state.finished and cli.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1
    assert cli.model.hparams.num_classes == 10 and cli.model.hparams.class_names[9] == "Ankle boot"


@pytest.mark.real_data
def test_real_fashion_mnist_streams_as_in_memory(real_fashion_mnist, tmp_path):
    """The real 70,000 images written and streamed back: every test batch equal to the in-memory one."""
    memory = FashionMNISTDataModule(data_dir=str(real_fashion_mnist), download=False, batch_size=1000)
    out = write_streaming_dataset(memory, tmp_path / "fm")
    assert read_metadata(str(out))["sizes"] == {"train": 54000, "val": 6000, "test": 10000}
    stream = StreamingImageDataModule(data_dir=str(out), batch_size=1000)
    stream.setup("test")
    got, expected = batches(stream.test_dataloader()), batches(memory.test_dataloader())
    assert len(got) == len(expected) == 10
    assert all(torch.equal(x, ex) and torch.equal(y, ey) for (x, y), (ex, ey) in zip(got, expected))


def test_loader_workers_share_the_stream(streaming_copy):
    """Two worker processes each stream their own part: together every test sample exactly once."""
    stream = StreamingImageDataModule(data_dir=str(streaming_copy), batch_size=16, num_workers=2)
    stream.setup("test")
    x, y = map(torch.cat, zip(*stream.test_dataloader()))
    single = StreamingImageDataModule(data_dir=str(streaming_copy), batch_size=16)
    single.setup("test")
    expected_x, expected_y = map(torch.cat, zip(*single.test_dataloader()))
    assert len(y) == 80
    key = lambda images: sorted(map(bytes, images.flatten(1).numpy()))  # noqa: E731  (order-free identity)
    assert key(x) == key(expected_x) and sorted(y.tolist()) == sorted(expected_y.tolist())



def test_remote_copy_streams_through_the_download_cache(streaming_copy, tmp_path):
    """A URL goes through litdata's downloader and chunk cache (``local:`` is litdata's local stand-in for
    ``s3://``): metadata and batches as from the folder itself, the chunks copied into ``cache_dir``."""
    remote = StreamingImageDataModule(data_dir=f"local:{streaming_copy}", cache_dir=str(tmp_path / "cache"), batch_size=32)
    assert remote.class_names[0] == "T-shirt/top" and remote.input_shape == (1, 28, 28)
    remote.setup("test")
    local = StreamingImageDataModule(data_dir=str(streaming_copy), batch_size=32)
    local.setup("test")
    for (x, y), (ex, ey) in zip(remote.test_dataloader(), local.test_dataloader(), strict=True):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    assert list((tmp_path / "cache").rglob("chunk-*.bin"))  # downloaded, not read in place

class _RecordBatches(__import__("lightning").Callback):
    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch[0].flatten(1).sum(1))  # (B,) one number per image


def test_resume_continues_the_training_stream(streaming_copy, tmp_path):
    """fit --ckpt_path mid-epoch: the resumed run trains on the batches the uninterrupted run saw next."""
    import lightning as L

    import zoo

    def fit(max_steps: int, ckpt_path: Path | None = None) -> tuple[L.Trainer, _RecordBatches]:
        L.seed_everything(0)
        record = _RecordBatches()
        trainer = L.Trainer(max_steps=max_steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=[record])  # fmt: skip
        model = zoo.LeNet5(num_classes=10, in_channels=1, image_size=28)
        trainer.fit(model, datamodule=StreamingImageDataModule(data_dir=str(streaming_copy), batch_size=16), ckpt_path=ckpt_path)
        return trainer, record

    _, whole = fit(5)
    first, _ = fit(3)
    first.save_checkpoint(tmp_path / "step3.ckpt")
    state = torch.load(tmp_path / "step3.ckpt", weights_only=True)["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert state["num_samples_yielded"] == 48  # the stream's position: 3 batches of 16
    _, resumed = fit(5, ckpt_path=tmp_path / "step3.ckpt")
    assert len(resumed.batches) == 2 and not torch.equal(whole.batches[0], whole.batches[3])  # not the epoch's start again
    assert all(torch.equal(a, b) for a, b in zip(resumed.batches, whole.batches[3:], strict=True))


DDP_SCRIPT = '''
import sys, lightning as L, torch, zoo
from datamodules import StreamingImageDataModule

class Seen(L.Callback):
    def __init__(self): self.images = []
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx): self.images.append(batch[0].flatten(1).sum(1))

if __name__ == "__main__":
    seen = Seen()
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[seen])
    trainer.fit(zoo.LeNet5(num_classes=10, in_channels=1, image_size=28),
                datamodule=StreamingImageDataModule(data_dir=sys.argv[1], batch_size=16))
    torch.save({"batches": trainer.num_training_batches, "images": torch.cat(seen.images)}, f"{sys.argv[2]}/rank{trainer.global_rank}.pt")
'''


@pytest.mark.slow
def test_ddp_ranks_stream_disjoint_equal_shares(streaming_copy, tmp_path):
    """2 CPU processes (gloo): litdata gives each rank its own samples, and both ranks as many batches (a rank
    with one batch more would wait forever in the gradient all-reduce). ~30 s: two Python processes."""
    import os
    import subprocess

    (tmp_path / "ddp_stream.py").write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "ddp_stream.py", str(streaming_copy), str(tmp_path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 120 samples: 60 per rank, cut to whole batches of 16 (litdata's drop_last under DDP): 3 batches each.
    assert ranks[0]["batches"] == ranks[1]["batches"] == 3
    sums = [set(r["images"].tolist()) for r in ranks]
    assert len(sums[0]) == len(sums[1]) == 48 and not sums[0] & sums[1]  # 48 distinct images per rank, none shared
