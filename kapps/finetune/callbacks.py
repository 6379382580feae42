"""The Keras callbacks of a fine-tuning phase: epoch clock, NaN guard and the phase keeper.

The keeper does, after each epoch and in this order: the history row, early stopping on
the monitored loss, the best weights, the checkpoint.

>>> fresh_monitor()
{'best': None, 'best_epoch': 0, 'wait': 0, 'stopped': False, 'best_file': None}
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from kapps.errors import KappsError
from kapps.finetune import checkpoint as ckpt_lib

if TYPE_CHECKING:
    from kapps.finetune.loop import RunState

__all__ = ["TrainingDivergedError", "EpochClock", "NanGuard", "PhaseKeeper", "fresh_monitor"]


class TrainingDivergedError(KappsError, FloatingPointError):
    """The training loss became NaN or infinite; the run was stopped."""


def fresh_monitor() -> dict[str, Any]:
    """The early-stopping state of a phase that has not run an epoch yet."""
    return {"best": None, "best_epoch": 0, "wait": 0, "stopped": False, "best_file": None}


class EpochClock(keras.callbacks.Callback):
    """Seconds spent on the training batches of each epoch: from its start to the start of its
    validation (or its end). No batch hook, so Keras keeps dispatching batch callbacks asynchronously."""

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.start = time.perf_counter()
        self.end: float | None = None

    def on_test_begin(self, logs: Any = None) -> None:
        if self.end is None:
            self.end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.end is None:
            self.end = time.perf_counter()

    @property
    def seconds(self) -> float:
        return (self.end or time.perf_counter()) - self.start


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    Safe for Keras' asynchronous dispatch of batch callbacks (it only reads the logs and
    sets flags), so it does not make every training step wait for its logs.
    """

    async_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.where: tuple[int, int] | None = None
        self.value = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and self.where is None:
            value = float(np.asarray(loss))
            if not math.isfinite(value):
                self.where, self.value = (self.epoch, batch), value
                self.model.stop_training = True


class PhaseKeeper(keras.callbacks.Callback):
    """After each epoch: history row, early stopping, best weights, checkpoint (in that order)."""

    def __init__(self, run: "RunState", phase: int, monitor_state: dict[str, Any], clock: EpochClock,
                 guard: NanGuard, images_per_epoch: int, logged: tuple[str, ...] = ()):
        super().__init__()
        self.run, self.phase, self.state, self.clock, self.guard = run, phase, monitor_state, clock, guard
        self.images_per_epoch = images_per_epoch
        self.logged = logged  # more metrics for the history rows (and their val_ twins)

    def _row(self, epoch: int, logs: dict[str, float]) -> dict[str, Any]:
        rate = self.model.optimizer.learning_rate
        row = {
            "phase": self.phase, "epoch": epoch + 1, "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
            "learning_rate": float(np.asarray(keras.ops.convert_to_numpy(rate))),
            "seconds": round(self.clock.seconds, 4), "images": self.images_per_epoch,
            "images_per_second": round(self.images_per_epoch / max(self.clock.seconds, 1e-9), 2),
        }
        if "val_loss" in logs:
            row["val_loss"], row["val_accuracy"] = logs["val_loss"], logs.get("val_accuracy")
        for name in self.logged:
            row[name] = logs.get(name)
            if "val_loss" in logs:
                row[f"val_{name}"] = logs.get(f"val_{name}")
        return row

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.guard.where is not None:
            return
        logs = {k: float(np.asarray(v)) for k, v in (logs or {}).items()}
        self.run.append_history(self._row(epoch, logs))
        value = logs.get(self.run.monitor)
        if value is None or not math.isfinite(value):
            raise TrainingDivergedError(
                f"fine_tune stopped: the monitored {self.run.monitor} is {value} after phase {self.phase}, "
                f"epoch {epoch + 1}. Lower the learning rate or check the data."
            )
        state = self.state
        if state["best"] is None or value < state["best"]:
            state.update(best=value, best_epoch=epoch + 1, wait=0)
            self.run.best_arrays = ckpt_lib.variables_to_arrays(self.model.variables)
            state["best_file"] = f"best-p{self.phase}-e{epoch + 1:03d}.npz" if self.run.ckpt.enabled else None
            self.run.ckpt.save_arrays(state["best_file"] or "", self.run.best_arrays)
        else:
            state["wait"] += 1
            if self.run.patience is not None and state["wait"] >= self.run.patience:
                state["stopped"] = True
                self.model.stop_training = True
        self.run.save_epoch(self.phase, epoch + 1, self.model, self.model.optimizer, state)
