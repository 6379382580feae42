"""Helpers to compare a kapps model with its keras.applications twin."""

from __future__ import annotations

import gc

import keras
import numpy as np

import kapps
from kapps.registry import get_spec
from kapps.utils.layers import leaf_layers
from kapps.weights.h5io import copy_weights_by_name


#: Models whose classifier's weights depend on the input size (Flatten before Dense).
SIZE_DEPENDENT_TOP = frozenset({"vgg16", "vgg19", "alexnet", "lenet5"})
#: Families whose graph depends on the input size (padding or cropping chosen from it, as in
#: keras.applications), so a model built at one size cannot be re-traced at another.
SIZE_DEPENDENT_GRAPH = frozenset({"efficientnet", "nasnet"})
#: Families Keras 3 dropped, whose reference is tf.keras (tests/test_tf_keras_families.py, which also
#: checks their parameters and FLOPs).
TF_KERAS_FAMILIES = frozenset({"regnet", "resnet_rs"})


def smallest_of_each_family(names: list[str]) -> list[str]:
    """The model with the fewest parameters in each family, in the order of ``names``.

    >>> smallest_of_each_family(["resnet101", "resnet50", "vgg16"])
    ['resnet50', 'vgg16']
    """
    smallest: dict[str, str] = {}
    for name in names:
        family = get_spec(name).family
        if family not in smallest or get_spec(name).params < get_spec(smallest[family]).params:
            smallest[family] = name
    return [name for name in names if name in smallest.values()]


def part_of(names: list[str], part: int, parts: int) -> list[str]:
    """Part ``part`` of ``parts`` of ``names``, dealt by parameter count (the largest spread out), sorted.

    >>> part_of(["resnet50", "vgg16", "mobilenet_v2"], 0, 2)
    ['mobilenet_v2', 'vgg16']
    """
    by_size = sorted(names, key=lambda name: (-get_spec(name).params, name))
    return sorted(by_size[part::parts])


def keras_reference(name: str, **kwargs) -> keras.Model:
    """The keras.applications model for a kapps registry name."""
    return getattr(keras.applications, get_spec(name).keras_name)(**kwargs)


def randomize_batch_norm(model: keras.Model, seed: int = 0, gamma: tuple[float, float] = (0.5, 1.5)) -> None:
    """Give BatchNorm layers non-trivial statistics so parity tests exercise them.

    ``gamma`` is the uniform range of the scales. The default lets activations grow
    through deep nets; ``(0.3, 0.8)`` keeps them bounded (see tests/test_parity.py).
    """
    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for w in layer.weights:
                shape = tuple(w.shape)
                short = w.name.split("/")[-1]
                if short == "gamma":
                    values.append(rng.uniform(*gamma, shape).astype("float32"))
                elif short == "moving_variance":
                    values.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
                else:
                    values.append(rng.normal(0.0, 0.1, shape).astype("float32"))
            layer.set_weights(values)


def assert_same_graph(model: keras.Model, ref: keras.Model) -> None:
    """``model`` has ``ref``'s weighted layers (name, class, order), weights (shape, order) and name."""
    def weighted(m):
        return [(layer.name, type(layer).__name__) for layer in leaf_layers(m)]

    def weights(m):  # layer name and shape: Keras' paths also hold nested models' names
        return [(layer.name, tuple(w.shape)) for layer in leaf_layers(m) for w in layer.weights]

    names = [n for n, _ in weighted(model)], [n for n, _ in weighted(ref)]
    assert names[0] == names[1], next((a, b) for a, b in zip(*names) if a != b)
    assert weighted(model) == weighted(ref)
    assert weights(model) == weights(ref)
    assert model.name == ref.name


def family_preprocess(name: str, images: np.ndarray) -> np.ndarray:
    module = getattr(kapps, get_spec(name).family)
    return np.asarray(module.preprocess_input(images.copy()))


def compare(name: str, images: np.ndarray, builders=("functional", "sequential"), inspect=None,
            **kwargs) -> dict[str, float]:
    """Max abs difference of each kapps builder against keras.applications.

    Both sides get ``weights=None`` and the same ``kwargs``; the reference's BatchNorm
    statistics are randomized, then every weight is copied into kapps by layer name.
    The functional model must also have the reference's weighted layers (name, class,
    order) and weights (shape, order), so that official files load by name.
    ``inspect(builder, model, x)``, if given, runs on each kapps model before it is freed
    (more checks on a model already built, instead of building it again).
    """
    kwargs.setdefault("weights", None)
    keras.backend.clear_session()  # Keras' automatic names (Normalization) count from a fresh session
    ref = keras_reference(name, **kwargs)
    randomize_batch_norm(ref)
    x = family_preprocess(name, images)
    expected = np.asarray(ref(x, training=False))
    diffs = {}
    for builder in builders:
        model = kapps.get_model(name, builder=builder, **kwargs)
        assert model.count_params() == ref.count_params(), (builder, model.count_params(), ref.count_params())
        if builder == "functional":
            assert_same_graph(model, ref)
        copy_weights_by_name(ref, model)
        diffs[builder] = float(np.max(np.abs(np.asarray(model(x, training=False)) - expected)))
        if inspect is not None:
            inspect(builder, model, x)
        del model
    del ref
    keras.backend.clear_session()
    gc.collect()
    return diffs
