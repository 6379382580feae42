"""``kapps.fine_tune``: transfer learning in two phases, on any tf.distribute strategy.

Phase 1 trains a new head (global pooling, dropout, Dense) on a frozen base; phase 2
unfreezes the top of the base at a lower, decaying learning rate. The base is called
with ``training=False`` and its BatchNormalization layers stay frozen in both phases,
so their statistics never move (the classic fine-tuning trap). Early stopping watches
the validation loss and the best weights of each phase are kept.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from kapps.errors import KappsError
from kapps.finetune import checkpoint as ckpt_lib
from kapps.finetune import data as data_lib
from kapps.finetune import strategy as strategy_lib
from kapps.finetune.evaluate import EvaluationReport, predict
from kapps.finetune.result import FineTuneResult
from kapps.imagenet import MODES, preprocess_input
from kapps.registry import get_spec, model_function

__all__ = ["fine_tune", "TrainingDivergedError", "ImagePreprocessing", "build_classifier", "set_trainable"]


class TrainingDivergedError(KappsError, FloatingPointError):
    """The training loss became NaN or infinite; the run was stopped."""


@keras.saving.register_keras_serializable(package="kapps")
class ImagePreprocessing(keras.layers.Layer):
    """A model family's ``preprocess_input`` as a layer: RGB pixels in [0, 255] in, model input out.

    ``mode`` is one of :data:`kapps.imagenet.MODES` (``"tf"``, ``"caffe"``, ``"torch"``, ``"none"``).

    >>> import numpy as np
    >>> ImagePreprocessing("tf")(np.array([[[[0.0, 127.5, 255.0]]]], "float32")).numpy().tolist()
    [[[[-1.0, 0.0, 1.0]]]]
    """

    def __init__(self, mode: str = "tf", function: Callable | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if function is None and mode not in MODES:
            raise ValueError(f"`preprocessing` must be one of {', '.join(map(repr, MODES))} or a function. "
                             f"Received: preprocessing={mode!r}")
        self.mode = mode
        self.function = function

    def call(self, inputs: Any) -> Any:
        if self.function is not None:
            return self.function(inputs)
        return preprocess_input(inputs, mode=self.mode)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


# -- the model ------------------------------------------------------------------------------------


def _spec_for_model(model: keras.Model) -> Any:
    for candidate in (model.name, model.name.split("_")[0]):
        try:
            return get_spec(candidate)
        except ValueError:
            continue
    return None


def _preprocessing_mode(preprocessing: Any, spec: Any, model: Any) -> tuple[str, Callable | None]:
    if callable(preprocessing):
        return getattr(preprocessing, "__name__", "custom"), preprocessing
    if preprocessing == "auto":
        if spec is None:
            raise ValueError(
                f"`preprocessing`='auto' cannot tell which preprocessing model {getattr(model, 'name', model)!r} "
                f"expects (it is not a registered kapps model). Pass one of {', '.join(map(repr, MODES))} or a "
                "function taking RGB pixels in [0, 255]. Received: preprocessing='auto'"
            )
        return spec.preprocessing, None
    if preprocessing is None:
        return "none", None
    if preprocessing not in MODES:
        raise ValueError(f"`preprocessing` must be 'auto', None, one of {', '.join(map(repr, MODES))} or a function. "
                         f"Received: preprocessing={preprocessing!r}")
    return preprocessing, None


def _check_base(base: Any) -> keras.Model:
    if not isinstance(base, keras.Model):
        raise ValueError(f"`model` must be a registry name (see kapps.list_models()), a keras.Model or a function "
                         f"returning one. Received: model={base!r}")
    last = base.layers[-1] if base.layers else None
    activation = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Dense) and activation is keras.activations.softmax:
        raise ValueError(
            f"`model` must be a base without its classifier (for kapps models: include_top=False); "
            f"model {base.name!r} ends with a softmax Dense layer {last.name!r} of {last.units} units. "
            "fine_tune adds a head of its own for your classes."
        )
    return base


def _variables_in_scope(model: keras.Model, strategy: tf.distribute.Strategy) -> bool:
    return all(strategy.extended.variable_created_in_scope(getattr(v, "value", v)) for v in model.variables)


def _base_in_scope(model: keras.Model, strategy: tf.distribute.Strategy) -> keras.Model:
    """``model`` itself when its variables belong to ``strategy``, else a clone made inside its scope."""
    if strategy is tf.distribute.get_strategy() or _variables_in_scope(model, strategy):
        return model
    try:
        clone = keras.models.clone_model(model)
    except Exception as e:  # noqa: BLE001 - any failure means: build it in the scope yourself
        raise ValueError(
            f"`model` {model.name!r} was built outside the scope of `strategy` and could not be cloned into it "
            f"({type(e).__name__}: {e}). Build it inside `with strategy.scope():`, or pass a registry name or a "
            "function that returns the model."
        ) from None
    clone.set_weights(model.get_weights())
    return clone


def build_classifier(
    base: keras.Model,
    num_classes: int,
    *,
    image_size: tuple[int, int],
    preprocessing: str,
    preprocessing_function: Callable | None = None,
    dropout: float = 0.2,
    seed: int = 0,
) -> keras.Model:
    """``image -> preprocessing -> base(training=False) -> pooling -> dropout -> Dense(softmax, float32)``."""
    inputs = keras.Input((image_size[0], image_size[1], 3), name="image")
    x = ImagePreprocessing(preprocessing, preprocessing_function, name="preprocessing")(inputs)
    x = base(x, training=False)  # BatchNorm in inference mode in both phases
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif len(x.shape) != 2:
        raise ValueError(f"`model` must output feature maps (batch, h, w, c) or features (batch, c). "
                         f"Received: output shape {tuple(x.shape)}")
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
    )(x)
    return keras.Model(inputs, outputs, name=f"{base.name}_finetuned")


def _weighted_layers(base: keras.Model) -> list[keras.layers.Layer]:
    from kapps.utils.layers import leaf_layers

    return list(leaf_layers(base))


def _cut_index(layers: Sequence[keras.layers.Layer], base: keras.Model, unfreeze: Any) -> int:
    """Index in ``layers`` of the first layer phase 2 trains."""
    n = len(layers)
    if isinstance(unfreeze, bool) or unfreeze is None:
        raise ValueError(
            "`unfreeze` must be a fraction in (0, 1], a number of layers, 'all', or a layer or block name. "
            f"Received: unfreeze={unfreeze!r}"
        )
    if unfreeze == "all":
        return 0
    if isinstance(unfreeze, float):
        if not 0.0 < unfreeze <= 1.0:
            raise ValueError(f"`unfreeze` as a fraction must be in (0, 1]. Received: unfreeze={unfreeze!r}")
        return n - max(1, math.ceil(unfreeze * n))
    if isinstance(unfreeze, int):
        if not 1 <= unfreeze <= n:
            raise ValueError(f"`unfreeze` as a number of layers (with weights) must be in [1, {n}]. "
                             f"Received: unfreeze={unfreeze!r}")
        return n - unfreeze
    if isinstance(unfreeze, str):
        names = [layer.name for layer in layers]
        if unfreeze in names:
            return names.index(unfreeze)
        # a block of the Sequential builder (or any nested layer): from its first weighted sub-layer
        for top in base.layers:
            if top.name == unfreeze:
                inner = {id(x) for x in top._flatten_layers(include_self=True, recursive=True)}
                for i, layer in enumerate(layers):
                    if id(layer) in inner:
                        return i
        for i, name in enumerate(names):  # a block prefix, e.g. "block_13" or "conv5"
            if name.startswith(unfreeze + "_") or name.startswith(unfreeze):
                return i
        raise ValueError(
            f"`unfreeze` names no layer or block of {base.name!r}. Received: unfreeze={unfreeze!r}; layer names "
            f"with weights run from {names[0]!r} to {names[-1]!r} (e.g. {names[len(names) * 2 // 3]!r})."
        )
    raise ValueError(
        "`unfreeze` must be a fraction in (0, 1], a number of layers, 'all', or a layer or block name. "
        f"Received: unfreeze={unfreeze!r}"
    )


def set_trainable(base: keras.Model, phase: int, unfreeze: Any = 0.3) -> str:
    """Freeze ``base`` for phase 1; for phase 2 unfreeze its top (BatchNorm layers stay frozen).

    Returns a description of what trains, e.g. ``"top 30% of the base: 31 layers from 'block_13_expand'"``.
    """
    if phase == 1:
        base.trainable = False
        return "head only"
    layers = _weighted_layers(base)
    if not layers:
        raise ValueError(f"`model` {base.name!r} has no layers with weights to fine-tune.")
    cut = _cut_index(layers, base, unfreeze)
    base.trainable = True
    trained = 0
    for i, layer in enumerate(layers):
        batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= cut and not batch_norm
        trained += int(layer.trainable)
    if trained == 0:
        raise ValueError(f"`unfreeze`={unfreeze!r} leaves no layer to train in phase 2 (only BatchNorm layers "
                         "would be unfrozen, and they stay frozen). Unfreeze more of the base.")
    what = f"{unfreeze:.0%} of the base" if isinstance(unfreeze, float) else f"unfreeze={unfreeze!r}"
    return f"{what}: {trained} layers with weights from {layers[cut].name!r} on (BatchNorm frozen)"


def _in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(getattr(strategy.extended, "_in_multi_worker_mode", lambda: True)())


def _fit_on_multi_worker(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Let ``model.fit`` run under a multi-worker MultiWorkerMirroredStrategy (Keras 3, seen in 3.15).

    Two spots of Keras' TF trainer fail across workers: its symbolic build reduces a
    whole per-replica batch with ``strategy.reduce(..., axis=None)``, and it reduces
    each step's logs with ``strategy.reduce("MEAN", v, axis=0)``, which fails on
    scalars. Here the symbolic build uses the local replica's batch (only shapes
    matter) and the steps return their logs as vectors of one value, which that
    reduction averages over the replicas. Only this instance is changed, and only
    its training methods: the model (and its ``.keras`` file) stays a plain Functional.
    """
    from keras.src import tree  # the same helper Keras uses on its own logs

    def symbolic_build(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                batch = next(batches)
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v, batch)
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def as_vectors(step: Callable) -> Callable:
        def vector_step(data: Any) -> dict[str, Any]:
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}
        return vector_step

    model._maybe_symbolic_build = symbolic_build
    model.train_step = as_vectors(type(model).train_step.__get__(model))
    model.test_step = as_vectors(type(model).test_step.__get__(model))


# -- callbacks ------------------------------------------------------------------------------------


class _EpochClock(keras.callbacks.Callback):
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


class _NanGuard(keras.callbacks.Callback):
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


class _PhaseKeeper(keras.callbacks.Callback):
    """After each epoch: history row, early stopping, best weights, checkpoint (in that order)."""

    def __init__(self, run: "_Run", phase: int, monitor_state: dict[str, Any], clock: _EpochClock,
                 guard: _NanGuard, images_per_epoch: int):
        super().__init__()
        self.run, self.phase, self.state, self.clock, self.guard = run, phase, monitor_state, clock, guard
        self.images_per_epoch = images_per_epoch

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.guard.where is not None:
            return
        logs = {k: float(np.asarray(v)) for k, v in (logs or {}).items()}
        optimizer = self.model.optimizer
        row = {
            "phase": self.phase, "epoch": epoch + 1, "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
            "learning_rate": float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate))),
            "seconds": round(self.clock.seconds, 4), "images": self.images_per_epoch,
            "images_per_second": round(self.images_per_epoch / max(self.clock.seconds, 1e-9), 2),
        }
        if "val_loss" in logs:
            row["val_loss"], row["val_accuracy"] = logs["val_loss"], logs.get("val_accuracy")
        self.run.append_history(row)
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
        self.run.save_epoch(self.phase, epoch + 1, self.model, optimizer, state)


# -- the run --------------------------------------------------------------------------------------


def _verbosity(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    if isinstance(verbose, bool):
        return int(verbose)
    raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")


def _image_size(image_size: Any, spec: Any, base: Any) -> tuple[int, int]:
    if image_size is None:
        if isinstance(base, keras.Model):
            shape = base.input_shape[0] if isinstance(base.input_shape, list) else base.input_shape
            if shape[1] is not None and shape[2] is not None:
                return int(shape[1]), int(shape[2])
        return (spec.default_size, spec.default_size) if spec is not None else (224, 224)
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if (isinstance(image_size, (tuple, list)) and len(image_size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)):
        minimum = spec.min_size if spec is not None else 1
        if min(image_size) < minimum:
            raise ValueError(f"`image_size` must be at least {minimum} px for {spec.name}. "
                             f"Received: image_size={image_size!r}")
        return int(image_size[0]), int(image_size[1])
    raise ValueError(f"`image_size` must be an int or a (height, width) pair of positive ints. "
                     f"Received: image_size={image_size!r}")


def _check_positive(name: str, value: Any, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = isinstance(value, int)
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"`{name}` must be {kind} {'>= 0' if allow_zero else '> 0'}. Received: {name}={value!r}")


def _class_weights(class_weight: Any, source: data_lib.Source) -> np.ndarray | None:
    if class_weight is None:
        return None
    names = source.class_names
    if class_weight == "balanced":
        counts = source.label_counts().astype("float64")
        return (counts.sum() / (len(names) * np.maximum(counts, 1))).astype("float32")
    if isinstance(class_weight, Mapping):
        weights = np.ones(len(names), "float32")
        for key, value in class_weight.items():
            index = names.index(key) if key in names else key
            if not isinstance(index, (int, np.integer)) or not 0 <= index < len(names):
                raise ValueError(f"`class_weight` keys must be class names {names} or indices 0..{len(names) - 1}. "
                                 f"Received: key {key!r}")
            weights[int(index)] = float(value)
        return weights
    raise ValueError(f"`class_weight` must be None, 'balanced' or a dict {{class name or index: weight}}. "
                     f"Received: class_weight={class_weight!r}")


def _describe_model_argument(model: Any, weights: Any) -> dict[str, Any]:
    if isinstance(model, str):
        identity: Any = model
    elif isinstance(model, keras.Model):
        identity = f"{model.name}:{model.count_params()}"
    else:
        identity = getattr(model, "__qualname__", repr(model))
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        weights = f"{os.path.abspath(weights)}:{os.path.getsize(weights)}"
    return {"model": identity, "weights": weights}


class _Run:
    """State shared by the phases of one fine_tune call."""

    def __init__(self, ckpt: ckpt_lib.Checkpointer, monitor: str, patience: int | None, state: dict[str, Any]):
        self.ckpt, self.monitor, self.patience = ckpt, monitor, patience
        self.history: dict[str, list] = state.get("history") or {}
        self.phase_epochs = list(state.get("phase_epochs") or [0, 0])
        self.best_epochs = list(state.get("best_epochs") or [0, 0])
        self.stopped = list(state.get("stopped_early") or [False, False])
        self.seed = state["seed"]
        self.best_arrays: list[np.ndarray] | None = None

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
        monitor = _fresh_monitor() if done or best is None else {**_fresh_monitor(), "best": best, "best_file": name}
        epoch = self.phase_epochs[phase - 1] if done else 0
        self.ckpt.save_state({**self.base_state(), "phase": phase if done else phase + 1, "epoch": epoch,
                              "done": done, "checkpoint": name, "has_optimizer": False, "monitor": monitor})


def _fresh_monitor() -> dict[str, Any]:
    return {"best": None, "best_epoch": 0, "wait": 0, "stopped": False, "best_file": None}


def _say(verbose: int, chief: bool, text: str) -> None:
    if verbose and chief:
        print(text, flush=True)


def fine_tune(
    model: Any,
    train: Any,
    validation: Any = None,
    *,
    weights: Any = "imagenet",
    model_options: Mapping[str, Any] | None = None,
    image_size: Any = None,
    crop_to_aspect_ratio: bool = True,
    batch_size: int = 32,
    epochs: int = 5,
    fine_tune_epochs: int = 5,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
    unfreeze: Any = 0.3,
    dropout: float = 0.2,
    augmentation: Any = False,
    class_weight: Any = None,
    validation_split: Any = "auto",
    patience: int | None = 3,
    preprocessing: Any = "auto",
    class_names: Sequence[str] | None = None,
    strategy: Any = "auto",
    mixed_precision: Any = "auto",
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    deterministic: bool = False,
    on_bad_file: str = "skip",
    top_k: int = 5,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: Any = "auto",
) -> FineTuneResult:
    """Fine-tune an ImageNet model on your own labelled images, in two phases.

    Args:
        model: a registry name (``"mobilenet_v2"``), a Keras model without its
            classifier (used as the base), or a function returning one (called in the
            strategy's scope).
        train: a folder of class sub-folders (``train/ants/*.jpg``, ...) or a
            ``tf.data.Dataset`` of ``(image, label)``: RGB pixels in [0, 255] of any size,
            integer or one-hot labels, batched or not.
        validation: the same kinds; when None, ``validation_split`` of each class of a
            training folder is held out (``"auto"``: 0.2; a number for datasets too).
        weights: ``"imagenet"``, None (random) or the path of a weights file, for a
            registry ``model``. ``model_options`` go to its constructor (e.g. ``{"alpha": 0.5}``).
        image_size: input size (int or (h, w)); default: the family's default size.
        crop_to_aspect_ratio: cut each image's centre to the input's aspect ratio before
            resizing (True, no distortion) or stretch it (False).
        batch_size: per-replica batch; the global batch is ``batch_size * replicas``.
        epochs, learning_rate: phase 1 (head only, Adam, constant rate).
        fine_tune_epochs, fine_tune_learning_rate: phase 2 (default rate: 10x lower,
            cosine decay over the phase); 0 epochs skips the phase.
        unfreeze: what phase 2 trains: a fraction of the base's weighted layers from the
            top (default 0.3), a number of layers, ``"all"``, or a layer or block name
            (``"block_13"``) from which on everything trains. BatchNorm stays frozen.
        dropout: dropout rate before the classifier.
        augmentation: False, True (flip, rotation, zoom, contrast as Keras preprocessing
            layers, run in the input pipeline) or a list of Keras preprocessing layers.
        class_weight: None, ``"balanced"`` or ``{class name or index: weight}``.
        patience: early stopping on the validation loss (training loss without
            validation) after this many epochs without improvement; None: never. The best
            epoch's weights are kept in each phase.
        preprocessing: ``"auto"`` (the registry family's), a mode of
            :data:`kapps.imagenet.MODES`, None, or a function; it runs inside the model.
        class_names: names of the classes of a dataset (default: ``dataset.class_names``
            or "0", "1", ...).
        strategy: ``"auto"``, a strategy name or any ``tf.distribute.Strategy`` (see
            :func:`kapps.finetune.strategy.resolve_strategy`).
        mixed_precision: ``"auto"`` (mixed_float16 on GPU, mixed_bfloat16 on TPU, float32
            on CPU), None/False, True, or a Keras policy name. The classifier stays float32.
        checkpoint_dir: where to keep crash-safe checkpoints; rerunning with the same
            arguments resumes from the last completed epoch (a finished run is reloaded).
        seed: seed of the data order, augmentation, head initialization and Keras'
            global RNG (default: derived from the other arguments, so that reruns and
            the workers of a multi-worker run agree).
        deterministic: also call ``tf.config.experimental.enable_op_determinism()``.
        on_bad_file: ``"skip"`` (warn, listing the paths) or ``"error"``.
        top_k: the k of the top-k accuracy in the report.
        callbacks: more Keras callbacks for ``fit`` in both phases (TensorBoard, timing, ...).
        verbose: ``"auto"``/1 (Keras progress bars), 2 (a line per epoch) or 0.

    Returns:
        A :class:`~kapps.finetune.result.FineTuneResult` (model, class names,
        history of both phases, evaluation report; ``.save(dir)`` writes it all).

    Raises:
        TrainingDivergedError: the loss became NaN or infinite.
        CheckpointMismatchError: ``checkpoint_dir`` holds a run with other arguments.

    Example (a tiny random model on random images, to show the call)::

        import numpy as np, tensorflow as tf, kapps
        images = np.random.randint(0, 255, (16, 32, 32, 3), "uint8")
        labels = np.arange(16) % 2
        result = kapps.fine_tune(
            "mobilenet_v2", tf.data.Dataset.from_tensor_slices((images, labels)),
            weights=None, model_options={"alpha": 0.35}, image_size=32, batch_size=4,
            epochs=1, fine_tune_epochs=1, validation_split=0.25, verbose=0)
        print(result.report.table())
    """
    started = time.perf_counter()
    verbose = _verbosity(verbose)
    for name, value in (("batch_size", batch_size), ("epochs", epochs), ("fine_tune_epochs", fine_tune_epochs)):
        _check_positive(name, value, integer=True, allow_zero=name != "batch_size")
    if epochs + fine_tune_epochs == 0:
        raise ValueError("`epochs` and `fine_tune_epochs` are both 0: there is nothing to train. "
                         "Received: epochs=0, fine_tune_epochs=0")
    _check_positive("learning_rate", learning_rate)
    fine_tune_learning_rate = learning_rate / 10 if fine_tune_learning_rate is None else fine_tune_learning_rate
    _check_positive("fine_tune_learning_rate", fine_tune_learning_rate)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a number in [0, 1). Received: dropout={dropout!r}")
    if patience is not None:
        _check_positive("patience", patience, integer=True)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"`seed` must be None or an integer >= 0. Received: seed={seed!r}")
    if on_bad_file not in ("skip", "error"):
        raise ValueError(f"`on_bad_file` must be 'skip' or 'error'. Received: on_bad_file={on_bad_file!r}")
    augment_layers = data_lib.make_augmentation(augmentation)

    # -- hardware
    strategy = strategy_lib.resolve_strategy(strategy)
    policy = strategy_lib.resolve_precision(mixed_precision, strategy)
    chief = strategy_lib.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = batch_size * replicas
    tpu = strategy_lib._is_tpu(strategy)

    # -- model family, preprocessing, input size
    if isinstance(model, str):
        spec = get_spec(model)
    elif isinstance(model, keras.Model):
        spec = _spec_for_model(_check_base(model))
    else:
        spec = None
        if not callable(model):
            _check_base(model)
    if not isinstance(model, str) and (model_options or weights not in ("imagenet", None)):
        raise ValueError("`weights` and `model_options` apply to a registry name only; a model you pass keeps its "
                         f"own weights. Received: model={getattr(model, 'name', model)!r}, weights={weights!r}, "
                         f"model_options={model_options!r}")
    if image_size is None and not isinstance(model, (str, keras.Model)):
        raise ValueError("`image_size` must be given when `model` is a function (its input size is unknown until "
                         "it is called in the strategy's scope). Received: image_size=None")
    size = _image_size(image_size, spec, model)
    mode, function = _preprocessing_mode(preprocessing, spec, model)

    # -- data
    train_source, val_source, notes, skipped = _prepare_data(
        train, validation, validation_split, size, class_names, on_bad_file, seed, bool(crop_to_aspect_ratio))
    num_classes = len(train_source.class_names)
    steps = train_source.size // global_batch
    if steps == 0:
        raise ValueError(
            f"`batch_size` must leave at least one full batch: {train_source.size} training images, global batch "
            f"{global_batch} ({batch_size} per replica x {replicas} replicas). Received: batch_size={batch_size}"
        )
    sample_weights = _class_weights(class_weight, train_source)

    # -- checkpoint state
    arguments = {
        **_describe_model_argument(model, weights), "model_options": dict(model_options or {}),
        "image_size": list(size), "global_batch": global_batch, "epochs": epochs,
        "fine_tune_epochs": fine_tune_epochs, "learning_rate": learning_rate,
        "fine_tune_learning_rate": fine_tune_learning_rate, "unfreeze": unfreeze, "dropout": dropout,
        "augmentation": [layer.get_config() for layer in augment_layers],
        "class_weight": None if sample_weights is None else sample_weights.tolist(),
        "patience": patience, "preprocessing": mode, "precision": policy, "seed": seed,
        "classes": train_source.class_names, "train_data": train_source.fingerprint(),
        "validation_data": None if val_source is None else val_source.fingerprint(),
    }
    ckpt = ckpt_lib.Checkpointer(checkpoint_dir, arguments, writer=chief)
    saved = ckpt.load_state()
    state = dict(saved or {})
    resumed_from = (state["phase"], state["epoch"]) if saved else None
    if seed is None:  # the same on every worker and every rerun of these arguments
        seed = int(state.get("seed", int(ckpt.fingerprint[:8], 16) % (2**31 - 1)))
    state.setdefault("seed", seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)

    # -- build in the strategy's scope
    with strategy.scope(), strategy_lib.precision_policy(policy):
        if isinstance(model, str):
            base = model_function(model)(input_shape=(size[0], size[1], 3), include_top=False, weights=weights,
                                         **dict(model_options or {}))
        elif isinstance(model, keras.Model):
            base = _base_in_scope(_check_base(model), strategy)
        else:
            base = _check_base(model())
        classifier = build_classifier(base, num_classes, image_size=size, preprocessing=mode,
                                      preprocessing_function=function, dropout=dropout, seed=seed)
    if fine_tune_epochs:
        _cut_index(_weighted_layers(base), base, unfreeze)  # refuse a bad `unfreeze` before any training
    if _in_multi_worker_mode(strategy):
        _fit_on_multi_worker(classifier, strategy)

    monitor = "val_loss" if val_source is not None else "loss"
    run = _Run(ckpt, monitor, patience, state)
    val_data = None if val_source is None else data_lib.evaluation_dataset(val_source, global_batch, pad_to_batch=tpu)
    _say(verbose, chief, f"fine_tune: {train_source.size} training images, "
         f"{val_source.size if val_source else 0} validation images, {num_classes} classes "
         f"{train_source.class_names}; {strategy_lib.describe(strategy)}, global batch {global_batch}, {policy}")
    for note in notes:
        _say(verbose, chief, "  note: " + note)
    if resumed_from:
        what = "a finished run" if state.get("done") else f"phase {resumed_from[0]}, {resumed_from[1]} epoch(s) done"
        _say(verbose, chief, f"Resuming from {ckpt.directory}: {what}")

    start_phase = state.get("phase", 1)
    unfrozen = "not run"
    carried_best: float | None = None  # phase 2 keeps phase 1's weights unless it does better
    plan = ((1, epochs, learning_rate), (2, fine_tune_epochs, fine_tune_learning_rate))
    for phase, phase_epochs, rate in plan:
        if phase == 2 and phase_epochs:
            unfrozen = set_trainable(base, 2, unfreeze)
        if state.get("done") or phase < start_phase or phase_epochs == 0:
            continue
        resuming = saved is not None and phase == start_phase
        first = state["epoch"] if resuming else 0
        if phase == 1:
            set_trainable(base, 1)
        with strategy.scope(), strategy_lib.precision_policy(policy):
            # phase 2: a linear warm-up over its first epoch (Adam's first steps are as large as the rate
            # itself, whatever the gradient), then a cosine decay over the other epochs
            schedule = rate if phase == 1 else keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps=max(1, steps * (phase_epochs - 1)), alpha=0.01, warmup_target=rate,
                warmup_steps=steps)
            optimizer = keras.optimizers.Adam(schedule)
            accuracy = ["accuracy"]
            classifier.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                               metrics=None if tpu else accuracy, weighted_metrics=accuracy if tpu else None)
            optimizer = classifier.optimizer  # LossScaleOptimizer under mixed_float16
            optimizer.build(classifier.trainable_variables)
        monitor_state = dict(state.get("monitor") or _fresh_monitor()) if resuming else _fresh_monitor()
        if resuming:
            model_arrays, optimizer_arrays = ckpt.load_arrays(state["checkpoint"])
            ckpt_lib.assign_arrays(classifier.variables, model_arrays, "model", state["checkpoint"])
            if optimizer_arrays is not None:
                ckpt_lib.assign_arrays(optimizer.variables, optimizer_arrays, "optimizer", state["checkpoint"])
            run.best_arrays = ckpt.load_arrays(monitor_state["best_file"])[0] if monitor_state.get("best_file") else None
        elif carried_best is not None:
            monitor_state["best"] = carried_best
            run.best_arrays = ckpt_lib.variables_to_arrays(classifier.variables)
        else:
            run.best_arrays = None
        _say(verbose, chief, f"Phase {phase}/2: " + ("training the new head on the frozen base" if phase == 1
             else f"fine-tuning {unfrozen}") + f", learning rate {rate:g}" + (" (cosine decay)" if phase == 2 else ""))
        if first < phase_epochs and not monitor_state["stopped"]:
            _fit_phase(classifier, strategy, train_source, val_data, run, phase, first, phase_epochs, steps,
                       global_batch, seed, augment_layers, sample_weights, monitor_state, verbose if chief else 0,
                       list(callbacks))
        if run.best_arrays is not None:
            ckpt_lib.assign_arrays(classifier.variables, run.best_arrays, "model", "best weights")
        run.best_epochs[phase - 1] = monitor_state["best_epoch"]
        run.stopped[phase - 1] = bool(monitor_state["stopped"])
        kept = (f"the weights of epoch {monitor_state['best_epoch']}" if monitor_state["best_epoch"]
                else "the weights phase 1 ended with (no better validation)")
        if monitor_state["stopped"] or (phase == 2 and not monitor_state["best_epoch"]):
            _say(verbose, chief, f"Phase {phase}: " + ("early stopping after epoch "
                 f"{run.phase_epochs[phase - 1]}; " if monitor_state["stopped"] else "") + f"keeping {kept} "
                 f"({monitor} {monitor_state['best']:.4f})")
        carried_best = monitor_state["best"]
        last_phase = phase == 2 or fine_tune_epochs == 0
        run.save_boundary(phase, classifier, done=last_phase, best=carried_best)
    if state.get("done"):
        model_arrays, _ = ckpt.load_arrays(state["checkpoint"])
        ckpt_lib.assign_arrays(classifier.variables, model_arrays, "model", state["checkpoint"])

    report_source = val_source if val_source is not None else train_source
    labels, scores = predict(classifier, data_lib.evaluation_dataset(report_source, global_batch))
    report = EvaluationReport.from_predictions(
        labels, scores, train_source.class_names, top_k=top_k,
        dataset="validation" if val_source is not None else "training data (no validation data)")
    _say(verbose, chief, report.table())
    return FineTuneResult(
        model=classifier, class_names=list(train_source.class_names), history=run.history, report=report,
        image_size=size, preprocessing=mode, strategy=strategy_lib.describe(strategy), precision=policy,
        global_batch_size=global_batch, seed=seed, phase_epochs=tuple(run.phase_epochs),
        best_epochs=tuple(run.best_epochs), stopped_early=tuple(run.stopped), unfrozen=unfrozen, notes=notes,
        skipped_files=skipped, resumed_from=resumed_from, checkpoint_dir=ckpt.directory,
        wall_time=time.perf_counter() - started, chief=chief, _evaluation_source=report_source,
    )


def _fit_phase(classifier: keras.Model, strategy: tf.distribute.Strategy, source: data_lib.Source,
               val_data: tf.data.Dataset | None, run: _Run, phase: int, first: int, last: int, steps: int,
               global_batch: int, seed: int, augment_layers: list, sample_weights: np.ndarray | None,
               monitor_state: dict[str, Any], verbose: int, callbacks: list) -> None:
    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        shard, per_replica = strategy_lib.input_shard(context, global_batch)
        return data_lib.training_dataset(
            source, seed=seed, phase=phase, first_epoch=first, last_epoch=last, global_batch=global_batch,
            per_replica_batch=per_replica, shard=shard, augmentation=augment_layers, sample_weights=sample_weights)

    train_data = strategy.distribute_datasets_from_function(dataset_fn)
    clock, guard = _EpochClock(), _NanGuard()
    keeper = _PhaseKeeper(run, phase, monitor_state, clock, guard, steps * global_batch)
    classifier.fit(train_data, epochs=last, initial_epoch=first, steps_per_epoch=steps, validation_data=val_data,
                   callbacks=[clock, guard, *callbacks, keeper], verbose=verbose, shuffle=False)
    if guard.where is not None:
        epoch, batch = guard.where
        if not run.ckpt.enabled:
            kept = "no checkpoint (pass checkpoint_dir to keep one)"
        elif epoch:
            kept = f"the checkpoint of epoch {epoch} of phase {phase} in {run.ckpt.directory}"
        elif phase == 2:
            kept = f"the checkpoint of the end of phase 1 in {run.ckpt.directory}"
        else:
            kept = "no checkpoint yet (no epoch was completed)"
        raise TrainingDivergedError(
            f"fine_tune stopped: the training loss became {guard.value} in phase {phase}, epoch {epoch + 1}, "
            f"batch {batch + 1}. Lower the learning rate (learning_rate/fine_tune_learning_rate), check the images "
            f"and labels for bad values, or train in float32 (mixed_precision=None). Kept: {kept}."
        )


def _prepare_data(train: Any, validation: Any, validation_split: Any, size: tuple[int, int],
                  class_names: Sequence[str] | None, on_bad_file: str, seed: int | None, crop: bool
                  ) -> tuple[data_lib.Source, data_lib.Source | None, list[str], list[tuple[str, str]]]:
    notes: list[str] = []
    skipped: list[tuple[str, str]] = []

    def load(data: Any, argument: str, names: Sequence[str] | None) -> data_lib.Source:
        if isinstance(data, (str, os.PathLike)):
            folder = data_lib.scan_folder(data, argument=argument, on_bad_file=on_bad_file, class_names=names)
            skipped.extend(folder.skipped)
            source = data_lib.from_folder(folder, size, crop)
        elif isinstance(data, tf.data.Dataset):
            source = data_lib.from_dataset(data, image_size=size, class_names=names or class_names, argument=argument,
                                           crop=crop)
        else:
            raise ValueError(f"`{argument}` must be a directory of class sub-folders or a tf.data.Dataset of "
                             f"(image, label). Received: {argument}={data!r}")
        notes.extend(source.notes)
        if skipped and isinstance(data, (str, os.PathLike)):
            mine = [p for p, _ in source.folder.skipped]
            if mine:
                notes.append(f"`{argument}`: {len(mine)} unusable file(s) skipped: " + ", ".join(mine[:5])
                             + (" ..." if len(mine) > 5 else ""))
        return source

    train_source = load(train, "train", class_names if isinstance(train, (str, os.PathLike)) else None)
    if validation is not None:
        if validation_split not in ("auto", None):
            raise ValueError("`validation_split` must be 'auto' or None when `validation` is given (pass one of "
                             f"them). Received: validation_split={validation_split!r}")
        val_source = load(validation, "validation", train_source.class_names)
        return train_source, val_source, notes, skipped
    if validation_split is None or (validation_split == "auto" and not train_source.is_files):
        return train_source, None, notes, skipped
    fraction = 0.2 if validation_split == "auto" else validation_split
    if not isinstance(fraction, float) or not 0.0 < fraction < 1.0:
        raise ValueError(f"`validation_split` must be 'auto', None or a number between 0 and 1 (exclusive). "
                         f"Received: validation_split={validation_split!r}")
    split_seed = 0 if seed is None else seed
    if train_source.is_files:
        train_part, val_part = data_lib.split_folder(train_source, fraction, split_seed)
        notes.append(f"validation: {val_part.size} images ({fraction:.0%} of each class of `train`, seed "
                     f"{split_seed}) held out from training")
        return train_part, val_part, notes, skipped
    n_val = max(1, int(round(train_source.size * fraction)))
    if n_val >= train_source.size:
        raise ValueError(f"`validation_split`={fraction} leaves no training data ({train_source.size} images).")
    full = train_source.dataset
    labels = train_source.labels
    val_part = data_lib.Source(train_source.class_names, n_val, size, labels=labels[:n_val], crop=crop,
                               dataset=full.take(n_val))
    train_part = data_lib.Source(train_source.class_names, train_source.size - n_val, size, labels=labels[n_val:], crop=crop,
                                 dataset=full.skip(n_val))
    notes.append(f"validation: the first {n_val} elements of the `train` dataset ({fraction:.0%}) are held out "
                 "(the dataset must iterate in a fixed order)")
    return train_part, val_part, notes, skipped
