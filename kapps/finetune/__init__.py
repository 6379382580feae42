"""Transfer learning with one call: ``kapps.fine_tune`` and ``kapps.evaluate``.

>>> import kapps
>>> callable(kapps.fine_tune) and callable(kapps.evaluate)
True

Modules, one job each: :mod:`~kapps.finetune.train` (``fine_tune``: assembles the parts),
:mod:`~kapps.finetune.config` (the arguments, checked once), :mod:`~kapps.finetune.strategy`
(tf.distribute and mixed precision), :mod:`~kapps.finetune.classifier` (base and head),
:mod:`~kapps.blocks.preprocessing` (``ImagePreprocessing``), :mod:`~kapps.finetune.freezing`
(what each phase trains), :mod:`~kapps.finetune.data` (folders, datasets, bad-file scan,
validation split, pipelines), :mod:`~kapps.finetune.loop` (the phases),
:mod:`~kapps.finetune.callbacks` (epoch clock, NaN guard, phase keeper),
:mod:`~kapps.finetune.checkpoint` (crash-safe resume), :mod:`~kapps.finetune.evaluate`
(metrics), :mod:`~kapps.finetune.plots` (PNG figures), :mod:`~kapps.finetune.result`; for segmentation
models, :mod:`~kapps.finetune.segmentation_data` (images with masks),
:mod:`~kapps.finetune.segmentation_model` (encoder, loss, metrics) and
:mod:`~kapps.finetune.segmentation_report` (IoU, Dice, overlays).
"""

from __future__ import annotations

from kapps.finetune.callbacks import TrainingDivergedError
from kapps.finetune.checkpoint import CheckpointMismatchError
from kapps.finetune.classifier import build_classifier
from kapps.errors import BackendError
from kapps.finetune.config import FineTuneConfig
from kapps.finetune.data import BadImageError, BadImageWarning
from kapps.finetune.evaluate import EvaluationReport, evaluate
from kapps.finetune.freezing import set_trainable
from kapps.blocks.preprocessing import ImagePreprocessing
from kapps.finetune.result import FineTuneResult
from kapps.finetune.segmentation_data import BadMaskError
from kapps.finetune.segmentation_report import SegmentationReport, SegmentationResult
from kapps.finetune.strategy import resolve_precision, resolve_strategy
from kapps.finetune.train import fine_tune

__all__ = [
    "fine_tune", "evaluate", "FineTuneResult", "EvaluationReport", "BadImageError", "BadImageWarning",
    "TrainingDivergedError", "CheckpointMismatchError", "BackendError", "FineTuneConfig", "ImagePreprocessing",
    "build_classifier", "set_trainable", "resolve_strategy", "resolve_precision", "SegmentationResult",
    "SegmentationReport", "BadMaskError",
]
