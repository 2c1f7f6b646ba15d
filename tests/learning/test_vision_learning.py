"""Vision learning on the real Fashion-MNIST: ResNet-20 beats 86.5% test accuracy in a short CPU run, and
predicts the right labels from PNG files written from the test images.

One ResNet-20 is trained once per session (330 steps of 128 images, 0.7 of an epoch, AdamW with a
one-cycle schedule) and shared by the tests. They skip without the real files, and fail then under
ZOO_REQUIRE_REAL_DATA=1 (as in CI).

The bar is set against a linear model on the same split: logistic regression (scikit-learn, trained on the
60,000 training images scaled to [0, 1]) scores 84.40% on the 10,000 test images (measured once; the command
is beside ``FASHION_MNIST_LINEAR_BASELINE`` in conftest.py). THRESHOLD sits 2 points or more above it, and
the measured accuracy 1.5 points or more above THRESHOLD, a margin a new machine's float differences keep.
"""

from pathlib import Path

import lightning as L
import pytest
import torch
from PIL import Image

import zoo
from datamodules import FashionMNISTDataModule

pytestmark = [pytest.mark.learning, pytest.mark.real_data]

STEPS = 330  # 42,240 training images; measured test accuracy 88.53% (seed 0; 88.17% with one CPU thread)
THRESHOLD = 0.865  # 250 steps measured 87.8%: too close


@pytest.fixture(scope="session")
def trained_resnet20(real_fashion_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    L.seed_everything(0)
    dm = FashionMNISTDataModule(data_dir=str(real_fashion_mnist), batch_size=128, val_fraction=0.0)
    model = zoo.create_model(
        "resnet20", in_channels=1, image_size=28, num_classes=10, optimizer="adamw", lr=4e-3, weight_decay=0.05, scheduler="onecycle"
    )
    trainer = L.Trainer(
        max_steps=STEPS, max_epochs=1, limit_val_batches=0, accelerator="cpu",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    ckpt = tmp_path_factory.mktemp("resnet20") / "resnet20_fashionmnist.ckpt"
    trainer.save_checkpoint(ckpt)
    print(f"ResNet-20, {STEPS} steps: test accuracy {metrics['test/acc']:.4f}")
    return {"model": model, "datamodule": dm, "test_acc": metrics["test/acc"], "checkpoint": ckpt}


def test_resnet20_beats_the_linear_baseline_on_fashion_mnist(trained_resnet20, fashion_mnist_linear_baseline):
    assert THRESHOLD >= fashion_mnist_linear_baseline + 0.02
    assert trained_resnet20["test_acc"] >= THRESHOLD, trained_resnet20["test_acc"]


def test_predict_on_png_files_returns_the_correct_labels(trained_resnet20, tmp_path):
    dm = trained_resnet20["datamodule"]
    images, labels = (t[:200] for t in dm.test_set.tensors)  # (200, 1, 28, 28) uint8, (200,)
    files = []
    for i, image in enumerate(images):
        files.append(tmp_path / f"{i:03d}.png")
        Image.fromarray(image[0].numpy(), mode="L").save(files[-1])

    model = zoo.load_checkpoint(trained_resnet20["checkpoint"])  # no datamodule needed
    results = zoo.predict(model, files, topk=3)
    predicted = [top[0][0] for top in results]
    truth = [dm.class_names[int(y)] for y in labels]
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    print(f"ResNet-20 on the first 200 test images as PNG files: accuracy {accuracy:.3f}")  # measured 0.905
    assert accuracy >= THRESHOLD, accuracy

    # PNG -> predict gives exactly what the trained model says on the datamodule's own batches
    with torch.no_grad():
        reference = trained_resnet20["model"].eval()(dm.preprocess(images)).argmax(-1)
    assert predicted == [dm.class_names[int(i)] for i in reference]
    assert all(len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] for top in results)
