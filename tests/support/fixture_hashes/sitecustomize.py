"""Test-suite only: lets ``train.py`` subprocesses read the fixture CIFAR-10 batches.

The zoo unpickles a CIFAR-10 batch only when its MD5 is torchvision's, so the suite's tiny fixture batches
(written in the real format by tests/conftest.py) would be refused. The ``vision_root`` fixture puts this
folder on ``PYTHONPATH`` and names a JSON file of the fixture batches' MD5s in ``ZOO_TEST_CIFAR10_MD5_FILE``;
Python runs this module at start-up in every subprocess, which widens the accepted MD5s in that process only.
The library itself reads no such variable: outside the test suite, only torchvision's table is trusted.
"""

import json
import os

_path = os.environ.get("ZOO_TEST_CIFAR10_MD5_FILE")
if _path:
    with open(_path) as _f:
        _fixture_md5 = json.load(_f)

    import datamodules.vision as _vision

    _official = _vision.CIFAR10DataModule.accepted_md5s

    def _accepted_md5s(name: str) -> set[str]:
        return _official(name) | ({_fixture_md5[name]} if name in _fixture_md5 else set())

    _vision.CIFAR10DataModule.accepted_md5s = staticmethod(_accepted_md5s)
