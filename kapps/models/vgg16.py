"""VGG16 (Simonyan & Zisserman 2015): configuration "D", 13 3x3 convolutions and 3 dense layers."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import ConvPoolStage, FlattenDenseClassifier, PoolingHead
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]

#: The convolution configurations of the paper's Table 1: (filters, convolutions) per stage.
CONFIGS: dict[str, tuple[tuple[int, int], ...]] = {
    "vgg16": ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),  # configuration D
    "vgg19": ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)),  # configuration E
}

preprocess_input = family_preprocessor("caffe")


def body(options: VGGOptions, input_shape: tuple) -> list:
    """One :class:`~kapps.blocks.ConvPoolStage` per row: ``block{i}_conv{j}``, ``block{i}_pool``."""
    return [
        ConvPoolStage(filters, convs, names=f"block{i}_", name=f"block{i}")
        for i, (filters, convs) in enumerate(options.convolutions, start=1)
    ]


def top(options: VGGOptions, classes: int, activation: Any) -> FlattenDenseClassifier:
    """Flatten, ``fc1`` and ``fc2`` (4096 units, ReLU), then ``predictions``."""
    return FlattenDenseClassifier(classes, hidden_units=(4096, 4096), activation=activation)


#: keras.applications leaves the no-top pooling unnamed; these are its fresh-session names.
KERAS_POOL_NAMES = {"avg": "global_average_pooling2d", "max": "global_max_pooling2d"}


def no_top(options: VGGOptions, pooling: str | None) -> PoolingHead | None:
    return None if pooling is None else PoolingHead(pooling, pool_name=KERAS_POOL_NAMES[pooling])


@dataclasses.dataclass(frozen=True)
class VGGOptions(Options):
    """The (filters, convolutions) of each stage (fixed by each model, from :data:`CONFIGS`)."""

    convolutions: tuple[tuple[int, int], ...]


def vgg_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    """The spec of one VGG configuration (``name`` is a key of :data:`CONFIGS`)."""
    return ModelSpec(
        name=name, keras_name=keras_name, family=name,
        body=body, top=top, no_top=no_top, default_size=224, min_size=32,
        options=VGGOptions, fixed={"convolutions": CONFIGS[name]},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition",
    )


SPEC = vgg_spec("vgg16", "VGG16", 138_357_544, 30_940_528_640, 71.3, 90.1)


@register(SPEC)
def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16", *, builder: str = "functional",
          features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """VGG16, with keras.applications' signature and layer names.

    Arguments are those of ``keras.applications.VGG16``; keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of five conv-pool stages and the dense classifier).
    Preprocess inputs with :func:`preprocess_input` ("caffe": RGB to BGR, minus the
    ImageNet mean).

    >>> import kapps
    >>> kapps.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 2, 2, 512)
    """
    return build_model(**SPEC.bind(locals()))
