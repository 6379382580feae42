"""The model fine_tune trains: the base (registry name, model or function) under a new head.

``image -> ImagePreprocessing -> base(training=False) -> pooling -> dropout -> Dense(softmax, float32)``.

>>> import keras
>>> base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")], name="tiny")
>>> model = build_classifier(base, 3, image_size=(8, 8), preprocessing="tf")
>>> model.name, model.output_shape
('tiny_finetuned', (None, 3))
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

import keras
import tensorflow as tf

from kapps.blocks.preprocessing import ImagePreprocessing
from kapps.imagenet import MODES
from kapps.registry import get_spec, model_function
from kapps.utils.layers import refresh_statistics

if TYPE_CHECKING:
    from kapps.finetune.config import FineTuneConfig
    from kapps.finetune.strategy import Hardware

__all__ = ["Family", "build_classifier", "build_base", "check_base", "base_in_scope", "resolve_image_size",
           "resolve_preprocessing"]


def spec_for_model(model: keras.Model) -> Any:
    """The registry spec a model was built from (by its name), or None."""
    for candidate in (model.name, model.name.split("_")[0]):
        try:
            return get_spec(candidate)
        except ValueError:
            continue
    return None


def check_base(base: Any) -> keras.Model:
    """``base`` itself when it is a Keras model without a softmax classifier."""
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


def resolve_preprocessing(preprocessing: Any, spec: Any, model: Any) -> tuple[str, Callable | None]:
    """``(mode name, function or None)`` for fine_tune's ``preprocessing`` argument."""
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


def _is_size(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in value))


def resolve_image_size(image_size: Any, spec: Any, base: Any) -> tuple[int, int]:
    """``(height, width)``: ``image_size``, else the base's fixed input size, else the family's default."""
    if image_size is None:
        if isinstance(base, keras.Model):
            shape = base.input_shape[0] if isinstance(base.input_shape, list) else base.input_shape
            if shape[1] is not None and shape[2] is not None:
                return int(shape[1]), int(shape[2])
        return (spec.default_size, spec.default_size) if spec is not None else (224, 224)
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if not _is_size(image_size):
        raise ValueError(f"`image_size` must be an int or a (height, width) pair of positive ints. "
                         f"Received: image_size={image_size!r}")
    minimum = spec.min_size if spec is not None else 1
    if min(image_size) < minimum:
        raise ValueError(f"`image_size` must be at least {minimum} px for {spec.name}. "
                         f"Received: image_size={image_size!r}")
    return int(image_size[0]), int(image_size[1])


@dataclasses.dataclass(frozen=True)
class Family:
    """What the base needs: its registry spec (or None), input size and preprocessing."""

    spec: Any
    image_size: tuple[int, int]
    mode: str
    function: Callable | None

    @classmethod
    def resolve(cls, config: "FineTuneConfig") -> "Family":
        model = config.model
        if isinstance(model, str):
            spec = get_spec(model)
        elif isinstance(model, keras.Model):
            spec = spec_for_model(check_base(model))
        else:
            spec = None
        mode, function = resolve_preprocessing(config.preprocessing, spec, model)
        return cls(spec, resolve_image_size(config.image_size, spec, model), mode, function)


def _variables_in_scope(model: keras.Model, strategy: tf.distribute.Strategy) -> bool:
    return all(strategy.extended.variable_created_in_scope(getattr(v, "value", v)) for v in model.variables)


def base_in_scope(model: keras.Model, strategy: tf.distribute.Strategy) -> keras.Model:
    """``model`` itself when its variables belong to ``strategy``, else a clone made inside its scope
    (call it inside the scope; the default strategy owns every plain variable)."""
    if _variables_in_scope(model, strategy):
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
    refresh_statistics(clone)
    return clone


def build_base(config: "FineTuneConfig", family: Family, hardware: "Hardware") -> keras.Model:
    """The base, made (or cloned) in the strategy's scope; call inside ``hardware.scope()``."""
    model = config.model
    if isinstance(model, str):
        size = family.image_size
        return model_function(model)(input_shape=(size[0], size[1], 3), include_top=False, weights=config.weights,
                                     **dict(config.model_options or {}))
    if isinstance(model, keras.Model):
        return base_in_scope(check_base(model), hardware.strategy)
    return check_base(model())


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
