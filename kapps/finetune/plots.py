"""Plots of a fine-tuning run, drawn with matplotlib's Agg backend and written as PNG files.

Every file is written atomically (a temporary file in the same folder, then a rename),
so a reader never sees half a PNG. No pyplot state is used: figures are plain
``matplotlib.figure.Figure`` objects, safe in scripts, servers and threads.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kapps.utils.files import atomic_open

__all__ = ["plot_history", "plot_confusion_matrix", "plot_predictions", "plot_masks", "save_figure"]


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 110) -> str:
    """Render ``figure`` to ``path`` as PNG, atomically."""
    FigureCanvasAgg(figure)
    with atomic_open(path, "wb") as f:
        figure.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    return os.fspath(path)


def plot_history(history: Mapping[str, Sequence[Any]], path: str | os.PathLike,
                 metrics: Sequence[str] = ("loss", "accuracy"), phase_one: str = "head") -> str:
    """``metrics`` (default: loss and accuracy) per epoch over both phases, with the phase boundary
    marked (phase 1 labelled ``phase_one``: what it trains).

    ``history`` is ``FineTuneResult.history``: lists of the same length with keys
    ``phase``, ``loss``, ``accuracy`` and, with validation data, ``val_loss`` and
    ``val_accuracy`` (and the ``val_`` twin of any other metric).
    """
    phases = list(history.get("phase", []))
    if not phases:
        raise ValueError("`history` has no epochs to plot (its 'phase' list is empty).")
    x = np.arange(1, len(phases) + 1)
    boundary = sum(1 for p in phases if p == 1)
    figure = Figure(figsize=(5.5 * len(metrics), 4.2))
    for column, metric in enumerate(metrics):
        ax = figure.add_subplot(1, len(metrics), column + 1)
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            values = history.get(key)
            if values:
                ax.plot(x, np.asarray(values, dtype=float), style, markersize=4, label=label)
        if 0 < boundary < len(phases):
            ax.axvline(boundary + 0.5, color="gray", linestyle="--", linewidth=1.2)
            ax.axvspan(0.5, boundary + 0.5, color="tab:blue", alpha=0.05)
            ax.axvspan(boundary + 0.5, len(phases) + 0.5, color="tab:orange", alpha=0.05)
            top = ax.get_ylim()[1]
            ax.text(boundary + 0.4, top, f"phase 1: {phase_one} ", ha="right", va="top", fontsize=8, color="dimgray")
            ax.text(boundary + 0.6, top, " phase 2: fine-tune", ha="left", va="top", fontsize=8, color="dimgray")
        ax.set_xlim(0.5, len(phases) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch (both phases)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_confusion_matrix(report: Any, path: str | os.PathLike) -> str:
    """The confusion matrix of an :class:`~kapps.finetune.evaluate.EvaluationReport`: counts, colored by row share."""
    matrix = np.asarray(report.confusion_matrix)
    names = list(report.class_names)
    n = len(names)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = max(4.0, 0.6 * n + 2.5)
    figure = Figure(figsize=(size + 1, size))
    ax = figure.add_subplot(1, 1, 1)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(n), names, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion matrix (accuracy {report.accuracy:.3f}, {report.num_samples} images)")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if share[i, j] > 0.5 else "black")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_predictions(
    images: np.ndarray,
    labels: Sequence[int],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    columns: int = 4,
) -> str:
    """A grid of images with their true and predicted labels (green when right, red when wrong)."""
    images = np.asarray(images)
    if len(images) == 0:
        raise ValueError("`images` is empty: there is nothing to plot.")
    probabilities = np.asarray(probabilities)
    rows = int(np.ceil(len(images) / columns))
    figure = Figure(figsize=(3 * columns, 3.2 * rows))
    for i, image in enumerate(images):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.imshow(np.clip(image, 0, 255).astype("uint8"))
        predicted = int(np.argmax(probabilities[i]))
        right = predicted == int(labels[i])
        ax.set_title(f"true: {class_names[int(labels[i])]}\npred: {class_names[predicted]} "
                     f"({probabilities[i][predicted]:.2f})", fontsize=9, color="green" if right else "red")
        ax.axis("off")
    figure.tight_layout()
    return save_figure(figure, path, dpi=72)


def _overlay(image: np.ndarray, mask: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """``image`` with each pixel of class > 0 tinted by its class colour (class 0 left as it is)."""
    tinted = np.clip(image, 0, 255) / 255.0
    paint = colours[np.asarray(mask, "int64") % len(colours)]
    where = (np.asarray(mask) > 0)[..., None]
    return np.where(where, 0.45 * tinted + 0.55 * paint, tinted)


def plot_masks(
    images: np.ndarray,
    masks: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
) -> str:
    """An overlay grid, one row per image: the image, its true mask and the predicted mask (classes
    other than class 0 tinted over the image), with the image's pixel accuracy."""
    images, masks, predicted = np.asarray(images), np.asarray(masks), np.asarray(predicted)
    if len(images) == 0:
        raise ValueError("`images` is empty: there is nothing to plot.")
    cmap = colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    colours = np.asarray([cmap(i % cmap.N)[:3] for i in range(max(len(class_names), 2))])
    figure = Figure(figsize=(9, 3 * len(images) + 0.4))
    for row, (image, mask, guess) in enumerate(zip(images, masks, predicted)):
        accuracy = float(np.mean(mask == guess))
        panels = ((np.clip(image, 0, 255) / 255.0, "image"), (_overlay(image, mask, colours), "true mask"),
                  (_overlay(image, guess, colours), f"predicted (pixel accuracy {accuracy:.3f})"))
        for column, (pixels, title) in enumerate(panels):
            ax = figure.add_subplot(len(images), 3, row * 3 + column + 1)
            ax.imshow(pixels)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    handles = [Patch(color=colours[i], label=name) for i, name in enumerate(class_names) if i > 0]
    figure.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8,
                  title=f"tinted classes ({class_names[0]}: not tinted)", title_fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))
    return save_figure(figure, path, dpi=72)
