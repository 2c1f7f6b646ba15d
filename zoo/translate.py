"""Translate text with a trained translation checkpoint, without the dataset.

    python -m zoo.translate --checkpoint best.ckpt "one thousand and two" "forty-two"

or in Python:

    >>> model = zoo.load_translation_model("best.ckpt")       # doctest: +SKIP
    >>> zoo.translate(model, "one thousand and two")          # doctest: +SKIP
    'mille deux'

The checkpoint carries the vocabularies in its hyperparameters and the model class by name, and is
loaded with ``weights_only=True``. The functions live in ``zoo.decoding`` and are exported as
``zoo.translate`` and ``zoo.load_translation_model``.
"""

from __future__ import annotations

import argparse
import sys

from zoo.decoding import load_translation_model, translate

__all__ = ["load_translation_model", "main", "translate"]


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
