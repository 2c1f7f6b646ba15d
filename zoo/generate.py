"""Write a PNG grid of a trained GAN's samples: ``python -m zoo.generate --checkpoint X --out grid.png``.

    python -m zoo.generate --checkpoint best.ckpt --out grid.png                     # cGAN: one row per class
    python -m zoo.generate --checkpoint best.ckpt --out shirts.png --labels 0 6 --n 16
"""

from __future__ import annotations

import argparse
import importlib
import math

import torch

from zoo.gan import DCGAN, GAN, GANModule, generate

__all__ = ["load_gan", "main"]


def load_gan(path: str) -> GANModule:
    """A zoo GAN from a checkpoint (``weights_only=True``); the class is the recorded ``_class_path``,
    else told apart by its hyperparameters."""
    hparams = torch.load(path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    if "_class_path" in hparams:
        module, name = hparams["_class_path"].rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
    else:
        cls = DCGAN if "feature_maps" in hparams else GAN
    return cls.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m zoo.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a GAN checkpoint (gan, cgan or dcgan)")
    parser.add_argument("--out", default="samples.png", help="PNG file to write")
    parser.add_argument("--labels", type=int, nargs="*", help="classes to draw (conditional GANs); default: every class")
    parser.add_argument("--n", type=int, default=None, help="images per class (conditional) or in all; default 8 or 64")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    args = parser.parse_args(argv)

    from torchvision.utils import save_image

    model = load_gan(args.checkpoint)
    if model.conditional:
        labels = args.labels if args.labels else list(range(model.num_classes))
        n = args.n or 8
        images = generate(model, labels=labels, n=n, seed=args.seed)  # (len(labels) * n, C, H, W)
        nrow = n  # one row per class
    else:
        if args.labels:
            parser.error(f"{type(model).__name__} is unconditional: it takes no --labels")
        n = args.n or 64
        images = generate(model, n=n, seed=args.seed)
        nrow = int(math.ceil(math.sqrt(n)))
    save_image(images, args.out, nrow=nrow, padding=2, pad_value=1.0)
    print(f"wrote {len(images)} images to {args.out}")
    return args.out


if __name__ == "__main__":
    main()
