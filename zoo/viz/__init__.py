"""Figures and progress bars: matplotlib figures to images, the logger or PNG files, and tqdm bars.

Below every other layer: models draw their own figures during fit and test, so nothing here imports the zoo.
"""
