"""The architectures, one sub-package per family; a family imports ``zoo.core`` and never another family.

Importing this package defines (and registers) every family's models.
"""

from zoo.models import generative, regression, rl, selfsupervised, sequence, vision

__all__ = ["generative", "regression", "rl", "selfsupervised", "sequence", "vision"]
