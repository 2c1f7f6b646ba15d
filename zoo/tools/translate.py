"""``zoo-translate`` (or ``python -m zoo.tools.translate``): translate text with a trained translation checkpoint.

    zoo-translate --checkpoint best.ckpt "one thousand and two" "forty-two"
    zoo-translate --checkpoint transformer.num2words_en_fr "forty-two"    # a shipped entry (zoo.list_pretrained())

The checkpoint carries its vocabularies in its hyperparameters, so no dataset is needed. The library
functions are ``zoo.load_checkpoint`` and ``zoo.translate``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from zoo.hub.pretrained import PretrainedWeightsUnavailable, load_trained
from zoo.models.sequence.decoding import TranslationModule
from zoo.serving.translate import translate

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zoo-translate", description="Translate text with a trained translation checkpoint.")
    parser.add_argument("--checkpoint", required=True, help="a .ckpt of zoo.Seq2Seq or zoo.Transformer, or a shipped entry name")
    parser.add_argument("--beam_size", type=int, default=None, help="beams (1: greedy); default: the model's own")
    parser.add_argument("text", nargs="+", help="sentences to translate, one argument each")
    args = parser.parse_args(argv)
    try:
        model = load_trained(args.checkpoint)
    except (FileNotFoundError, ValueError, PretrainedWeightsUnavailable) as e:
        sys.exit(f"error: {e}")
    if not isinstance(model, TranslationModule):
        sys.exit(f"error: {args.checkpoint} is not a translation checkpoint (it holds a {type(model).__name__})")
    for line in translate(model, args.text, beam_size=args.beam_size):
        print(line)


if __name__ == "__main__":
    main()
