"""Self-supervised representation learning: SimCLR."""

from zoo.models.selfsupervised.simclr import SimCLR

__all__ = ["SimCLR"]
