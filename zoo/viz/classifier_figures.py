"""What a classifier draws at test time: a confusion matrix with class names, and its most confident mistakes.

``ClassifierModule`` feeds every test batch to a ``ClassifierTestFigures`` and logs its figures when the test run
ends (``zoo.figures`` decides where they go):

* ``test/confusion_matrix``: counts, rows = true class, columns = predicted class, labelled with the
  model's ``class_names`` (else the class indices); also logged as a table (``test/confusion_matrix``:
  a CSV in ``<log_dir>/tables/`` when the logger takes no tables);
* ``test/most_confident_errors``: the test images the model got wrong with the highest confidence, as
  pixels (the model's normalization undone), each titled with its predicted and true class and the
  confidence. Only for models that read images (those holding an ``ImageInput``, with an ``image_shape``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from zoo.viz.figures import figure_to_image, new_figure, save_or_log_image, save_or_log_table

__all__ = ["ClassifierTestFigures", "confusion_matrix_figure", "errors_figure"]

#: Above this many classes the matrix is drawn without per-cell counts, and not logged as a table.
_ANNOTATED_CLASSES = 20
_TABLE_CLASSES = 100


def confusion_matrix_figure(matrix: Tensor, class_names: list[str]):
    """(K, K) counts (rows true, columns predicted) -> a matplotlib figure with named axes."""
    k = len(class_names)
    side = min(4 + 0.45 * k, 16)
    fig = new_figure(side + 1.5, side)
    ax = fig.add_subplot()
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if k <= _ANNOTATED_CLASSES:
        ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), class_names, fontsize=8)
        threshold = matrix.max().item() / 2
        for i in range(k):
            for j in range(k):
                count = int(matrix[i, j])
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = matrix.diag().sum().item() / max(1, matrix.sum().item())
    ax.set_title(f"Confusion matrix (test, accuracy {accuracy:.2%})")
    fig.tight_layout()
    return fig


def errors_figure(pixels: Tensor, predicted: list[str], true: list[str], confidence: list[float]):
    """(N, C, H, W) pixels in [0, 1] with their predicted / true names and confidences -> a grid figure."""
    n = len(pixels)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = new_figure(2.4 * cols, 2.6 * rows)
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        image = pixels[i].permute(1, 2, 0).numpy()  # (H, W, C)
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
        else:
            ax.imshow(image.clip(0.0, 1.0))
        ax.set_title(f"pred {predicted[i]} ({confidence[i]:.0%})\ntrue {true[i]}", fontsize=8)
        ax.axis("off")
    fig.suptitle("Most confident mistakes (test)", fontsize=10)
    fig.tight_layout()
    return fig


class ClassifierTestFigures:
    """Accumulates a test run's confusion matrix and its ``keep`` most confident mistakes.

    Args:
        num_classes: number of classes of the classifier.
        keep: how many mistakes to keep (those with the highest predicted probability).
    """

    def __init__(self, *, num_classes: int, keep: int = 16) -> None:
        if num_classes < 2 or keep < 0:
            raise ValueError(f"num_classes must be >= 2 and keep >= 0, got {num_classes} and {keep}")
        self.num_classes = num_classes
        self.keep = keep
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)  # (K, K) rows true, columns predicted
        self.inputs: Tensor | None = None  # (N, *input_shape) model inputs of the kept mistakes
        self.confidence = torch.zeros(0)  # (N,)
        self.predicted = torch.zeros(0, dtype=torch.long)  # (N,)
        self.target = torch.zeros(0, dtype=torch.long)  # (N,)

    @torch.no_grad()
    def update(self, x: Tensor, probs: Tensor, y: Tensor) -> None:
        """One batch: inputs (B, ...), class probabilities (B, K), labels (B,)."""
        confidence, predicted = probs.detach().float().max(dim=-1)  # (B,), (B,)
        y = y.detach().long()
        index = (y * self.num_classes + predicted).cpu()
        self.matrix += torch.bincount(index, minlength=self.num_classes**2).view(self.num_classes, self.num_classes)
        wrong = (predicted != y).nonzero().squeeze(1)  # (W,)
        if self.keep == 0 or len(wrong) == 0 or not x.is_floating_point():
            return  # token ids (text, one length per batch) make no picture: only images are kept
        if len(wrong) > self.keep:  # only this batch's most confident mistakes can enter the kept ones
            wrong = wrong[confidence[wrong].topk(self.keep).indices]
        inputs = x.detach()[wrong].cpu()  # at most keep images leave the device
        pool_x = inputs if self.inputs is None else torch.cat([self.inputs, inputs])
        pool_conf = torch.cat([self.confidence, confidence[wrong].cpu()])
        pool_pred = torch.cat([self.predicted, predicted[wrong].cpu()])
        pool_true = torch.cat([self.target, y[wrong].cpu()])
        top = pool_conf.topk(min(self.keep, len(pool_conf))).indices
        self.inputs, self.confidence, self.predicted, self.target = pool_x[top], pool_conf[top], pool_pred[top], pool_true[top]

    def class_names(self, module) -> list[str]:
        """The model's ``class_names`` when it has one per class, else the class indices as strings."""
        names = module.hparams.get("class_names")
        if names is not None and len(names) == self.num_classes:
            return [str(n) for n in names]
        return [str(i) for i in range(self.num_classes)]

    def log(self, module) -> None:
        """Draw and log the figures (and the confusion-matrix table) through ``zoo.figures``."""
        names = self.class_names(module)
        save_or_log_image(module, "test/confusion_matrix", figure_to_image(confusion_matrix_figure(self.matrix, names)))
        if self.num_classes <= _TABLE_CLASSES:
            rows = [[names[i], *self.matrix[i].tolist()] for i in range(self.num_classes)]
            save_or_log_table(module, "test/confusion_matrix", ["true \\ predicted", *names], rows)
        pixels = self._pixels(module)
        if pixels is not None:
            figure = errors_figure(
                pixels,
                [names[i] for i in self.predicted.tolist()],
                [names[i] for i in self.target.tolist()],
                self.confidence.tolist(),
            )
            save_or_log_image(module, "test/most_confident_errors", figure_to_image(figure))

    def _pixels(self, module) -> Tensor | None:
        """The kept mistakes as (N, C, H, W) pixels in [0, 1], or None for a model that does not read images."""

        if self.inputs is None or not all(hasattr(type(module), a) for a in ("image_shape", "denormalize")):  # models holding an ImageInput
            return None
        try:
            shape = tuple(module.image_shape)  # (C, H, W)
        except (ValueError, NotImplementedError):  # an MLP of tabular features, a text model
            return None
        if len(shape) != 3 or self.inputs[0].numel() != math.prod(shape):
            return None
        return module.denormalize(self.inputs.reshape(-1, *shape).float()).clamp(0.0, 1.0)  # (N, C, H, W)
