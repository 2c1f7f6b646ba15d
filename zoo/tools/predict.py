"""``zoo-predict`` (or ``python -m zoo.tools.predict``): the top-k classes of image files and folders,
as a table, or as a CSV file with ``--out``.

    zoo-predict --checkpoint lightning_logs/version_0/checkpoints/epoch009.ckpt shirt.png boot.png
    zoo-predict --model resnet18 --weights IMAGENET1K_V1 cat.jpg
    zoo-predict --checkpoint lenet5.fashionmnist shirt.png              # a shipped entry (zoo.list_pretrained())
    zoo-predict --checkpoint lenet5.fashionmnist photos/ --out preds.csv --topk 3 --batch-size 256

Folders are searched recursively for images (``zoo.inference.IMAGE_SUFFIXES``). The images go through
the model ``--batch-size`` at a time, with a progress bar on stderr when it is a terminal (``--progress``
forces it, ``--no-progress`` turns it off). The CSV is tidy, one row per image and rank:
``path,rank,label,probability``; it is written whole once every image is done (a temporary file, then
a rename), so an interrupted run never leaves a partial or truncated CSV. An image that cannot be
decoded stops the run with an error naming the file, unless ``--skip-bad`` lists it on stderr and goes on.

The library function is ``zoo.predict``; checkpoints load through ``zoo.load_checkpoint``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from zoo.core.base import ClassifierModule
from zoo.hub.create import create_model
from zoo.hub.pretrained import PretrainedWeightsUnavailable, _write_atomic, load_trained
from zoo.serving.predict import UnreadableImageError, find_images, load_image, predict

__all__ = ["CSV_COLUMNS", "format_csv", "format_table", "load_model", "main", "predict_files"]

CSV_COLUMNS = ("path", "rank", "label", "probability")


def load_model(checkpoint: str | None = None, model: str | None = None, weights: str | None = None) -> ClassifierModule:
    """The model of a ``.ckpt`` (``zoo.load_checkpoint``, ``model`` naming its class if it does not) or of a
    shipped entry name, or ``create_model(model, weights=weights)``, in eval mode."""
    if checkpoint is None:
        if model is None:
            raise ValueError("give a checkpoint, or a model name (with --weights) to predict with")
        return create_model(model, **({"weights": weights} if weights else {})).eval()
    if weights:
        raise ValueError("--weights builds a model from ImageNet weights; it does not combine with --checkpoint")
    loaded = load_trained(checkpoint, model=model)
    if not isinstance(loaded, ClassifierModule):
        raise ValueError(f"{checkpoint} holds a {type(loaded).__name__}, not a classifier")
    return loaded


def format_table(paths: Sequence[str], results: list[list[tuple[str, float]]]) -> str:
    """One block per image: rank, probability and label."""
    lines = []
    for path, top in zip(paths, results):
        lines.append(str(path))
        lines += [f"  {rank}. {p:7.2%}  {label}" for rank, (label, p) in enumerate(top, start=1)]
    return "\n".join(lines)


def format_csv(paths: Sequence[str], results: list[list[tuple[str, float]]]) -> str:
    """The tidy CSV: a header, then one row per image and rank (probabilities at full float precision)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for path, top in zip(paths, results):
        writer.writerows((path, rank, label, repr(p)) for rank, (label, p) in enumerate(top, start=1))
    return out.getvalue()


def predict_files(
    model: ClassifierModule,
    files: Sequence[str],
    *,
    topk: int = 5,
    batch_size: int = 256,
    skip_bad: bool = False,
    progress: bool = False,
) -> tuple[list[str], list[list[tuple[str, float]]], list[str]]:
    """``zoo.predict`` over ``files``, ``batch_size`` images per forward pass, with a tqdm bar on stderr.

    Returns:
        (the files predicted, their top-k (label, probability) lists, the files skipped as unreadable).
        Without ``skip_bad`` an unreadable file raises ``UnreadableImageError`` naming it.
    """
    from tqdm import tqdm

    done, results, bad = [], [], []
    with tqdm(total=len(files), desc="zoo-predict", unit="img", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, len(files), batch_size):
            chunk, images = files[start : start + batch_size], []
            for path in chunk:
                try:
                    images.append(load_image(path))
                    done.append(path)
                except UnreadableImageError:
                    if not skip_bad:
                        raise
                    bad.append(path)
            if images:
                results += predict(model, images, topk=topk, batch_size=batch_size)
            bar.update(len(chunk))
    return done, results, bad


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zoo-predict", description="Top-k classes of images (files or folders), as a table or a CSV file.")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) and folders (searched recursively)")
    parser.add_argument("--checkpoint", help="a .ckpt written by train.py or Lightning, or a shipped entry name (lenet5.fashionmnist)")
    parser.add_argument("--model", help="registry name: the checkpoint's model, or a model to build (with --weights)")
    parser.add_argument("--weights", help="torchvision ImageNet weights for --model, e.g. IMAGENET1K_V1")
    parser.add_argument("--topk", type=int, default=5, help="classes shown per image (default 5)")
    parser.add_argument("--out", help="write a CSV file (path,rank,label,probability) instead of printing a table")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    parser.add_argument("--skip-bad", action="store_true", help="skip images that cannot be decoded (listed on stderr) instead of stopping")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar even when stderr is not a terminal")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    args = parser.parse_args(argv)
    if args.topk < 1 or args.batch_size < 1:
        parser.error(f"--topk and --batch-size must be >= 1, got {args.topk} and {args.batch_size}")
    try:
        files = find_images(args.images)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        model = load_model(args.checkpoint, args.model, args.weights)
        done, results, bad = predict_files(model, files, topk=args.topk, batch_size=args.batch_size, skip_bad=args.skip_bad, progress=progress)
    except UnreadableImageError as e:
        sys.exit(f"error: {e} (--skip-bad skips such files; nothing was written)")
    except (FileNotFoundError, ValueError, TypeError, PretrainedWeightsUnavailable) as e:
        sys.exit(f"error: {e}")
    if bad:
        print(f"skipped {len(bad)} unreadable image(s): {', '.join(bad)}", file=sys.stderr)
    if args.out is None:
        print(format_table(done, results))
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = format_csv(done, results)
    _write_atomic(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    print(f"wrote the top-{min(args.topk, model.num_classes)} classes of {len(done)} images to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
