"""``zoo-generate`` (or ``python -m zoo.tools.generate``): a PNG grid of a trained GAN's or VAE's samples.

    zoo-generate --checkpoint best.ckpt --out grid.png                     # cGAN: one row per class
    zoo-generate --checkpoint best.ckpt --out shirts.png --labels 0 6 --n 16
    zoo-generate --checkpoint cgan.fashionmnist --out grid.png           # a shipped entry (zoo.list_pretrained())

The library function is ``zoo.generate``; checkpoints load through ``zoo.load_checkpoint``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from zoo.hub.pretrained import PretrainedWeightsUnavailable, load_trained
from zoo.models.generative.gan_base import GANModule
from zoo.serving.generate import generate

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zoo-generate", description="Write a PNG grid of a trained GAN's or VAE's samples.")
    parser.add_argument("--checkpoint", required=True, help="a GAN checkpoint (gan, cgan or dcgan), or a shipped entry name (cgan.fashionmnist)")
    parser.add_argument("--model", help="registry or class name of the GAN, for a checkpoint that does not record it")
    parser.add_argument("--out", default="samples.png", help="PNG file to write")
    parser.add_argument("--labels", type=int, nargs="*", help="classes to draw (conditional GANs); default: every class")
    parser.add_argument("--n", type=int, default=None, help="images per class (conditional) or in all; default 8 or 64")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    args = parser.parse_args(argv)

    from torchvision.utils import save_image

    try:
        model = load_trained(args.checkpoint, model=args.model)
    except (FileNotFoundError, ValueError, PretrainedWeightsUnavailable) as e:
        sys.exit(f"error: {e}")
    if not isinstance(model, GANModule) and not callable(getattr(model, "sample", None)):
        sys.exit(f"error: {args.checkpoint} holds a {type(model).__name__}, not a GAN or a VAE")
    if getattr(model, "conditional", False):
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


if __name__ == "__main__":
    main()
