"""Multi-scale feature maps from any kapps model: ``features_only=True``.

Every model's feature levels follow from its graph by one rule, so no family keeps a
hand-written list of layer indices:

* a layer's **reduction** is the product of the strides (convolutions and poolings)
  between the input and that layer: exact and independent of the input size ("valid"
  padding that trims a few pixels does not count);
* there is one **level** per reduction of 2 or more that the body reaches (2, 4, 8, 16, 32
  for the ImageNet CNNs; ConvNeXt starts at 4, its stem being a stride-4 patchify);
* a level's **tap** is the *last* layer at that reduction that every later layer depends
  on (a cut of the graph: all the network knows at that scale flows through it),
  padding, cropping and LayerNorm excluded (where no single tensor cuts a level, as in NASNet, whose cells
  read the two cells before them: the widest tensor at that reduction, the deepest of them
  if several, which is the activation of the last cell's output, where timm taps NASNet).
  So the tap is pre-pooling by construction (the pooling or
  strided convolution that leaves a level belongs to the next one), and where a family
  widens its features before striding, the tap is the wide tensor: MobileNetV2's
  ``block_1/3/6/13_expand_relu`` and ``out_relu``, the layers the DeepLabV3+ and SSDLite
  papers tap; ResNet's ``conv1_relu`` and ``conv{2..5}_block*_out``; VGG's last
  convolution of each stage (``block5_conv3``, then ``block5_pool`` for 32); ConvNeXt's
  stage outputs (``convnext_tiny_stage_{0..3}_block_*_add``), as timm taps them.

``kapps.features_of(model)`` tells any feature model's levels again, for example after
``keras.saving.load_model``.

>>> import kapps
>>> model = kapps.MobileNetV2(weights=None, input_shape=(64, 64, 3), features_only=True)
>>> [(level["name"], level["reduction"]) for level in model.feature_info]  # doctest: +NORMALIZE_WHITESPACE
[('block_1_expand_relu', 2), ('block_3_expand_relu', 4), ('block_6_expand_relu', 8),
 ('block_13_expand_relu', 16), ('out_relu', 32)]
>>> [tuple(out.shape) for out in model.outputs][-1]
(None, 2, 2, 1280)
"""

from __future__ import annotations

__all__ = ["FeatureLevel", "feature_levels", "feature_model", "features_of"]

import dataclasses
from typing import Any, Sequence

import keras

from kapps import validation
from kapps._keras_compat import tensor_graph
from kapps.blocks.base import apply

#: Layers that are never a tap: they only pad or shift their input for the strided layer after them,
#: or normalize it for the next stage (ConvNeXt's downsampling LayerNorm: its stage outputs are tapped).
_NOT_TAPS = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D, keras.layers.InputLayer,
             keras.layers.LayerNormalization)


@dataclasses.dataclass(frozen=True)
class FeatureLevel:
    """One feature level: the tapped layer's name, its channels and its reduction (stride)."""

    name: str
    channels: int
    reduction: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _stride(operation: Any) -> int:
    strides = getattr(operation, "strides", None)
    if strides is None:
        return 1
    strides = tuple(strides) if isinstance(strides, (tuple, list)) else (strides, strides)
    return int(strides[0])


def _channels(tensor: Any, data_format: str) -> int:
    return int(tensor.shape[1] if data_format == "channels_first" else tensor.shape[-1])


def feature_levels(output: Any, data_format: str | None = None) -> list[tuple[FeatureLevel, Any]]:
    """The levels of the graph that ends in ``output``, shallow to deep, each with its tensor.

    >>> import keras
    >>> x = inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(4, 3, strides=2, name="c1")(x)
    >>> x = keras.layers.Conv2D(8, 3, name="c2")(x)
    >>> x = keras.layers.MaxPooling2D(name="pool")(x)
    >>> [level for level, _ in feature_levels(x, "channels_last")]
    [FeatureLevel(name='c2', channels=8, reduction=2), FeatureLevel(name='pool', channels=8, reduction=4)]
    """
    data_format = data_format or keras.config.image_data_format()
    graph = tensor_graph(output)
    consumers: dict[int, int] = {}
    for _, _, parents in graph:
        for parent in parents:
            consumers[id(parent)] = consumers.get(id(parent), 0) + 1
    reduction: dict[int, int] = {}
    depth: dict[int, int] = {}
    live: set[int] = set()
    last_cut: dict[int, tuple[FeatureLevel, Any]] = {}
    widest: dict[int, tuple[tuple[int, int], FeatureLevel, Any]] = {}
    for tensor, operation, parents in graph:
        reduction[id(tensor)] = max((reduction[id(p)] for p in parents), default=1) * _stride(operation)
        depth[id(tensor)] = max((depth[id(p)] for p in parents), default=-1) + 1
        for parent in parents:
            consumers[id(parent)] -= 1
            if not consumers[id(parent)]:
                live.discard(id(parent))
        live.add(id(tensor))
        factor = reduction[id(tensor)]
        if factor < 2 or isinstance(operation, _NOT_TAPS):
            continue
        level = FeatureLevel(operation.name, _channels(tensor, data_format), factor)
        if live == {id(tensor)}:
            last_cut[factor] = (level, tensor)
        rank = (level.channels, depth[id(tensor)])
        if rank >= widest.get(factor, ((-1, -1),))[0]:
            widest[factor] = (rank, level, tensor)
    # A level that no single tensor cuts (NASNet's cells read the two cells before them): its widest
    # tensor, the deepest of them if several (the activation of the last cell's output).
    return [last_cut.get(factor) or widest[factor][1:] for factor in sorted(widest)]


def features_of(model: keras.Model) -> list[dict[str, Any]]:
    """The ``feature_info`` of a feature model, told from its graph (also after a reload).

    >>> import kapps
    >>> model = kapps.ResNet50(weights=None, input_shape=(64, 64, 3), features_only=True, out_indices=(1, 3))
    >>> kapps.features_of(model) == model.feature_info
    True
    """
    levels = {id(tensor): level for level, tensor in feature_levels(model.outputs[-1])}
    return [levels[id(output)].as_dict() for output in model.outputs]


def feature_model(model: keras.Model, *, out_indices: Sequence[int] | None, name: str, builder: str,
                  model_name: str) -> keras.Model:
    """The feature model of a kapps body ``model`` (no head), sharing its layers and weights.

    With ``builder="sequential"``, a Functional model over the Sequential's own block
    layers, spread flat so that their sub-layers can be tapped.
    """
    if builder == "sequential":
        inputs = keras.Input(shape=model.input_shape[1:])
        x = inputs
        for block in model.layers:
            x = apply(block, x)
        inputs, output = [inputs], x
    else:
        inputs, output = model.inputs, model.outputs[0]
    levels = feature_levels(output)
    chosen = validation.check_out_indices(out_indices, [level.reduction for level, _ in levels], model_name)
    features = keras.Model(inputs, [levels[i][1] for i in chosen], name=name)
    features.feature_info = tuple(levels[i][0].as_dict() for i in chosen)
    return features
