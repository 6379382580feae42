"""What ``fine_tune`` returns: the trained model, its classes, the history of both phases, the report."""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, ClassVar

import keras
import numpy as np

from kapps.finetune.evaluate import EvaluationReport
from kapps.utils.files import atomic_path, write_json_atomic, write_text_atomic

__all__ = ["FineTuneResult", "save_model_atomic"]


@dataclasses.dataclass
class FineTuneResult:
    """The outcome of :func:`kapps.fine_tune`.

    Attributes:
        model: the trained classifier; it takes RGB images in [0, 255] of ``image_size``
            (the family's preprocessing is inside) and outputs class probabilities.
        class_names: the class of each output, in order.
        history: per epoch over both phases: ``phase``, ``epoch`` (within its phase),
            ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (with validation data),
            ``learning_rate``, ``seconds`` (training part of the epoch) and ``images_per_second``.
        report: the :class:`~kapps.finetune.evaluate.EvaluationReport` of the final model
            on the validation data (on the training data when there is none).
        phase_epochs: epochs run in phase 1 and in phase 2 (early stopping may cut them).
        best_epochs: the epoch of each phase whose weights were kept (1-based); 0 for phase 2
            means no phase-2 epoch beat phase 1, whose weights were kept.
        stopped_early: per phase, whether early stopping ended it.
        notes: what was noticed about the data (skipped files, converted images, splits).
        skipped_files: ``(path, reason)`` of every file left out.
        resumed_from: ``(phase, completed epochs)`` when the run continued a checkpoint.
        chief: whether this process is the one that writes outputs (multi-worker runs).
    """

    model: keras.Model
    class_names: list[str]
    history: dict[str, list]
    report: EvaluationReport | None
    image_size: tuple[int, int]
    preprocessing: str
    strategy: str
    precision: str
    global_batch_size: int
    seed: int
    phase_epochs: tuple[int, int]
    best_epochs: tuple[int, int]
    stopped_early: tuple[bool, bool]
    unfrozen: str
    notes: list[str]
    skipped_files: list[tuple[str, str]]
    resumed_from: tuple[int, int] | None
    checkpoint_dir: str | None
    wall_time: float
    chief: bool = True
    _evaluation_source: Any = dataclasses.field(default=None, repr=False)
    #: What phase 1 trains, in :meth:`summary`.
    phase_one: ClassVar[str] = "head"

    def train_images_per_second(self, skip_first: bool = True) -> float:
        """Mean training throughput over the epochs run, leaving out the first epoch of each
        phase (graph tracing) when there are others."""
        rows = list(zip(self.history.get("phase", []), self.history.get("epoch", []),
                        self.history.get("images", []), self.history.get("seconds", [])))
        if skip_first and any(epoch > 1 for _, epoch, _, _ in rows):
            rows = [r for r in rows if r[1] > 1]
        images = sum(r[2] for r in rows)
        seconds = sum(r[3] for r in rows)
        return images / seconds if seconds else float("nan")

    def summary(self) -> str:
        lines = [
            f"fine_tune: {len(self.class_names)} classes {self.class_names}, image size {self.image_size}, "
            f"global batch {self.global_batch_size}, {self.strategy}, {self.precision}",
            f"phase 1 ({self.phase_one}): {self.phase_epochs[0]} epoch(s), best epoch {self.best_epochs[0]}"
            + (" (stopped early)" if self.stopped_early[0] else ""),
            f"phase 2 ({self.unfrozen}): {self.phase_epochs[1]} epoch(s), "
            + (f"best epoch {self.best_epochs[1]}" if self.best_epochs[1] else "phase 1's weights kept")
            + (" (stopped early)" if self.stopped_early[1] else ""),
        ]
        if self.report is not None:
            lines.append(self.report_line())
        lines.append(f"wall time {self.wall_time:.1f} s")
        return "\n".join(lines)

    def report_line(self) -> str:
        """The report's headline figures, one line."""
        report = self.report
        return f"{report.dataset or 'evaluation'}: accuracy {report.accuracy:.4f} on {report.num_samples} images"

    def plot(self, out_dir: str | os.PathLike, *, samples: int = 16) -> dict[str, str]:
        """Write ``training_curves.png``, ``confusion_matrix.png`` and ``predictions.png`` to ``out_dir``."""
        from kapps.finetune import data as data_lib
        from kapps.finetune import plots

        out_dir = os.fspath(out_dir)
        written = {"training_curves": plots.plot_history(self.history, os.path.join(out_dir, "training_curves.png"))}
        if self.report is not None:
            written["confusion_matrix"] = plots.plot_confusion_matrix(
                self.report, os.path.join(out_dir, "confusion_matrix.png"))
        if self._evaluation_source is not None and samples:
            images, labels = data_lib.take_images(self._evaluation_source, samples)
            probabilities = np.asarray(self.model(images, training=False), dtype="float32")
            written["predictions"] = plots.plot_predictions(
                images, labels, probabilities, self.class_names, os.path.join(out_dir, "predictions.png"))
        return written

    def save(self, out_dir: str | os.PathLike, *, samples: int = 16) -> dict[str, str]:
        """Write the model (``model.keras``), ``report.json``, ``report.txt``, ``history.json``,
        ``class_names.json`` and the plots to ``out_dir``; returns ``{what: path}``."""
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        path = functools.partial(os.path.join, out_dir)
        written = {"model": save_model_atomic(self.model, path("model.keras")),
                   "history": path("history.json"), "class_names": path("class_names.json")}
        write_json_atomic(written["history"], self.history)
        write_json_atomic(written["class_names"], self.class_names, indent=None)
        if self.report is not None:
            written["report"] = self.report.save_json(path("report.json"))
            written["report_text"] = path("report.txt")
            write_text_atomic(written["report_text"], self.summary() + "\n\n" + self.report.table() + "\n")
        written.update(self.plot(out_dir, samples=samples))
        return written


def save_model_atomic(model: keras.Model, path: str | os.PathLike) -> str:
    """``model.save`` to a temporary ``.keras`` file in the same folder, then a rename.

    A model that cannot be serialized (e.g. a preprocessing function not registered with
    Keras) is refused here, with the layer's message, and ``path`` is left untouched.
    """
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return os.fspath(path)
