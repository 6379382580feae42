"""Plots of a fine-tuning run, drawn with matplotlib's Agg backend and written as PNG files.

Every file is written atomically (a temporary file in the same folder, then a rename),
so a reader never sees half a PNG. No pyplot state is used: figures are plain
``matplotlib.figure.Figure`` objects, safe in scripts, servers and threads.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kapps.utils.files import atomic_open

__all__ = ["plot_history", "plot_confusion_matrix", "plot_predictions", "save_figure"]


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 110) -> str:
    """Render ``figure`` to ``path`` as PNG, atomically."""
    FigureCanvasAgg(figure)
    with atomic_open(path, "wb") as f:
        figure.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    return os.fspath(path)


def plot_history(history: Mapping[str, Sequence[Any]], path: str | os.PathLike) -> str:
    """Loss and accuracy per epoch over both phases, with the phase boundary marked.

    ``history`` is ``FineTuneResult.history``: lists of the same length with keys
    ``phase``, ``loss``, ``accuracy`` and, with validation data, ``val_loss`` and
    ``val_accuracy``.
    """
    phases = list(history.get("phase", []))
    if not phases:
        raise ValueError("`history` has no epochs to plot (its 'phase' list is empty).")
    x = np.arange(1, len(phases) + 1)
    boundary = sum(1 for p in phases if p == 1)
    figure = Figure(figsize=(11, 4.2))
    for column, metric in enumerate(("loss", "accuracy")):
        ax = figure.add_subplot(1, 2, column + 1)
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            values = history.get(key)
            if values:
                ax.plot(x, np.asarray(values, dtype=float), style, markersize=4, label=label)
        if 0 < boundary < len(phases):
            ax.axvline(boundary + 0.5, color="gray", linestyle="--", linewidth=1.2)
            ax.axvspan(0.5, boundary + 0.5, color="tab:blue", alpha=0.05)
            ax.axvspan(boundary + 0.5, len(phases) + 0.5, color="tab:orange", alpha=0.05)
            top = ax.get_ylim()[1]
            ax.text(boundary + 0.4, top, "phase 1: head ", ha="right", va="top", fontsize=8, color="dimgray")
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
