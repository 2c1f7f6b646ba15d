"""The zoo's command-line tools, thin wrappers over library functions.

=============  ==============================  =====================================
command        module                          library function
=============  ==============================  =====================================
zoo-predict    ``python -m zoo.tools.predict``   ``zoo.predict`` (top-k classes of images)
zoo-generate   ``python -m zoo.tools.generate``  ``zoo.generate`` (a PNG grid of GAN samples)
zoo-translate  ``python -m zoo.tools.translate`` ``zoo.translate`` (text through a translation model)
zoo-export     ``python -m zoo.tools.export``    ``zoo.evaluation.evaluate`` + ``zoo.pretrained.save_pretrained`` (a shipped entry)
zoo-train      ``python train.py``               ``zoo.cli.main`` (the LightningCLI)
=============  ==============================  =====================================

Every tool loads checkpoints with ``zoo.load_checkpoint`` (weights only, the class found among the
zoo's own), and takes a shipped entry name (``zoo.list_pretrained()``, loaded by ``zoo.load_pretrained``)
wherever it takes a checkpoint path. The modules here are never named like a function that ``zoo``
exports, so importing one leaves ``zoo.predict``, ``zoo.generate`` and ``zoo.translate`` the functions they are.
"""
