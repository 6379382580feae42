"""The two phases of a run: compile, resume or carry over the best weights, fit, keep the best.

Phase 1 trains the head at a constant rate; phase 2 trains the unfrozen top of the base
with a linear warm-up over its first epoch and a cosine decay after it. Each phase keeps
its best epoch's weights; phase 2 keeps phase 1's weights unless it does better.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

import keras
import numpy as np
import tensorflow as tf

from kapps.finetune import checkpoint as ckpt_lib
from kapps.finetune import data as data_lib
from kapps.finetune import strategy as strategy_lib
from kapps.finetune.callbacks import EpochClock, NanGuard, PhaseKeeper, TrainingDivergedError, fresh_monitor
from kapps.finetune.freezing import set_trainable

if TYPE_CHECKING:
    from kapps.finetune.config import FineTuneConfig
    from kapps.finetune.strategy import Hardware

__all__ = ["Objective", "CLASSIFICATION", "RunState", "Training", "Phase", "run_phases"]


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a run's model learns: its loss and metrics (made by these functions in the strategy's
    scope), the metrics its history keeps besides loss and accuracy, and what phase 1 trains."""

    loss: Callable[[], Any]
    metrics: Callable[[], list]
    logged: tuple[str, ...] = ()
    phase_one: str = "training the new head on the frozen base"


#: A classifier's: sparse categorical cross-entropy and accuracy.
CLASSIFICATION = Objective(loss=lambda: "sparse_categorical_crossentropy", metrics=lambda: ["accuracy"])


class RunState:
    """State shared by the phases of one fine_tune call: history, per-phase outcomes, checkpoints."""

    def __init__(self, ckpt: ckpt_lib.Checkpointer, monitor: str, patience: int | None, state: dict[str, Any]):
        self.ckpt, self.monitor, self.patience = ckpt, monitor, patience
        self.history: dict[str, list] = state.get("history") or {}
        self.phase_epochs = list(state.get("phase_epochs") or [0, 0])
        self.best_epochs = list(state.get("best_epochs") or [0, 0])
        self.stopped = list(state.get("stopped_early") or [False, False])
        self.seed = state["seed"]
        self.best_arrays: list[np.ndarray] | None = None
        self.carried_best: float | None = None  # the best monitored value phase 2 must beat

    def append_history(self, row: dict[str, Any]) -> None:
        n = len(self.history.get("phase", []))
        for key in set(self.history) | set(row):
            self.history.setdefault(key, [None] * n).append(row.get(key))
        self.phase_epochs[row["phase"] - 1] = row["epoch"]

    def base_state(self) -> dict[str, Any]:
        return {"seed": self.seed, "history": self.history, "phase_epochs": self.phase_epochs,
                "best_epochs": self.best_epochs, "stopped_early": self.stopped}

    def save_epoch(self, phase: int, epoch: int, model: keras.Model, optimizer: Any, monitor: dict) -> None:
        if not self.ckpt.enabled:
            return
        name = f"ckpt-p{phase}-e{epoch:03d}.npz"
        self.ckpt.save_arrays(name, ckpt_lib.variables_to_arrays(model.variables),
                              ckpt_lib.variables_to_arrays(optimizer.variables))
        self.ckpt.save_state({**self.base_state(), "phase": phase, "epoch": epoch, "done": False,
                              "checkpoint": name, "has_optimizer": True, "monitor": monitor})

    def save_boundary(self, phase: int, model: keras.Model, done: bool, best: float | None) -> None:
        """After a phase: its best weights, no optimizer, as 'phase + 1, epoch 0' (or done).

        The next phase starts from these weights and keeps them unless it beats ``best``.
        """
        if not self.ckpt.enabled:
            return
        name = "ckpt-final.npz" if done else f"ckpt-p{phase + 1}-e000.npz"
        self.ckpt.save_arrays(name, ckpt_lib.variables_to_arrays(model.variables))
        monitor = fresh_monitor() if done or best is None else {**fresh_monitor(), "best": best, "best_file": name}
        epoch = self.phase_epochs[phase - 1] if done else 0
        self.ckpt.save_state({**self.base_state(), "phase": phase if done else phase + 1, "epoch": epoch,
                              "done": done, "checkpoint": name, "has_optimizer": False, "monitor": monitor})


@dataclasses.dataclass
class Training:
    """Everything the phases of one run share."""

    config: "FineTuneConfig"
    hardware: "Hardware"
    base: keras.Model
    classifier: keras.Model
    train: data_lib.Source
    validation: tf.data.Dataset | None
    steps: int
    sample_weights: np.ndarray | None
    seed: int
    run: RunState
    state: dict[str, Any]
    resumed: bool
    objective: Objective = CLASSIFICATION

    def say(self, text: str) -> None:
        if self.config.verbose and self.hardware.chief:
            print(text, flush=True)


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase to run: its number, epochs, learning rate, and where it starts."""

    number: int
    epochs: int
    rate: float
    first: int = 0
    resuming: bool = False


def run_phases(t: Training) -> str:
    """Run (or resume, or skip when done) both phases; returns what phase 2 trained ("not run" if nothing)."""
    state = t.state
    start_phase = state.get("phase", 1)
    unfrozen = "not run"
    for number, epochs, rate in t.config.phases():
        if number == 2 and epochs:
            unfrozen = set_trainable(t.base, 2, t.config.unfreeze)
        if state.get("done") or number < start_phase or epochs == 0:
            continue
        resuming = t.resumed and number == start_phase
        phase = Phase(number, epochs, rate, state["epoch"] if resuming else 0, resuming)
        if number == 1:
            set_trainable(t.base, 1)
        _run_phase(t, phase, unfrozen)
    if state.get("done"):
        model_arrays, _ = t.run.ckpt.load_arrays(state["checkpoint"])
        ckpt_lib.assign_arrays(t.classifier.variables, model_arrays, "model", state["checkpoint"])
    return unfrozen


def _run_phase(t: Training, phase: Phase, unfrozen: str) -> None:
    optimizer = _compile(t, phase)
    monitor_state = _restore(t, phase, optimizer)
    what = t.objective.phase_one if phase.number == 1 else f"fine-tuning {unfrozen}"
    t.say(f"Phase {phase.number}/2: {what}, learning rate {phase.rate:g}"
          + (" (cosine decay)" if phase.number == 2 else ""))
    if phase.first < phase.epochs and not monitor_state["stopped"]:
        _fit(t, phase, monitor_state)
    _finish(t, phase, monitor_state)


def _compile(t: Training, phase: Phase) -> Any:
    """Compile the classifier for ``phase`` in the strategy's scope; returns its (built) optimizer."""
    with t.hardware.scope():
        # phase 2: a linear warm-up over its first epoch (Adam's first steps are as large as the rate
        # itself, whatever the gradient), then a cosine decay over the other epochs
        schedule = phase.rate if phase.number == 1 else keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, t.steps * (phase.epochs - 1)), alpha=0.01, warmup_target=phase.rate,
            warmup_steps=t.steps)
        metrics = t.objective.metrics()
        tpu = t.hardware.tpu
        t.classifier.compile(optimizer=keras.optimizers.Adam(schedule), loss=t.objective.loss(),
                             metrics=None if tpu else metrics, weighted_metrics=metrics if tpu else None)
        optimizer = t.classifier.optimizer  # LossScaleOptimizer under mixed_float16
        optimizer.build(t.classifier.trainable_variables)
    return optimizer


def _restore(t: Training, phase: Phase, optimizer: Any) -> dict[str, Any]:
    """The early-stopping state ``phase`` starts from; restores a checkpoint when resuming it."""
    run, state = t.run, t.state
    if not phase.resuming:
        monitor_state = fresh_monitor()
        if run.carried_best is not None:  # phase 2 keeps phase 1's weights unless it does better
            monitor_state["best"] = run.carried_best
            run.best_arrays = ckpt_lib.variables_to_arrays(t.classifier.variables)
        else:
            run.best_arrays = None
        return monitor_state
    monitor_state = dict(state.get("monitor") or fresh_monitor())
    model_arrays, optimizer_arrays = run.ckpt.load_arrays(state["checkpoint"])
    ckpt_lib.assign_arrays(t.classifier.variables, model_arrays, "model", state["checkpoint"])
    if optimizer_arrays is not None:
        ckpt_lib.assign_arrays(optimizer.variables, optimizer_arrays, "optimizer", state["checkpoint"])
    best_file = monitor_state.get("best_file")
    run.best_arrays = run.ckpt.load_arrays(best_file)[0] if best_file else None
    return monitor_state


def _fit(t: Training, phase: Phase, monitor_state: dict[str, Any]) -> None:
    hardware, config = t.hardware, t.config

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        shard, per_replica = strategy_lib.input_shard(context, hardware.global_batch)
        return data_lib.training_dataset(
            t.train, seed=t.seed, phase=phase.number, first_epoch=phase.first, last_epoch=phase.epochs,
            global_batch=hardware.global_batch, per_replica_batch=per_replica, shard=shard,
            augmentation=config.augment_layers, sample_weights=t.sample_weights)

    train_data = hardware.strategy.distribute_datasets_from_function(dataset_fn)
    clock, guard = EpochClock(), NanGuard()
    keeper = PhaseKeeper(t.run, phase.number, monitor_state, clock, guard, t.steps * hardware.global_batch,
                         logged=t.objective.logged)
    t.classifier.fit(train_data, epochs=phase.epochs, initial_epoch=phase.first, steps_per_epoch=t.steps,
                     validation_data=t.validation, callbacks=[clock, guard, *config.callbacks, keeper],
                     verbose=config.verbose if hardware.chief else 0, shuffle=False)
    if guard.where is not None:
        raise _diverged(t.run.ckpt, phase.number, guard)


def _diverged(ckpt: ckpt_lib.Checkpointer, phase: int, guard: NanGuard) -> TrainingDivergedError:
    epoch, batch = guard.where or (0, 0)
    if not ckpt.enabled:
        kept = "no checkpoint (pass checkpoint_dir to keep one)"
    elif epoch:
        kept = f"the checkpoint of epoch {epoch} of phase {phase} in {ckpt.directory}"
    elif phase == 2:
        kept = f"the checkpoint of the end of phase 1 in {ckpt.directory}"
    else:
        kept = "no checkpoint yet (no epoch was completed)"
    return TrainingDivergedError(
        f"fine_tune stopped: the training loss became {guard.value} in phase {phase}, epoch {epoch + 1}, "
        f"batch {batch + 1}. Lower the learning rate (learning_rate/fine_tune_learning_rate), check the images "
        f"and labels for bad values, or train in float32 (mixed_precision=None). Kept: {kept}."
    )


def _finish(t: Training, phase: Phase, monitor_state: dict[str, Any]) -> None:
    """Keep the best weights of ``phase``, record its outcome, write the boundary checkpoint."""
    run, number = t.run, phase.number
    if run.best_arrays is not None:
        ckpt_lib.assign_arrays(t.classifier.variables, run.best_arrays, "model", "best weights")
    run.best_epochs[number - 1] = monitor_state["best_epoch"]
    run.stopped[number - 1] = bool(monitor_state["stopped"])
    kept = (f"the weights of epoch {monitor_state['best_epoch']}" if monitor_state["best_epoch"]
            else "the weights phase 1 ended with (no better validation)")
    if monitor_state["stopped"] or (number == 2 and not monitor_state["best_epoch"]):
        stopped = f"early stopping after epoch {run.phase_epochs[number - 1]}; " if monitor_state["stopped"] else ""
        t.say(f"Phase {number}: {stopped}keeping {kept} ({run.monitor} {monitor_state['best']:.4f})")
    run.carried_best = monitor_state["best"]
    done = number == 2 or t.config.fine_tune_epochs == 0
    run.save_boundary(number, t.classifier, done=done, best=run.carried_best)
