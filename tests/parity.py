"""Helpers to compare a kapps model with its keras.applications twin."""

from __future__ import annotations

import gc
import os

import keras
import numpy as np

import kapps
from kapps._keras_compat import tensor_graph
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


def full_sweeps() -> bool:
    """``KAPPS_FULL_SWEEPS=1``: the checks the suite's time budget keeps to one model per family run for
    every model."""
    return os.environ.get("KAPPS_FULL_SWEEPS") == "1"


def features_checked(name: str, names: list[str]) -> bool:
    """Whether the parity tests compare ``name``'s ``features_only`` maps with the reference's layers: the
    smallest model of each family (of ``names``), every model with :func:`full_sweeps`
    (``KAPPS_FULL_SWEEPS=1 make test``). The feature levels follow from the graph by one rule (:mod:`kapps.features`), and a family's other models repeat its
    blocks at other depths and widths; the check cost about 215 s of the suite's CPU time for them."""
    return full_sweeps() or name in smallest_of_each_family(names)


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


def families_part(names: list[str], part: int, parts: int) -> list[str]:
    """Part ``part`` of ``parts`` of ``names``, whole families together (each family's models in
    ``names``' order, families one after another). Families are dealt largest first to the part with
    the fewest models (longest-processing-time-first, a model a unit). On JAX, eager operations are
    compiled once per shape, and a family's models share many shapes: DenseNet-121, -169 and -201 took
    47, 53 and 92 s in three processes and 31, 22 and 15 s one after another in one.

    >>> families_part(["resnet50", "vgg16", "resnet101", "mobilenet_v2"], 0, 2)
    ['resnet50', 'resnet101']
    """
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(get_spec(name).family, []).append(name)
    loads, dealt = [0] * parts, [[] for _ in range(parts)]
    for family in sorted(families, key=lambda f: (-len(families[f]), f)):
        lightest = loads.index(min(loads))
        loads[lightest] += len(families[family])
        dealt[lightest].append(family)
    return [name for family in dealt[part] for name in families[family]]


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
    ``inspect(builder, model, x, ref)``, if given, runs on each kapps model before it is freed
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
            inspect(builder, model, x, ref)
        del model
    del ref
    keras.backend.clear_session()
    gc.collect()
    return diffs


def reference_taps(ref: keras.Model, taps: list[tuple[str, str, type]], x: np.ndarray) -> list:
    """The outputs on ``x`` of ``ref``'s layers named as ``taps`` (``(name, input layer name, class)``).

    Taps with no layer of their name in keras.applications are read by structure: its NASNet and
    MobileNetV3 name activations automatically (``activation_12``, ``re_lu_2``; kapps:
    ``reduction_relu_1_reduce_6``, ``expanded_conv_1_expand_activation``), so the tap is the
    ``ref`` layer on the same input layer (of the same class, if several); its
    ConvNeXt adds each block's residual with an operation, not a layer, so the stage outputs (kapps:
    ``{model}_stage_{s}_block_{j}_add``) are the input of the next downsampling Sequential and, for
    the deepest level, of the head's pooling.
    """
    layers = {layer.name: layer for layer in ref.layers}
    head = next(l for l in ref.layers if isinstance(l, (keras.layers.GlobalAveragePooling2D, keras.layers.Flatten)))
    tensors = []
    for name, parent, cls in taps:
        after = [l for l in ref.layers if parent in layers and l.input is layers[parent].output]
        same = [l for l in after if type(l) is cls] or (after if len(after) == 1 else [])
        if name in layers:
            tensors.append(layers[name].output)
        elif same:
            tensors.append(same[0].output)
        elif name == taps[-1][0]:
            tensors.append(head.input)
        else:
            model, stage = name.split("_stage_")[0], int(name.split("_stage_")[1].split("_")[0])
            tensors.append(layers[f"{model}_downsampling_block_{stage}"].input)
    return keras.Model(ref.input, tensors)(x, training=False)


def check_features(name: str, builder: str, model: keras.Model, x: np.ndarray, reference_outputs,
                   tolerance: float = 1e-4, **options) -> None:
    """``features_only=True`` of ``name`` against the intermediate layers it names.

    The feature model is built with ``builder`` at ``x``'s size and gets ``model``'s weights
    (a kapps model with weights of the reference) by layer name. Its maps must equal
    ``reference_outputs(taps)`` (the reference's own layers, read by name: ``taps`` are
    ``(name, input layer name, class)``) and, for the
    functional builder, the same layers of ``model``; ``feature_info`` must describe them:
    channels, and reductions that are distinct powers of two whose maps have the size the
    stride gives (``valid`` convolutions may trim a few pixels: LeNet-5 six). ``options`` are the
    model's own constructor options (``variant="torchvision"``).
    """
    size = x.shape[1]
    features = kapps.get_model(name, weights=None, input_shape=x.shape[1:], features_only=True, builder=builder,
                               **options)
    copy_weights_by_name(model, features)
    info = features.feature_info
    names = [level["name"] for level in info]
    producers = {id(t): (op, parents) for t, op, parents in tensor_graph(features.outputs)}
    taps = []
    for output in features.outputs:
        operation, parents = producers[id(output)]
        taps.append((operation.name, producers[id(parents[0])][0].name, type(operation)))
    maps = features(x, training=False)
    maps = [np.asarray(m) for m in (maps if isinstance(maps, (list, tuple)) else [maps])]
    expected = [reference_outputs(taps)]
    if builder == "functional":
        expected.append(keras.Model(model.input, [model.get_layer(n).output for n in names])(x, training=False))
    for reference in expected:
        reference = reference if isinstance(reference, (list, tuple)) else [reference]
        for level, got, want in zip(info, maps, reference):
            want = np.asarray(want)
            error = float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))
            assert error <= tolerance, (name, builder, level, error)
    reductions = [level["reduction"] for level in info]
    assert reductions == sorted(set(reductions)) and all(r & (r - 1) == 0 and r >= 2 for r in reductions), info
    for level, got in zip(info, maps):
        assert got.shape[-1] == level["channels"], (name, level, got.shape)
        assert size / level["reduction"] - 6 <= got.shape[1] <= -(-size // level["reduction"]), (name, level, got.shape)
    assert kapps.features_of(features) == list(info), (name, builder)
    del features
