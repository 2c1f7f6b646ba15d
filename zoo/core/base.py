"""The base classes of the zoo's models, in one place to import them from.

``ZooModule``         every model: optimizer and scheduler, input checks, example input (``zoo.core.module``).
``SupervisedModule``  the models trained one loss per ``(x, y)`` batch, and under it
``ClassifierModule``  and ``RegressorModule`` (``zoo.core.supervised``).
"""

from zoo.core.module import ZooModule
from zoo.core.supervised import ClassifierModule, IncompatibleDataError, RegressorModule, SupervisedModule

__all__ = ["ClassifierModule", "IncompatibleDataError", "RegressorModule", "SupervisedModule", "ZooModule"]
