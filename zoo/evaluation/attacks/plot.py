"""The robustness figure: accuracy against the budget under FGSM (and PGD where measured), and FGSM examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_robustness"]


def plot_robustness(results: Any, tally: Any | None, path: str | Path, class_names: list[str] | None = None) -> Path:
    """PNG: accuracy vs epsilon, and example adversarial images (one row per epsilon) with their predictions.

    Args:
        results: a ``Robustness`` (its ``fgsm`` and ``pgd`` accuracies), or a dict epsilon -> FGSM accuracy.
        tally: what collected the examples (``examples``: epsilon -> (pixels, predictions), ``example_labels``); None: no examples.
        path: the PNG to write.
        class_names: the examples' titles; None: class indices.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fgsm, pgd = (results, {}) if isinstance(results, dict) else (results.fgsm, results.pgd)
    examples = tally.examples if tally is not None else {}
    cols = max((len(v[0]) for v in examples.values()), default=0)
    rows = len(examples)
    fig = plt.figure(figsize=(4 + 1.2 * cols, max(3.5, 1.2 * rows)))
    grid = fig.add_gridspec(max(rows, 1), 1 + max(cols, 1), width_ratios=[max(3, cols / 2)] + [1] * max(cols, 1))
    ax = fig.add_subplot(grid[:, 0])
    ax.plot(list(fgsm), list(fgsm.values()), "o-", label="FGSM")
    if pgd:
        ax.plot(list(pgd), list(pgd.values()), "s--", label=f"PGD-{results.pgd_steps}")
        ax.legend()
    ax.set(xlabel="epsilon (pixels in [0, 1])", ylabel="accuracy", title="accuracy under attack", ylim=(0, 1))
    ax.grid(alpha=0.3)
    name = (lambda c: class_names[c]) if class_names else str
    for r, (e, (images, preds)) in enumerate(examples.items()):
        for c in range(len(images)):
            sub = fig.add_subplot(grid[r, 1 + c])
            image = images[c].permute(1, 2, 0).squeeze(-1).numpy()
            sub.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            ok = int(preds[c]) == int(tally.example_labels[c])
            sub.set_title(name(int(preds[c])), fontsize=7, color="green" if ok else "red")
            sub.set_xticks([])
            sub.set_yticks([])
            if c == 0:
                sub.set_ylabel(f"eps={e:.2f}", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
