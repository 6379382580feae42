"""Helpers to compare a kapps model with its keras.applications twin."""

from __future__ import annotations

import gc

import keras
import numpy as np

import kapps
from kapps.registry import get_spec
from kapps.utils.layers import leaf_layers
from kapps.weights.h5io import copy_weights_by_name


def keras_reference(name: str, **kwargs) -> keras.Model:
    """The keras.applications model for a kapps registry name."""
    return getattr(keras.applications, get_spec(name).keras_name)(**kwargs)


def randomize_batch_norm(model: keras.Model, seed: int = 0) -> None:
    """Give BatchNorm layers non-trivial statistics so parity tests exercise them."""
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for w in layer.weights:
                shape = tuple(w.shape)
                short = w.name.split("/")[-1]
                if short in ("gamma", "moving_variance"):
                    values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
                else:
                    values.append(rng.normal(0.0, 0.1, shape).astype("float32"))
            layer.set_weights(values)


def family_preprocess(name: str, images: np.ndarray) -> np.ndarray:
    module = getattr(kapps, get_spec(name).family)
    return np.asarray(module.preprocess_input(images.copy()))


def compare(name: str, images: np.ndarray, builders=("functional", "sequential"), inspect=None,
            **kwargs) -> dict[str, float]:
    """Max abs difference of each kapps builder against keras.applications.

    Both sides get ``weights=None`` and the same ``kwargs``; the reference's BatchNorm
    statistics are randomized, then every weight is copied into kapps by layer name.
    ``inspect(builder, model, x)``, if given, runs on each kapps model before it is freed
    (more checks on a model already built, instead of building it again).
    """
    kwargs.setdefault("weights", None)
    ref = keras_reference(name, **kwargs)
    randomize_batch_norm(ref)
    x = family_preprocess(name, images)
    expected = np.asarray(ref(x, training=False))
    diffs = {}
    for builder in builders:
        model = kapps.get_model(name, builder=builder, **kwargs)
        assert model.count_params() == ref.count_params(), (builder, model.count_params(), ref.count_params())
        copy_weights_by_name(ref, model)
        diffs[builder] = float(np.max(np.abs(np.asarray(model(x, training=False)) - expected)))
        if inspect is not None:
            inspect(builder, model, x)
        del model
    del ref
    keras.backend.clear_session()
    gc.collect()
    return diffs
