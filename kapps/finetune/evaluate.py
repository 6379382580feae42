"""``kapps.evaluate``: accuracy, top-k accuracy, per-class precision/recall/F1, confusion matrix.

>>> import numpy as np
>>> report = EvaluationReport.from_predictions(
...     np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]), ["ants", "bees"])
>>> round(report.accuracy, 4), report.confusion_matrix.tolist()
(0.6667, [[1, 0], [1, 1]])
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from kapps.utils.files import write_json_atomic

__all__ = ["EvaluationReport", "evaluate", "predict"]


@dataclasses.dataclass
class EvaluationReport:
    """Classification metrics of one model on one dataset.

    ``per_class[name]`` holds ``precision``, ``recall``, ``f1`` and ``support``;
    ``confusion_matrix[i, j]`` counts images of true class i predicted as class j.
    ``y_true``/``y_pred``/``probabilities`` keep the raw predictions (not in the JSON).
    """

    class_names: list[str]
    num_samples: int
    accuracy: float
    top_k: int
    top_k_accuracy: float
    per_class: dict[str, dict[str, float]]
    macro: dict[str, float]
    weighted: dict[str, float]
    confusion_matrix: np.ndarray
    y_true: np.ndarray = dataclasses.field(repr=False)
    y_pred: np.ndarray = dataclasses.field(repr=False)
    probabilities: np.ndarray = dataclasses.field(repr=False)
    dataset: str = ""

    @classmethod
    def from_predictions(
        cls, y_true: Any, probabilities: Any, class_names: Sequence[str], *, top_k: int = 5, dataset: str = ""
    ) -> "EvaluationReport":
        """Metrics from integer labels and per-class scores (probabilities or logits)."""
        y_true = np.asarray(y_true).astype("int64").reshape(-1)
        scores = np.asarray(probabilities, dtype="float64")
        n_classes = len(class_names)
        if scores.ndim != 2 or scores.shape != (len(y_true), n_classes):
            raise ValueError(
                f"`probabilities` must have shape (samples, classes) = ({len(y_true)}, {n_classes}). "
                f"Received: probabilities of shape {scores.shape}"
            )
        if len(y_true) == 0:
            raise ValueError("`data` is empty: there is nothing to evaluate.")
        k = max(1, min(int(top_k), n_classes))
        y_pred = scores.argmax(axis=1)
        ranked = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
        top_k_accuracy = float(np.mean(np.any(ranked == y_true[:, None], axis=1)))
        matrix = np.zeros((n_classes, n_classes), dtype="int64")
        np.add.at(matrix, (y_true, y_pred), 1)
        true_pos = np.diag(matrix).astype("float64")
        support = matrix.sum(axis=1).astype("float64")
        predicted = matrix.sum(axis=0).astype("float64")
        precision = np.divide(true_pos, predicted, out=np.zeros(n_classes), where=predicted > 0)
        recall = np.divide(true_pos, support, out=np.zeros(n_classes), where=support > 0)
        denominator = precision + recall
        f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n_classes), where=denominator > 0)
        per_class = {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(class_names)
        }
        weights = support / support.sum()
        return cls(
            class_names=list(class_names), num_samples=int(len(y_true)),
            accuracy=float(np.mean(y_pred == y_true)), top_k=k, top_k_accuracy=top_k_accuracy,
            per_class=per_class,
            macro={"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
            weighted={"precision": float(weights @ precision), "recall": float(weights @ recall),
                      "f1": float(weights @ f1)},
            confusion_matrix=matrix, y_true=y_true, y_pred=y_pred, probabilities=scores, dataset=dataset,
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything but the raw predictions, as JSON-ready Python types."""
        return {
            "dataset": self.dataset, "num_samples": self.num_samples, "class_names": self.class_names,
            "accuracy": self.accuracy, "top_k": self.top_k, f"top_{self.top_k}_accuracy": self.top_k_accuracy,
            "per_class": self.per_class, "macro_avg": self.macro, "weighted_avg": self.weighted,
            "confusion_matrix": self.confusion_matrix.tolist(),
        }

    def save_json(self, path: str | os.PathLike) -> str:
        """Write :meth:`to_dict` to ``path`` (atomically: a temporary file, then a rename)."""
        write_json_atomic(path, self.to_dict(), indent=2)
        return os.fspath(path)

    def table(self) -> str:
        """A plain-text report: overall figures, per-class table, confusion matrix."""
        width = max(12, *(len(n) for n in self.class_names)) + 2
        lines = [
            f"Evaluation{' on ' + self.dataset if self.dataset else ''}: {self.num_samples} images, "
            f"{len(self.class_names)} classes",
            f"accuracy {self.accuracy:.4f}    top-{self.top_k} accuracy {self.top_k_accuracy:.4f}",
            "",
            f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
        ]
        for name, m in self.per_class.items():
            lines.append(f"{name:<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>10d}")
        for label, m in (("macro avg", self.macro), ("weighted avg", self.weighted)):
            lines.append(f"{label:<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}"
                         f"{self.num_samples:>10d}")
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
        cell = max(7, *(len(n) for n in self.class_names)) + 1
        lines.append(" " * width + "".join(f"{n:>{cell}}" for n in self.class_names))
        for name, row in zip(self.class_names, self.confusion_matrix):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell}d}" for v in row))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot_confusion_matrix(self, path: str | os.PathLike) -> str:
        """Save the confusion matrix as a PNG (see :mod:`kapps.finetune.plots`)."""
        from kapps.finetune.plots import plot_confusion_matrix

        return plot_confusion_matrix(self, path)


def predict(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, scores)`` of every element of a batched ``(image, label[, weight])`` dataset.

    Runs outside any distribution strategy on this process, so every worker of a
    multi-worker run gets the predictions for the whole dataset; rows of weight 0
    (padding) are dropped.
    """

    @tf.function(reduce_retracing=True)
    def step(images: tf.Tensor) -> tf.Tensor:
        return tf.cast(model(images, training=False), tf.float32)

    labels, scores = [], []
    for batch in dataset:
        out = step(batch[0]).numpy()
        y = batch[1].numpy()
        if y.ndim == 2:
            y = y.argmax(axis=1)
        if len(batch) == 3:
            keep = batch[2].numpy() > 0
            out, y = out[keep], y[keep]
        labels.append(y)
        scores.append(out)
    if not labels:
        raise ValueError("`data` is empty: there is nothing to evaluate.")
    return np.concatenate(labels), np.concatenate(scores)


def evaluate(
    model: Any,
    data: Any,
    class_names: Sequence[str] | None = None,
    *,
    top_k: int = 5,
    batch_size: int = 32,
    crop_to_aspect_ratio: bool = True,
    on_bad_file: str = "skip",
    verbose: int = 0,
) -> EvaluationReport:
    """Evaluate a classifier on labelled images.

    ``model`` is a Keras model taking RGB images in [0, 255] (as ``fine_tune`` makes
    them) or a :class:`~kapps.finetune.result.FineTuneResult`. ``data`` is a folder of
    class sub-folders, a ``tf.data.Dataset`` of ``(image, label)`` (batched or not),
    or a tuple ``(images, labels)`` of arrays. ``top_k`` is capped at the number of
    classes. Images of a folder are fitted to the model's input size as ``fine_tune``
    does (``crop_to_aspect_ratio``: center crop, else stretch).

    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")])
    >>> x, y = np.random.rand(6, 8, 8, 3).astype("float32") * 255, np.array([0, 1, 2, 0, 1, 2])
    >>> evaluate(model, (x, y), ["a", "b", "c"], top_k=2).num_samples
    6
    """
    from kapps.finetune import data as data_lib

    if hasattr(model, "model") and hasattr(model, "class_names") and not isinstance(model, keras.Model):
        class_names = class_names or model.class_names
        model = model.model
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model or a FineTuneResult. Received: model={model!r}")
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    image_size = tuple(shape[1:3]) if shape[1] is not None else None
    name = ""
    if isinstance(data, (str, os.PathLike)):
        folder = data_lib.scan_folder(data, argument="data", on_bad_file=on_bad_file, class_names=class_names)
        if image_size is None:
            raise ValueError("`model` has no fixed input size; evaluate a folder with a model of fixed input shape.")
        source = data_lib.from_folder(folder, image_size, crop_to_aspect_ratio)
        class_names = source.class_names
        dataset = data_lib.evaluation_dataset(source, batch_size)
        name = os.fspath(data)
    elif isinstance(data, tf.data.Dataset):
        dataset = data
        if len(data.element_spec[0].shape) == 3:
            dataset = data.batch(batch_size)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        dataset = tf.data.Dataset.from_tensor_slices((np.asarray(data[0]), np.asarray(data[1]))).batch(batch_size)
    else:
        raise ValueError(
            "`data` must be a folder of class sub-folders, a tf.data.Dataset of (image, label) or a tuple "
            f"(images, labels). Received: data={data!r}"
        )
    labels, scores = predict(model, dataset)
    if class_names is None:
        class_names = getattr(data, "class_names", None) or [str(i) for i in range(scores.shape[1])]
    if len(class_names) != scores.shape[1]:
        raise ValueError(
            f"`class_names` must have one name per model output ({scores.shape[1]}). "
            f"Received: class_names={list(class_names)}"
        )
    report = EvaluationReport.from_predictions(labels, scores, list(class_names), top_k=top_k, dataset=name)
    if verbose:
        print(report.table())
    return report
