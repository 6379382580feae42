"""``FineTuneConfig``: the arguments of :func:`kapps.fine_tune`, checked once and frozen.

Every check of an argument that needs no data and no model is written here, with the
messages fine_tune has always given; checks that need the model family, the strategy or
the data live next to what they check (:mod:`~kapps.finetune.classifier`,
:mod:`~kapps.finetune.strategy`, :mod:`~kapps.finetune.data`).

>>> config = FineTuneConfig(model="mobilenet_v2", train="photos/", learning_rate=1e-3)
>>> config.fine_tune_learning_rate, config.verbose
(0.0001, 1)
>>> FineTuneConfig(model="mobilenet_v2", train="photos/", dropout=1.5)
Traceback (most recent call last):
ValueError: `dropout` must be a number in [0, 1). Received: dropout=1.5
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import keras

from kapps.errors import KappsError
from kapps.finetune import data as data_lib

__all__ = ["FineTuneConfig", "BackendError", "require_tensorflow_backend", "check_positive"]


class BackendError(KappsError, RuntimeError):
    """fine_tune runs on the TensorFlow backend of Keras only (tf.distribute, tf.data)."""


def require_tensorflow_backend() -> None:
    """Refuse at once to train on another Keras backend, saying how to switch."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(
            f"fine_tune needs the TensorFlow backend of Keras (it trains with tf.distribute and tf.data); the "
            f"active backend is {backend!r}. Set KERAS_BACKEND=tensorflow in the environment before Python "
            "starts (or \"backend\": \"tensorflow\" in ~/.keras/keras.json)."
        )


def check_positive(name: str, value: Any, integer: bool = False, allow_zero: bool = False) -> None:
    """``value`` must be a number (an int with ``integer``) > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = isinstance(value, int)
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"`{name}` must be {kind} {'>= 0' if allow_zero else '> 0'}. Received: {name}={value!r}")


def _verbosity(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}")


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """fine_tune's arguments (same names and defaults), validated; see :func:`kapps.fine_tune`.

    Normalized on creation: ``verbose`` becomes 0, 1 or 2, ``fine_tune_learning_rate``
    defaults to ``learning_rate / 10``, and ``augment_layers`` holds the augmentation layers.
    """

    model: Any
    train: Any
    validation: Any = None
    weights: Any = "imagenet"
    model_options: Mapping[str, Any] | None = None
    image_size: Any = None
    crop_to_aspect_ratio: bool = True
    batch_size: int = 32
    epochs: int = 5
    fine_tune_epochs: int = 5
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float | None = None
    unfreeze: Any = 0.3
    dropout: float = 0.2
    augmentation: Any = False
    class_weight: Any = None
    validation_split: Any = "auto"
    patience: int | None = 3
    preprocessing: Any = "auto"
    class_names: Sequence[str] | None = None
    strategy: Any = "auto"
    mixed_precision: Any = "auto"
    checkpoint_dir: str | os.PathLike | None = None
    seed: int | None = None
    deterministic: bool = False
    on_bad_file: str = "skip"
    top_k: int = 5
    callbacks: Sequence[keras.callbacks.Callback] = ()
    verbose: Any = "auto"
    augment_layers: tuple = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_tensorflow_backend()
        self._set("verbose", _verbosity(self.verbose))
        self._check_schedule()
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise ValueError(f"`dropout` must be a number in [0, 1). Received: dropout={self.dropout!r}")
        if self.patience is not None:
            check_positive("patience", self.patience, integer=True)
        seed = self.seed
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"`seed` must be None or an integer >= 0. Received: seed={seed!r}")
        if self.on_bad_file not in ("skip", "error"):
            raise ValueError(f"`on_bad_file` must be 'skip' or 'error'. Received: on_bad_file={self.on_bad_file!r}")
        self._set("augment_layers", tuple(data_lib.make_augmentation(self.augmentation)))
        self._set("callbacks", tuple(self.callbacks))
        self._check_model_arguments()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # normalizing a frozen dataclass while it is made

    def _check_schedule(self) -> None:
        for name in ("batch_size", "epochs", "fine_tune_epochs"):
            check_positive(name, getattr(self, name), integer=True, allow_zero=name != "batch_size")
        if self.epochs + self.fine_tune_epochs == 0:
            raise ValueError("`epochs` and `fine_tune_epochs` are both 0: there is nothing to train. "
                             "Received: epochs=0, fine_tune_epochs=0")
        check_positive("learning_rate", self.learning_rate)
        if self.fine_tune_learning_rate is None:
            self._set("fine_tune_learning_rate", self.learning_rate / 10)
        check_positive("fine_tune_learning_rate", self.fine_tune_learning_rate)

    def _check_model_arguments(self) -> None:
        model = self.model
        if not isinstance(model, (str, keras.Model)) and not callable(model):
            raise ValueError(f"`model` must be a registry name (see kapps.list_models()), a keras.Model or a "
                             f"function returning one. Received: model={model!r}")
        if not isinstance(model, str) and (self.model_options or self.weights not in ("imagenet", None)):
            raise ValueError(
                "`weights` and `model_options` apply to a registry name only; a model you pass keeps its own "
                f"weights. Received: model={getattr(model, 'name', model)!r}, weights={self.weights!r}, "
                f"model_options={self.model_options!r}")
        if self.image_size is None and not isinstance(model, (str, keras.Model)):
            raise ValueError("`image_size` must be given when `model` is a function (its input size is unknown "
                             "until it is called in the strategy's scope). Received: image_size=None")

    @property
    def registry_model(self) -> bool:
        """Whether ``model`` is a registry name (``weights`` and ``model_options`` then apply)."""
        return isinstance(self.model, str)

    def phases(self) -> tuple[tuple[int, int, float], tuple[int, int, float]]:
        """``(phase, epochs, learning rate)`` of phase 1 (head) and phase 2 (fine-tuning)."""
        return ((1, self.epochs, self.learning_rate), (2, self.fine_tune_epochs, self.fine_tune_learning_rate))
