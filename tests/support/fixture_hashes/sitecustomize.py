"""Test-suite only: lets ``train.py`` subprocesses read the fixture CIFAR-10 batches.

The zoo unpickles a CIFAR-10 batch only when its MD5 is torchvision's, so the suite's tiny fixture batches
(written in the real format by tests/conftest.py) would be refused. The ``vision_root`` fixture puts this
folder on ``PYTHONPATH`` and names a JSON file of the fixture batches' MD5s in ``ZOO_TEST_CIFAR10_MD5_FILE``;
Python runs this module at start-up in every subprocess. It imports nothing of the zoo: it waits for
``datamodules.vision`` to be imported by the process itself, then widens the accepted MD5s in that process only.
The library itself reads no such variable: outside the test suite, only torchvision's table is trusted.
"""

import importlib.abc
import importlib.util
import json
import os
import sys

_TARGET = "datamodules.vision"


def _widen(vision) -> None:
    with open(os.environ["ZOO_TEST_CIFAR10_MD5_FILE"]) as f:
        fixture_md5 = json.load(f)
    official = vision.CIFAR10DataModule.accepted_md5s

    def accepted_md5s(name: str) -> set[str]:
        return official(name) | ({fixture_md5[name]} if name in fixture_md5 else set())

    vision.CIFAR10DataModule.accepted_md5s = staticmethod(accepted_md5s)


class _WidenOnImport(importlib.abc.MetaPathFinder):
    """Finds ``datamodules.vision`` as usual, and runs ``_widen`` on it right after it executes."""

    def find_spec(self, name, path=None, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)  # the usual finders find it; this one only wraps the loader
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _widen(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("ZOO_TEST_CIFAR10_MD5_FILE"):
    sys.meta_path.insert(0, _WidenOnImport())
