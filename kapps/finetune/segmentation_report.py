"""What a segmentation run reports: per-class IoU and Dice, pixel accuracy, the pixel confusion matrix.

Every figure comes from the confusion matrix of the pixels (rows: true class, columns:
predicted class, the argmax of the probabilities) at the model's input size, masks resized
with the nearest pixel. A class that is neither in the masks nor predicted has no IoU or
Dice (None); the means run over the others, as Keras' ``MeanIoU`` does.

>>> import numpy as np
>>> report = SegmentationReport.from_confusion(np.array([[3, 1], [0, 4]]), ["ground", "horse"], num_samples=1)
>>> horse = report.per_class["horse"]
>>> round(report.accuracy, 3), round(horse["iou"], 3), round(horse["dice"], 3)
(0.875, 0.8, 0.889)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar, Sequence

import keras
import numpy as np
import tensorflow as tf

from kapps.finetune.result import FineTuneResult
from kapps.utils.files import write_json_atomic

__all__ = ["SegmentationReport", "confusion_matrix", "SegmentationResult"]


def _ratio(top: float, bottom: float) -> float | None:
    return float(top / bottom) if bottom > 0 else None


def _mean(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else float("nan")


@dataclasses.dataclass
class SegmentationReport:
    """Segmentation metrics of one model on one dataset.

    ``per_class[name]`` holds ``iou``, ``dice``, ``precision``, ``recall`` (None where
    undefined), ``pixels`` (true) and ``predicted_pixels``; ``accuracy`` is the pixel
    accuracy; ``confusion_matrix[i, j]`` counts pixels of true class i predicted as class j.
    """

    class_names: list[str]
    num_samples: int
    num_pixels: int
    accuracy: float
    mean_iou: float
    mean_dice: float
    per_class: dict[str, dict[str, Any]]
    confusion_matrix: np.ndarray
    dataset: str = ""

    @classmethod
    def from_confusion(cls, matrix: Any, class_names: Sequence[str], *, num_samples: int,
                       dataset: str = "") -> "SegmentationReport":
        """The report of a ``(classes, classes)`` pixel confusion matrix."""
        matrix = np.asarray(matrix, dtype="int64")
        n = len(class_names)
        if matrix.shape != (n, n):
            raise ValueError(f"`matrix` must have shape ({n}, {n}), one row and column per class. "
                             f"Received: matrix of shape {matrix.shape}")
        total = int(matrix.sum())
        if total == 0:
            raise ValueError("`data` is empty: there is nothing to evaluate.")
        true_pos = np.diag(matrix).astype("float64")
        pixels, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
        per_class = {}
        for i, name in enumerate(class_names):
            tp, fn, fp = true_pos[i], pixels[i] - true_pos[i], predicted[i] - true_pos[i]
            per_class[name] = {"iou": _ratio(tp, tp + fp + fn), "dice": _ratio(2 * tp, 2 * tp + fp + fn),
                               "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
                               "pixels": int(pixels[i]), "predicted_pixels": int(predicted[i])}
        return cls(list(class_names), int(num_samples), total, float(true_pos.sum() / total),
                   _mean([m["iou"] for m in per_class.values()]), _mean([m["dice"] for m in per_class.values()]),
                   per_class, matrix, dataset)

    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready Python types."""
        return {"dataset": self.dataset, "num_samples": self.num_samples, "num_pixels": self.num_pixels,
                "class_names": self.class_names, "pixel_accuracy": self.accuracy, "mean_iou": self.mean_iou,
                "mean_dice": self.mean_dice, "per_class": self.per_class,
                "confusion_matrix": self.confusion_matrix.tolist()}

    def save_json(self, path: str | os.PathLike) -> str:
        """Write :meth:`to_dict` to ``path`` (atomically: a temporary file, then a rename)."""
        write_json_atomic(path, self.to_dict(), indent=2)
        return os.fspath(path)

    def table(self) -> str:
        """A plain-text report: overall figures, per-class table, confusion matrix (pixels)."""
        width = max(12, *(len(n) for n in self.class_names)) + 2

        def cell(value: float | None) -> str:
            return f"{'-':>10}" if value is None else f"{value:>10.4f}"

        lines = [f"Segmentation{' on ' + self.dataset if self.dataset else ''}: {self.num_samples} images, "
                 f"{self.num_pixels} pixels, {len(self.class_names)} classes",
                 f"pixel accuracy {self.accuracy:.4f}    mean IoU {self.mean_iou:.4f}    "
                 f"mean Dice {self.mean_dice:.4f}",
                 "", f"{'class':<{width}}{'IoU':>10}{'Dice':>10}{'precision':>10}{'recall':>10}{'pixels':>12}"]
        for name, m in self.per_class.items():
            lines.append(f"{name:<{width}}{cell(m['iou'])}{cell(m['dice'])}{cell(m['precision'])}{cell(m['recall'])}"
                         f"{m['pixels']:>12d}")
        lines += ["", "confusion matrix (pixels; rows: true class, columns: predicted class)"]
        digits = max(9, len(str(int(self.confusion_matrix.max()))) + 1, *(len(n) + 1 for n in self.class_names))
        lines.append(" " * width + "".join(f"{n:>{digits}}" for n in self.class_names))
        for name, row in zip(self.class_names, self.confusion_matrix):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>{digits}d}" for v in row))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot_confusion_matrix(self, path: str | os.PathLike) -> str:
        """Save the pixel confusion matrix as a PNG (see :mod:`kapps.finetune.plots`)."""
        from kapps.finetune.plots import plot_confusion_matrix

        return plot_confusion_matrix(self, path)


def confusion_matrix(model: keras.Model, dataset: tf.data.Dataset, classes: int) -> tuple[np.ndarray, int]:
    """``(pixel confusion matrix, images)`` of ``model`` on a batched ``(image, mask[, weight])`` dataset.

    Runs outside any distribution strategy; rows of weight 0 (padding) are left out.
    """

    @tf.function(reduce_retracing=True)
    def step(images: tf.Tensor) -> tf.Tensor:
        return tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)

    matrix, images = np.zeros((classes, classes), "int64"), 0
    for batch in dataset:
        predicted, true = step(batch[0]).numpy(), batch[1].numpy().astype("int64")
        if len(batch) == 3:
            keep = batch[2].numpy().reshape(len(true), -1).max(axis=1) > 0
            predicted, true = predicted[keep], true[keep]
        matrix += np.bincount((true * classes + predicted).ravel(), minlength=classes * classes).reshape(
            classes, classes)
        images += len(true)
    return matrix, images


@dataclasses.dataclass
class SegmentationResult(FineTuneResult):
    """What :func:`kapps.fine_tune` returns for a segmentation model: a
    :class:`~kapps.finetune.result.FineTuneResult` whose ``model`` outputs per-pixel class
    probabilities at its input's size, whose ``report`` is a :class:`SegmentationReport` and whose
    plots are the training curves (loss, pixel accuracy, mean IoU), the pixel confusion matrix and
    an overlay grid (``masks.png``: image, true mask, predicted mask)."""

    report: SegmentationReport | None  # type: ignore[assignment]
    phase_one: ClassVar[str] = "decoder"

    def report_line(self) -> str:
        report = self.report
        return (f"{report.dataset or 'evaluation'}: mean IoU {report.mean_iou:.4f}, pixel accuracy "
                f"{report.accuracy:.4f} on {report.num_samples} images")

    def plot(self, out_dir: str | os.PathLike, *, samples: int = 8) -> dict[str, str]:
        """Write ``training_curves.png``, ``confusion_matrix.png`` and ``masks.png`` to ``out_dir``."""
        from kapps.finetune import plots
        from kapps.finetune.segmentation_data import take_pairs

        out_dir = os.fspath(out_dir)
        written = {"training_curves": plots.plot_history(self.history, os.path.join(out_dir, "training_curves.png"),
                                                         metrics=("loss", "accuracy", "mean_iou"),
                                                         phase_one=self.phase_one)}
        if self.report is not None:
            written["confusion_matrix"] = plots.plot_confusion_matrix(
                self.report, os.path.join(out_dir, "confusion_matrix.png"))
        if self._evaluation_source is not None and samples:
            images, masks = take_pairs(self._evaluation_source, samples)
            predicted = np.argmax(np.asarray(self.model(images, training=False)), axis=-1)
            written["masks"] = plots.plot_masks(images, masks, predicted, self.class_names,
                                                os.path.join(out_dir, "masks.png"))
        return written
