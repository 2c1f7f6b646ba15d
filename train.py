"""Train, validate, test or predict with any zoo model from the command line.

    python train.py fit --config configs/lenet5_digits.yaml
    python train.py fit --model LeNet5 --data FashionMNISTDataModule --trainer.max_epochs 5
    python train.py test --config configs/lenet5_digits.yaml --ckpt_path path/to/best.ckpt
    python train.py fit --help                    # every model, datamodule and Trainer flag

This is Lightning's CLI (https://lightning.ai/docs/pytorch/stable/cli/lightning_cli.html); see zoo/cli.py.
"""

from zoo.training.cli import main

if __name__ == "__main__":
    main()
