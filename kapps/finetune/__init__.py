"""Transfer learning with one call: ``kapps.fine_tune`` and ``kapps.evaluate``.

>>> import kapps
>>> callable(kapps.fine_tune) and callable(kapps.evaluate)
True

Modules: :mod:`~kapps.finetune.data` (folders, datasets, bad-file scan, pipelines),
:mod:`~kapps.finetune.strategy` (tf.distribute and mixed precision),
:mod:`~kapps.finetune.train` (the two phases), :mod:`~kapps.finetune.checkpoint`
(crash-safe resume), :mod:`~kapps.finetune.evaluate` (metrics),
:mod:`~kapps.finetune.plots` (PNG figures), :mod:`~kapps.finetune.result`.
"""

from __future__ import annotations

from kapps.finetune.checkpoint import CheckpointMismatchError
from kapps.finetune.data import BadImageError, BadImageWarning
from kapps.finetune.evaluate import EvaluationReport, evaluate
from kapps.finetune.result import FineTuneResult
from kapps.finetune.strategy import resolve_precision, resolve_strategy
from kapps.finetune.train import TrainingDivergedError, fine_tune

__all__ = [
    "fine_tune", "evaluate", "FineTuneResult", "EvaluationReport", "BadImageError", "BadImageWarning",
    "TrainingDivergedError", "CheckpointMismatchError", "resolve_strategy", "resolve_precision",
]
