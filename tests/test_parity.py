"""Numerical parity of every kapps model with keras.applications (both builders).

Weights: the reference is built with random weights and random BatchNorm statistics;
kapps gets them copied by layer name. Input: a real photo (scikit-image's cat),
preprocessed the family's way. Logits are compared (classifier_activation=None), so
the check is not hidden by a softmax.

Every model is compared at the smallest input its architecture accepts (``min_size``),
with its 1000-class top: the functional builder for every model, the Sequential builder for the
smallest model of each family, whose blocks the family's other models repeat at other depths
and widths (the suite's budget: the Sequential builds of every model run in the JAX and PyTorch
sweeps, tests/test_backends.py). The ``features_only=True`` model of the smallest model of each family
(both builders, the same weights; every model with ``KAPPS_FULL_SWEEPS=1``: tests/parity.py's
``features_checked``) must give the maps of the layers it names, in keras.applications' model and in
kapps' own.
The same functional model then has keras.applications' weighted
layers and weights (tests/parity.py), its registry metadata (parameters, and FLOPs counted
at the default size; tests/test_registry.py does the models this cannot cover), and
passes through ``kapps.optimize_for_inference`` (BatchNorm folded), which must compute
the same. The smallest model of each family is also compared at its default size (functional
builder), and at its smallest size without the top (average pooling; max pooling: the foundation and
family tests).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kapps
from kapps.registry import get_spec
from kapps.tools.flops import count_flops
from parity import (SIZE_DEPENDENT_GRAPH, SIZE_DEPENDENT_TOP, check_features, compare, features_checked, reference_taps,
                    randomize_batch_norm, smallest_of_each_family)
from conftest import photo

TOLERANCE = 1e-4
KERAS_MODELS = [n for n in kapps.list_models() if hasattr(keras.applications, get_spec(n).keras_name)]


FAMILY_SMALLEST = smallest_of_each_family(KERAS_MODELS)
FAST_AT_SMALLEST = [pytest.param(n, marks=pytest.mark.fast) if n in FAMILY_SMALLEST else n for n in KERAS_MODELS]


@pytest.mark.parametrize("name", FAMILY_SMALLEST)
def test_parity_default_size(name):
    spec = get_spec(name)
    images = photo(spec.default_size)
    # The functional builder only: the Sequential builder assembles the same blocks and is compared at the
    # smallest size for every model (suite budget: a default-size build is the dearest of the module).
    top = compare(name, images, include_top=True, classifier_activation=None, builders=("functional",))
    assert max(top.values()) <= TOLERANCE, top
    size = spec.min_size  # an explicit shape: Keras' NASNet cannot run on a (None, None, 3) input
    pooled = compare(name, photo(size), include_top=False, pooling="avg", input_shape=(size, size, 3))
    assert max(pooled.values()) <= TOLERANCE, pooled


def optimized_computes_the_same(builder: str, model: keras.Model, x) -> None:
    """``optimize_for_inference`` of the functional model: same outputs, no more BatchNorm, no Dropout.

    The BatchNorm statistics are randomized again with scales below 1 first. With the
    parity statistics (scales up to 1.5) EfficientNetV2-S/M/L are chaotic in float32:
    a 1e-7 relative change of the input moves V2-L's output by 70% (V2-S: 0.2%), so any
    change in rounding order, which folding is, fails a 1e-4 check there. With scales
    in (0.3, 0.8) the same 1e-7 moves V2-L's output by 6e-7 and folding by 6e-7.
    """
    if builder != "functional":
        return
    randomize_batch_norm(model, seed=1, gamma=(0.3, 0.8))
    expected = np.asarray(model(x, training=False))
    fast = kapps.optimize_for_inference(model)
    diff, scale = float(np.max(np.abs(np.asarray(fast(x)) - expected))), float(np.max(np.abs(expected)))
    assert diff <= TOLERANCE * max(1.0, scale), ("optimize_for_inference", diff, scale)
    count = lambda m, cls: sum(isinstance(layer, cls) for layer in m.layers)  # noqa: E731
    assert count(fast, keras.layers.BatchNormalization) <= count(model, keras.layers.BatchNormalization)
    assert count(fast, keras.layers.Dropout) == 0


def metadata_is_exact(name: str, model: keras.Model) -> None:
    """The registry's parameter count and default-size FLOPs, recomputed on the built model."""
    spec = get_spec(name)
    if name in SIZE_DEPENDENT_TOP:  # its top's weights change with the input size: tests/test_registry.py
        return
    assert model.count_params() == spec.params, (name, model.count_params(), spec.params)
    if spec.family in SIZE_DEPENDENT_GRAPH:  # FLOPs need the default-size graph: tests/test_registry.py
        return
    size = spec.default_size
    assert count_flops(model, (size, size, spec.input_channels)) == spec.flops, name


@pytest.mark.parametrize("name", FAST_AT_SMALLEST)
def test_parity_smallest_size(name):
    size = get_spec(name).min_size

    def inspect(builder: str, model: keras.Model, x, ref: keras.Model) -> None:
        if builder == "functional":
            metadata_is_exact(name, model)
        if features_checked(name, KERAS_MODELS):  # both builders: their taps are one code path
            check_features(name, builder, model, x, lambda names: reference_taps(ref, names, x))
        optimized_computes_the_same(builder, model, x)

    builders = ("functional", "sequential") if name in FAMILY_SMALLEST else ("functional",)
    diffs = compare(name, photo(size), include_top=True, classifier_activation=None, input_shape=(size, size, 3),
                    builders=builders, inspect=inspect)
    assert max(diffs.values()) <= TOLERANCE, diffs


@pytest.mark.fast
def test_registry_covers_every_keras_application():
    """All 40 keras.applications model functions are in the registry, under the same names."""
    import inspect

    keras_functions = {n for n, f in vars(keras.applications).items() if n[:1].isupper() and inspect.isfunction(f)}
    ours = {get_spec(n).keras_name for n in kapps.list_models()}
    assert len(keras_functions) == 40 and keras_functions <= ours, sorted(keras_functions - ours)
    for name in keras_functions:
        assert inspect.signature(getattr(kapps, name)).parameters.keys() - {"builder", "features_only", "out_indices"} == \
            inspect.signature(getattr(keras.applications, name)).parameters.keys(), name
