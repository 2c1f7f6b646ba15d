"""Translate text with a trained translation checkpoint, without the dataset.

    python -m zoo.translate --checkpoint best.ckpt "one thousand and two" "forty-two"

or in Python:

    >>> model = zoo.load_translation_model("best.ckpt")       # doctest: +SKIP
    >>> zoo.translate(model, "one thousand and two")          # doctest: +SKIP
    'mille deux'

The checkpoint carries the vocabularies in its hyperparameters and the model class by name, and is
loaded with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import sys

import torch

__all__ = ["load_translation_model", "main", "translate"]


def load_translation_model(checkpoint: str, map_location: str = "cpu"):
    """The ``TranslationModule`` (``Seq2Seq``, ``Transformer``) saved in ``checkpoint``, in eval mode."""
    import zoo
    from zoo.decoding import TranslationModule

    raw = torch.load(checkpoint, map_location=map_location, weights_only=True)
    name = raw.get("zoo_class") or str(raw.get("hyper_parameters", {}).get("_class_path", "")).rsplit(".", 1)[-1]
    cls = getattr(zoo, name, None)
    if not (isinstance(cls, type) and issubclass(cls, TranslationModule)):
        raise ValueError(f"{checkpoint} is not a translation checkpoint (model class {name or 'unknown'!r})")
    return cls.load_from_checkpoint(checkpoint, map_location=map_location, weights_only=True).eval()


def translate(model, text: str | list[str], beam_size: int | None = None) -> str | list[str]:
    """Translate one sentence (-> str) or several (-> list) with a trained translation model."""
    return model.translate(text, beam_size=beam_size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.translate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a .ckpt of zoo.Seq2Seq or zoo.Transformer")
    parser.add_argument("--beam_size", type=int, default=None, help="beams (1: greedy); default: the model's own")
    parser.add_argument("text", nargs="+", help="sentences to translate, one argument each")
    args = parser.parse_args(argv)
    try:
        model = load_translation_model(args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    for line in translate(model, args.text, beam_size=args.beam_size):
        print(line)


if __name__ == "__main__":
    main()
