"""Shared fixtures: dataset files in their real on-disk formats, real-data lookup, and no network.

Fixture files are tiny but byte-for-byte in the official formats (IDX, gzipped and raw; CIFAR-10's
python pickle batches), so the parsing code that reads the real datasets is what runs here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

import datamodules.vision as vision
from zoo.evaluation.baselines import LINEAR_BASELINES

REPO = Path(__file__).resolve().parents[1]
FIXTURE_TRAIN, FIXTURE_TEST = 160, 80  # images per split in the fixture datasets
#: On PYTHONPATH for train.py subprocesses: accepts the fixture CIFAR-10 batches (see ``vision_root``).
FIXTURE_HASHES = REPO / "tests" / "support" / "fixture_hashes"


# --------------------------------------------------------------------------------------------------
# Writers for the real formats
# --------------------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file; gzipped when ``path`` ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_idx_dataset(folder: Path, rng: np.random.Generator, gz: bool) -> dict[str, np.ndarray]:
    """The four MNIST-style files in ``folder``; returns the arrays written."""
    ext = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (FIXTURE_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(FIXTURE_TRAIN, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (FIXTURE_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.permutation(np.arange(FIXTURE_TEST, dtype=np.uint8) % 10),
    }
    for name, array in arrays.items():
        write_idx(folder / f"{name}{ext}", array)
    return arrays


def write_cifar10(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches (pickled dicts with 'data' (N, 3072) uint8 and 'labels') in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = FIXTURE_TRAIN // 5
    train_x, train_y = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        entry = {"batch_label": f"training batch {i} of 5", "labels": labels, "data": data, "filenames": []}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(entry, protocol=2))
        train_x.append(data)
        train_y += labels
    test_x = rng.integers(0, 256, (FIXTURE_TEST, 3072), dtype=np.uint8)
    test_y = [int(v) for v in rng.integers(0, 10, FIXTURE_TEST)]
    entry = {"batch_label": "testing batch 1 of 1", "labels": test_y, "data": test_x, "filenames": []}
    (folder / "test_batch").write_bytes(pickle.dumps(entry, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = {"num_cases_per_batch": per_batch, "label_names": names, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {
        "train_x": np.concatenate(train_x).reshape(-1, 3, 32, 32),
        "train_y": np.array(train_y),
        "test_x": test_x.reshape(-1, 3, 32, 32),
        "test_y": np.array(test_y),
    }


IMDB_WORDS = {
    "pos": ["great", "wonderful", "loved", "brilliant", "superb", "moving"],
    "neg": ["awful", "boring", "hated", "terrible", "dull", "waste"],
}
IMDB_FILLER = ["the", "film", "was", "a", "story", "acting", "and", "plot", "of", "this", "movie", "it"]


def write_aclimdb(folder: Path, per_class: int = 24, seed: int = 0) -> None:
    """aclImdb's layout: {train,test}/{pos,neg}/<id>_<rating>.txt, one review per file, with <br /> breaks."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for label, words in IMDB_WORDS.items():
            (folder / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                n = int(rng.integers(5, 40))
                text = [str(rng.choice(IMDB_FILLER + words)) for _ in range(n)] + [str(rng.choice(words))]
                rating = int(rng.integers(7, 11)) if label == "pos" else int(rng.integers(1, 5))
                review = " ".join(text[: n // 2]).capitalize() + ".<br /><br />" + " ".join(text[n // 2 :]) + "!"
                (folder / split / label / f"{i}_{rating}.txt").write_text(review, encoding="utf-8")


FORTUNE_WORDS = {  # fixture categories: each has words of its own, over a shared filler
    "computers": ["kernel", "compiler", "bug", "unix", "program", "byte"],
    "definitions": ["noun", "verb", "meaning", "defined", "adj", "term"],
    "politics": ["senate", "vote", "president", "election", "congress", "law"],
    "songs-poems": ["love", "heart", "sing", "moon", "rose", "sweet"],
    "zippy": ["yow", "pinhead", "zippy", "twinkies", "polyester", "disco"],
    "art": ["painter", "canvas", "museum", "sculpture", "color", "brush"],
}
FORTUNE_FILLER = ["the", "a", "of", "is", "and", "to", "in", "it", "you", "that", "was", "my"]
GCIDE_FIXTURE = {  # a few dictionary entries in GCIDE's markup, for the recipes that read $ZOO_DATA_DIR/gcide
    "cat": b"cat \\cat\\ (k[a^]t), n.\n   1. A small domesticated carnivorous mammal with soft fur.\n      [1913 Webster]\n",
    "unbelievable": b'Unbelievable \\Un`be*liev"a*ble\\, a.\n   Not to be believed; incredible.\n   [1913 Webster]\n',
    "kernel": b'Kernel \\Ker"nel\\, n.\n   The central, most important part of an operating system or a seed.\n   [WordNet 1.5]\n',
}
FORTUNE_SHARED = "The same saying filed under every category."  # ambiguous: the datamodule drops it


def write_fortunes(folder: Path, per_category: int = 40, seed: int = 0) -> dict[str, list[str]]:
    """Fortune files as Debian ships them (strfile's source format): one file per category, entries
    separated by lines holding a single '%', multi-line entries; beside them the binary ``.dat`` index, a
    ``.u8`` symlink, and an ``off/`` folder (offensive fortunes), none of which is a category.
    Returns category -> the distinct entries written (the shared one left out)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "off").mkdir(exist_ok=True)
    (folder / "off" / "politics").write_text("An offensive fortune, not read.\n%\n", encoding="utf-8")
    written = {}
    for name, words in FORTUNE_WORDS.items():
        entries = []
        for i in range(per_category):
            n = int(rng.integers(4, 24))
            tokens = [str(rng.choice(FORTUNE_FILLER + words)) for _ in range(n)] + [words[i % len(words)], f"n{i}"]
            lines = [" ".join(tokens[j : j + 7]) for j in range(0, len(tokens), 7)]
            entries.append("\n".join(lines).capitalize() + ".")
        body = entries + [entries[0], FORTUNE_SHARED]  # a repeat within the file, and the shared entry
        (folder / name).write_text("\n%\n".join(body) + "\n%\n", encoding="utf-8")
        (folder / f"{name}.dat").write_bytes(struct.pack(">IIIIII", 2, len(body), 200, 4, 0, 0x25000000))
        (folder / f"{name}.u8").symlink_to(name)
        written[name] = entries
    return written


_DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

def dictd_number(n: int) -> str:
    out = ""
    while True:
        out = _DICTD_DIGITS[n % 64] + out
        n //= 64
        if not n:
            return out


def write_dictd(folder: Path, entries: dict[str, bytes], aliases: dict[str, str] = {}) -> Path:
    """A dictd database as dict-gcide ships it: the entries gzip-compressed (dictzip is gzip with a seek table)
    and an index of ``headword TAB offset TAB length`` in base-64; ``aliases`` point more headwords at an entry."""
    folder.mkdir(parents=True, exist_ok=True)
    data, spans = b"", {}
    for word, text in {"00-database-short": b"The dictionary\n", **entries}.items():
        spans[word] = (len(data), len(text))
        data += text
    lines = [f"{w}\t{dictd_number(o)}\t{dictd_number(n)}" for w, (o, n) in spans.items()]
    lines += [f"{a}\t{dictd_number(spans[w][0])}\t{dictd_number(spans[w][1])}" for a, w in aliases.items()]
    (folder / "gcide.index").write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    with gzip.open(folder / "gcide.dict.dz", "wb") as f:
        f.write(data)
    return folder / "gcide.dict.dz"


@pytest.fixture
def fortunes_dir(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """A folder of fixture fortune files (``write_fortunes``) and the entries each category holds."""
    folder = tmp_path / "fortunes"
    return folder, write_fortunes(folder)


def fit_and_reload_image_model(model, dm, trainer, path: Path):
    """Fit ``model`` on the image datamodule ``dm`` with ``trainer``, save ``path``, reload it with
    ``zoo.load_checkpoint``, and check what the checkpoint carries: the datamodule's normalization and
    class names in its hyperparameters, and ``transforms()`` preparing raw images exactly as
    ``dm.preprocess`` does. Returns ``(loaded, raw, x)``: the loaded model, 4 raw uint8 test images,
    and those images as model input."""
    import torch

    import zoo

    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=True)["hyper_parameters"]
    assert hparams["mean"] == pytest.approx(dm.normalization["mean"]) and hparams["std"] == pytest.approx(dm.normalization["std"])
    assert hparams["class_names"] == list(dm.class_names) and len(hparams["class_names"]) == 10
    loaded = zoo.load_checkpoint(path)
    raw = dm.test_set.tensors[0][:4]  # (4, 1, 28, 28) uint8, as stored
    x = torch.stack([loaded.transforms()(image) for image in raw])  # (4, 1, 28, 28)
    assert torch.equal(x, dm.preprocess(raw))  # the model alone prepares raw images as the datamodule does
    return loaded, raw, x


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A scratch repository root with copies of docs/, configs/ and README.md: the pages that
    ``python -m zoo.tools.model_card --root`` renders generated blocks into."""
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copy(REPO / "README.md", root / "README.md")
    return root


@dataclass
class VisionFixtures:
    root: Path  # torchvision layout: MNIST/raw (raw IDX), FashionMNIST/raw (.gz), cifar-10-batches-py
    mnist: dict[str, np.ndarray]
    fashion: dict[str, np.ndarray]
    cifar: dict[str, np.ndarray]


@pytest.fixture(scope="session")
def vision_root(tmp_path_factory: pytest.TempPathFactory):
    """A data root in torchvision's layout holding tiny MNIST, Fashion-MNIST and CIFAR-10 in their real formats.

    The fixture's CIFAR-10 batches are not the official files, so their MD5s are accepted while the session
    lasts: in this process by patching ``CIFAR10DataModule.accepted_md5s``; in train.py subprocesses through
    tests/support/fixture_hashes/sitecustomize.py, which this fixture puts on ``PYTHONPATH`` (the library
    itself trusts torchvision's table only).
    """
    root = tmp_path_factory.mktemp("vision-data")
    rng = np.random.default_rng(0)
    fixtures = VisionFixtures(
        root=root,
        mnist=write_idx_dataset(root / "MNIST" / "raw", rng, gz=False),
        fashion=write_idx_dataset(root / "FashionMNIST" / "raw", rng, gz=True),
        cifar=write_cifar10(root / "cifar-10-batches-py", rng),
    )
    write_aclimdb(root / "aclImdb")  # text recipes read it from the same root
    write_fortunes(root / "fortunes")  # the BERT recipes' corpus
    write_dictd(root / "gcide", GCIDE_FIXTURE)  # the extra text of the gcide recipes
    cifar_md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in (root / "cifar-10-batches-py").glob("*_batch*")}
    md5_file = root / "fixture-cifar10-md5.json"
    md5_file.write_text(json.dumps(cifar_md5))
    official = vision.CIFAR10DataModule.accepted_md5s

    def accepted_md5s(name: str) -> set[str]:
        return official(name) | ({cifar_md5[name]} if name in cifar_md5 else set())

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vision.CIFAR10DataModule, "accepted_md5s", staticmethod(accepted_md5s))
        mp.setenv("ZOO_TEST_CIFAR10_MD5_FILE", str(md5_file))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FIXTURE_HASHES), os.environ.get("PYTHONPATH")])))
        yield fixtures


# --------------------------------------------------------------------------------------------------
# Isolation: no network, no writes to ./data
# --------------------------------------------------------------------------------------------------
def _offline(*args, **kwargs):
    raise URLError("network disabled in the test suite")


@pytest.fixture(autouse=True)
def _no_network_and_private_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import zoo.hub.download

    monkeypatch.setattr(vision, "download_url", _offline)
    monkeypatch.setattr(vision, "download_and_extract_archive", _offline)
    monkeypatch.setattr(zoo.hub.download, "urlopen", _offline)  # tests/hub/conftest.py's loopback server allows it again
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))


@dataclass
class TorchHubCache:
    """A private torch.hub cache (downloads fail as if offline) where tests publish weights files."""

    checkpoints: Path  # <hub dir>/checkpoints, where torch.hub keeps weights files
    monkeypatch: pytest.MonkeyPatch

    def publish(self, arch: str, data: bytes, weights: str = "IMAGENET1K_V1") -> Path:
        """Write ``data`` as ``arch``'s torchvision weights file, named with the true SHA-256 prefix of ``data``.

        The torchvision enum's URL is patched (for this test only) to that name, so the file passes the
        hash check that every load makes, as torchvision's published file would.
        """
        import hashlib
        import re

        import torchvision

        member = torchvision.models.get_model_weights(arch)[weights]
        sha = hashlib.sha256(data).hexdigest()
        url = re.sub(r"-[0-9a-f]+\.(\w+)$", rf"-{sha[:8]}.\1", member.url)
        self.monkeypatch.setattr(member.value, "url", url)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        path = self.checkpoints / url.rsplit("/", 1)[-1]
        path.write_bytes(data)
        return path


@pytest.fixture
def torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TorchHubCache:
    """A private, empty torch.hub cache; any download attempt fails as if offline."""
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    return TorchHubCache(tmp_path / "hub" / "checkpoints", monkeypatch)


# --------------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------------
def require_real_data(present: bool, what: str) -> None:
    """Skip when a real dataset is absent, or fail when ZOO_REQUIRE_REAL_DATA=1 (as in CI)."""
    if present:
        return
    if os.environ.get("ZOO_REQUIRE_REAL_DATA") == "1":
        pytest.fail(f"{what} is absent and ZOO_REQUIRE_REAL_DATA=1 requires it")
    pytest.skip(f"{what} is absent (set ZOO_REQUIRE_REAL_DATA=1 to fail instead)")


@pytest.fixture(scope="session")
def real_fortunes() -> Path:
    """Debian's fortunes folder: $ZOO_FORTUNES_DIR, else /usr/share/games/fortunes (apt-get install fortunes)."""
    folder = Path(os.environ.get("ZOO_FORTUNES_DIR") or "/usr/share/games/fortunes")
    require_real_data((folder / "computers").is_file() and (folder / "zippy").is_file(), f"Debian's fortunes in {folder} (apt-get install fortunes)")
    return folder


# Logistic regression on the raw pixels of the real Fashion-MNIST; the value and the command that measures it
# live in zoo.evaluation.baselines, which zoo-export's shipping bar reads too.
# A Fashion-MNIST learning threshold must sit at least 2 points above it.
FASHION_MNIST_LINEAR_BASELINE = LINEAR_BASELINES["datamodules.FashionMNISTDataModule"].value


@pytest.fixture(scope="session")
def fashion_mnist_linear_baseline() -> float:
    """Test accuracy of logistic regression on the real Fashion-MNIST (see FASHION_MNIST_LINEAR_BASELINE)."""
    return FASHION_MNIST_LINEAR_BASELINE


@pytest.fixture(scope="session")
def real_fashion_mnist() -> Path:
    """Folder of the real Fashion-MNIST files: $ZOO_FASHION_MNIST_DIR, else Debian's dataset-fashion-mnist."""
    folder = Path(os.environ.get("ZOO_FASHION_MNIST_DIR") or vision.FashionMNISTDataModule.system_dirs[0])
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    present = all((folder / n).is_file() or (folder / f"{n}.gz").is_file() for n in names)
    require_real_data(present, f"Fashion-MNIST in {folder} (apt-get install dataset-fashion-mnist)")
    return folder
