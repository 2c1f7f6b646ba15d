"""Translation with a trained encoder-decoder (Seq2Seq, Transformer), a checkpoint path or a shipped entry.

    >>> zoo.translate("transformer.num2words_en_fr", "twenty one")                 # doctest: +SKIP
"""

from __future__ import annotations

from zoo.hub.pretrained import load_trained

__all__ = ["translate"]


def translate(model, text: str | list[str], beam_size: int | None = None) -> str | list[str]:
    """Translate one sentence (-> str) or several (-> list) with a trained translation model, a checkpoint
    path or a shipped entry name ("transformer.num2words_en_fr", see ``zoo.list_pretrained()``)."""
    return load_trained(model).translate(text, beam_size=beam_size)
