"""Using trained models: ``predict`` on raw images, ONNX / torch.export deployment, ``generate``, ``translate``, ``play``."""

from zoo.serving.export import export_onnx, export_program, read_export_metadata
from zoo.serving.generate import generate
from zoo.serving.play import play
from zoo.serving.predict import predict
from zoo.serving.translate import translate

__all__ = ["export_onnx", "export_program", "generate", "play", "predict", "read_export_metadata", "translate"]
