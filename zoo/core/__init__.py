"""What every model shares: the base classes, layers, preprocessing, the tokenizer and the model registry.

The bottom layer of the zoo: it imports nothing of the zoo but ``zoo.viz`` (the figures a model logs).
"""
