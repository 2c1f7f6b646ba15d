"""train.py end to end: every recipe in configs/, class selection, links, checkpoints, subcommands.

Most tests call ``zoo.cli.main(args)``, the function train.py runs, in the test process: a fresh Python
process per run would cost seconds of imports each (34 recipes). The tests marked "subprocess" below run
the real ``python train.py`` entry point: a recipe's fast_dev_run, the printed config, ``--help``, and
the exit status and message of a missing dataset.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import zoo
from zoo.training.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def run_cli(*args: str, cwd: Path, data_root: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if data_root is not None:
        env["ZOO_DATA_DIR"] = str(data_root)
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, f"train.py {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_every_recipe_is_tested():
    assert len(CONFIGS) >= 6
    names = {c.stem for c in CONFIGS}
    assert {"lenet5_digits", "mlp_blobs", "linear_regression_synthetic", "simple_cnn_fashionmnist"} <= names


@pytest.fixture
def in_tmp_cwd(tmp_path, vision_root, monkeypatch):
    """As ``run_cli`` sets up a subprocess: cwd ``tmp_path``, $ZOO_DATA_DIR the fixture files; the seed reset after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py")])  # main(args) reads args, not pytest's command line
    monkeypatch.setenv("ZOO_DATA_DIR", str(vision_root.root))
    for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # seed_everything's environment, restored after the test
        monkeypatch.delenv(name, raising=False)
    return tmp_path


# Recipes whose one training batch takes long on a CPU (WRN-28-10: 36.5 M parameters, 128 images, minutes;
# DenseNet-BC-100: 10 s): -m slow. tests/test_wide_resnet.py runs the WRN recipe at a small depth and width by default.
SLOW_RECIPES = {"wide_resnet_fashionmnist", "densenet_bc_100_fashionmnist"}


@pytest.mark.parametrize("config", [pytest.param(c, id=c.stem, marks=pytest.mark.slow if c.stem in SLOW_RECIPES else ()) for c in CONFIGS])
def test_recipe_fast_dev_run(config, in_tmp_cwd):
    """``train.py fit --config <recipe> --trainer.fast_dev_run=true`` for every recipe, through train.py's ``main``.

    Fashion-MNIST and the other file-based recipes read the fixture files ($ZOO_DATA_DIR comes first).
    """
    cli = main(["fit", "--config", str(config), "--trainer.fast_dev_run=true"])
    assert cli.trainer.fast_dev_run and cli.trainer.state.finished
    assert cli.trainer.fit_loop.epoch_loop.batch_progress.total.completed == 1  # one training batch, then stop
    recipe = yaml.safe_load(config.read_text())
    if recipe.get("test_after_fit"):  # then the test split ran too, and logged its metrics
        assert cli.trainer.state.fn == "test" and any(k.startswith("test/") for k in cli.trainer.callback_metrics)


def test_recipes_name_real_classes():
    for config in CONFIGS:
        recipe = yaml.safe_load(config.read_text())
        model_path = recipe["model"]["class_path"]
        assert model_path.startswith("zoo.") and issubclass(getattr(zoo, model_path.split(".")[1]), zoo.ZooModule)
        assert recipe["data"]["class_path"].startswith("datamodules.")


def test_short_class_names_and_links_from_data(in_tmp_cwd):
    """--model LeNet5 --data CIFAR10DataModule: in_channels=3, image_size=32 and num_classes come from the data."""
    main(
        ["fit", "--model", "LeNet5", "--data", "CIFAR10DataModule", "--trainer.max_epochs=1",
         "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--data.batch_size=16"]
    )  # fmt: skip
    ckpt = next((in_tmp_cwd / "lightning_logs").rglob("last.ckpt"))
    hparams = torch.load(ckpt, weights_only=True)["hyper_parameters"]
    assert (hparams["in_channels"], hparams["image_size"], hparams["num_classes"]) == (3, 32, 10)
    module, name = hparams["_class_path"].rsplit(".", 1)
    assert getattr(__import__(module, fromlist=[name]), name) is zoo.LeNet5


def test_full_class_paths(tmp_path, vision_root):
    """subprocess: ``python train.py`` itself, with class paths instead of a recipe."""
    proc = run_cli(
        "fit", "--model", "zoo.SimpleCNN", "--data", "datamodules.FashionMNISTDataModule",
        "--trainer.fast_dev_run=true", cwd=tmp_path, data_root=vision_root.root,
    )  # fmt: skip
    assert proc.returncode == 0


def test_print_config_is_a_loadable_recipe(tmp_path):
    """subprocess: ``train.py --print_config`` prints a recipe that ``train.py fit --config`` runs."""
    proc = run_cli("fit", "--config", str(REPO / "configs" / "lenet5_digits.yaml"), "--print_config", cwd=tmp_path)
    printed = yaml.safe_load(proc.stdout)
    assert printed["model"]["class_path"] == "zoo.LeNet5"
    assert printed["data"]["init_args"]["image_size"] == 32
    recipe = yaml.safe_load((REPO / "configs" / "lenet5_digits.yaml").read_text())
    assert printed["trainer"]["max_epochs"] == recipe["trainer"]["max_epochs"]
    assert printed["model"]["init_args"]["activation"] == recipe["model"]["init_args"]["activation"]
    (tmp_path / "printed.yaml").write_text(proc.stdout)
    run_cli("fit", "--config", "printed.yaml", "--trainer.fast_dev_run=true", cwd=tmp_path)


def test_help_lists_models_and_datamodules(tmp_path):
    """subprocess: ``train.py fit --help``."""
    out = run_cli("fit", "--help", cwd=tmp_path).stdout
    for name in ["LeNet5", "SimpleCNN", "MLP", "LinearRegression"]:
        assert f"zoo.{name}" in out or f".{name}" in out, name
    for name in ["FashionMNISTDataModule", "MNISTDataModule", "CIFAR10DataModule", "DigitsDataModule", "BlobsDataModule"]:
        assert name in out, name
    assert "--test_after_fit" in out and "--trainer.max_epochs" in out


def test_fit_keeps_best_and_last_then_test_resume_and_predict(in_tmp_cwd, capsys):
    """fit, test, resume and predict from one recipe, as train.py runs them (stdout is not a terminal here)."""
    tmp_path = in_tmp_cwd
    config = str(REPO / "configs" / "lenet5_digits.yaml")
    fit_cli = main(["fit", "--config", config, "--trainer.max_epochs=2"])
    fit, fit_acc = capsys.readouterr().out, float(fit_cli.trainer.callback_metrics["test/acc"])
    ckpt_dir = next((tmp_path / "lightning_logs").rglob("checkpoints"))
    names = sorted(p.name for p in ckpt_dir.iterdir())
    assert "last.ckpt" in names and len(names) == 2, names  # the best epoch by val/acc, plus last
    best = next(p for p in ckpt_dir.iterdir() if p.name != "last.ckpt")
    assert "test/acc" in fit  # test_after_fit: true in the recipe
    epoch_lines = [ln for ln in fit.splitlines() if ln.startswith("Epoch ")]
    assert [ln.split()[1] for ln in epoch_lines] == ["1/2", "2/2"]  # one line per epoch when not on a terminal
    assert "val/acc=" in epoch_lines[-1] and "\r" not in fit
    assert f"model = zoo.load_checkpoint('{best.relative_to(tmp_path)}')" in fit  # the safe loader

    model = zoo.load_checkpoint(best)
    assert isinstance(model, zoo.LeNet5) and not model.training
    assert model.input_shape == (1, 32, 32)  # image_size linked from DigitsDataModule(image_size=32)

    test = main(["test", "--config", config, "--ckpt_path", str(best)])
    assert test.trainer.callback_metrics["test/acc"] == pytest.approx(fit_acc)  # the same best model

    last = ckpt_dir / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    main(["fit", "--config", config, "--trainer.max_epochs=3", "--ckpt_path", str(last), "--test_after_fit=false"])
    resumed = sorted((tmp_path / "lightning_logs").rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)[-1]
    state = torch.load(resumed, weights_only=True)
    assert state["epoch"] == 2  # continued from epoch 1: one more epoch, not three
    assert state["optimizer_states"][0]["state"], "optimizer state restored and stepped"

    predict = main(["predict", "--config", config, "--ckpt_path", str(best)])
    assert predict.trainer.state.finished and predict.trainer.state.fn == "predict"


def test_in_process_cli_returns_trained_objects(tmp_path):
    cli = main(
        ["fit", "--config", str(REPO / "configs" / "mlp_blobs.yaml"), "--trainer.max_epochs=1",
         f"--trainer.default_root_dir={tmp_path}", "--test_after_fit=false"]
    )  # fmt: skip
    assert isinstance(cli.model, zoo.MLP) and cli.model.binary
    assert cli.model.hparams.in_features == 2  # linked from BlobsDataModule.input_shape
    assert cli.trainer.current_epoch == 1
    assert "val/acc" in cli.trainer.callback_metrics


def test_missing_data_offline_is_one_clear_error(tmp_path):
    proc = run_cli(
        "fit", "--model", "LeNet5", "--data", "MNISTDataModule", "--data.download=false",
        "--data.data_dir", str(tmp_path / "nowhere"), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "MNIST not found" in proc.stderr
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "nowhere").exists()


def test_cli_optimizer_and_scheduler_replace_the_models_own(tmp_path):
    cli = main(
        ["fit", "--config", str(REPO / "configs" / "mlp_blobs.yaml"), "--trainer.max_epochs=2",
         f"--trainer.default_root_dir={tmp_path}", "--test_after_fit=false",
         "--optimizer", "SGD", "--optimizer.lr", "0.2", "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "1",
         "--lr_scheduler.gamma", "0.5"]
    )  # fmt: skip
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5**2)  # stepped once per epoch
