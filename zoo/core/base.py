"""The base classes of the zoo's models, in one place to import them from.

``ZooModule``         every model: optimizer and scheduler, input checks, example input, and the steps of the
                      models trained one loss per ``(x, y)`` batch (``zoo.core.module``); ``SupervisedModule``,
                      the name of those models' base before, names it too.
``ClassifierModule``  and ``RegressorModule``: the classifiers' and regressors' losses and metrics (``zoo.core.supervised``).
"""

from zoo.core.module import ZooModule
from zoo.core.supervised import ClassifierModule, IncompatibleDataError, RegressorModule, SupervisedModule

__all__ = ["ClassifierModule", "IncompatibleDataError", "RegressorModule", "SupervisedModule", "ZooModule"]
