"""NASNet-A (Zoph et al. 2018): stacks of searched normal and reduction cells.

``NASNet-A (N @ P)``: a 3x3/2 stem, two reduction cells, then three stacks of ``N``
normal cells separated by reduction cells; ``P`` is the number of filters of the
penultimate layer (24 times the last stack's cell filters). Cells pass the outputs of
the two previous cells along as a pair (see :mod:`kapps.blocks.nasnet`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kapps.blocks import Chain, DenseClassifier, NASNetNormalCell, NASNetReductionCell, batch_norm
from kapps.factory import build_model, static_input_shape
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["NASNetMobile", "NASNetLarge", "preprocess_input", "decode_predictions"]

#: The two published configurations: N, P, stem filters, whether reduction cells pass
#: their own previous input on (``skip_reduction``), filter growth between stacks,
#: ImageNet input size.
CONFIGS: dict[str, dict[str, Any]] = {
    "nasnet_mobile": {"num_blocks": 4, "penultimate_filters": 1056, "stem_filters": 32,
                      "skip_reduction": False, "filter_multiplier": 2, "default_size": 224},
    "nasnet_large": {"num_blocks": 6, "penultimate_filters": 4032, "stem_filters": 96,
                     "skip_reduction": True, "filter_multiplier": 2, "default_size": 331},
}
BN = {"bn_epsilon": 1e-3, "bn_momentum": 0.9997}

preprocess_input = family_preprocessor("tf")


def stem(filters: int) -> Chain:
    """3x3/2 valid convolution and BN, no activation (the cells start with a ReLU)."""
    return Chain([
        keras.layers.Conv2D(filters, 3, strides=2, padding="valid", use_bias=False,
                            kernel_initializer="he_normal", name="stem_conv1"),
        batch_norm("stem_bn1", BN["bn_epsilon"], BN["bn_momentum"]),
    ], name="stem")


def body(options: NASNetOptions, input_shape: tuple) -> list:
    config = CONFIGS[options.variant]
    n, m, skip = config["num_blocks"], config["filter_multiplier"], config["skip_reduction"]
    filters = config["penultimate_filters"] // 24
    blocks: list = [
        stem(config["stem_filters"]),
        NASNetReductionCell(filters // m**2, "stem_1", **BN),
        NASNetReductionCell(filters // m, "stem_2", **BN),
    ]
    for stack in range(3):
        width = filters * m**stack
        if stack > 0:
            blocks.append(NASNetReductionCell(width, f"reduce_{stack * n}", keep_previous=skip, **BN))
        for i in range(n):
            last = stack == 2 and i == n - 1
            block_id = stack * n + (1 if stack else 0) + i
            blocks.append(NASNetNormalCell(width, f"{block_id}", return_pair=not last, **BN))
    blocks.append(keras.layers.Activation("relu", name="final_relu"))
    return blocks


def top(options: NASNetOptions, classes: int, activation: Any) -> DenseClassifier:
    return DenseClassifier(classes, activation=activation)


@dataclasses.dataclass(frozen=True)
class NASNetOptions(Options):
    """The configuration's key in :data:`CONFIGS` (fixed by each model)."""

    variant: str


def nasnet_spec(name: str, keras_name: str, params: int, flops: int, top1: float, top5: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="nasnet", body=body, top=top,
        default_size=CONFIGS[name]["default_size"], min_size=32, static_input=True,
        options=NASNetOptions, fixed={"variant": name},
        params=params, flops=flops, top1=top1, top5=top5,
        reference="Zoph et al. 2018, Learning Transferable Architectures for Scalable Image Recognition",
    )


SPECS = {
    "nasnet_mobile": nasnet_spec("nasnet_mobile", "NASNetMobile", 5_326_716, 1_127_277_632, 74.4, 91.9),
    "nasnet_large": nasnet_spec("nasnet_large", "NASNetLarge", 88_949_818, 47_566_829_316, 82.5, 96.0),
}


def _static_input_shape(model: str, input_shape: Any, input_tensor: Any, include_top: bool) -> Any:
    """The input shape the factory's ``static_input`` rule gives ``model`` (see
    :func:`kapps.factory.static_input_shape`): 331 px for NASNetLarge without a top."""
    requested = input_shape if input_shape is not None else (
        None if input_tensor is None else tuple(input_tensor.shape[1:]))
    return static_input_shape(SPECS[model], input_shape, requested, include_top)


@register(SPECS["nasnet_mobile"])
def NASNetMobile(input_shape=None, include_top=True, weights="imagenet", input_tensor=None, pooling=None,
                 classes=1000, classifier_activation="softmax", name="nasnet_mobile", *,
                 builder: str = "functional",
                 features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """NASNet-A (4 @ 1056), 224 px, with keras.applications' signature and layer names.

    Arguments are those of ``keras.applications.NASNetMobile`` (without a top and
    without ``input_shape`` the input is 224 x 224 x 3, as in Keras). Keyword-only
    ``builder`` is ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of the stem and the cells, which pass a pair of tensors along).
    Preprocess inputs with :func:`preprocess_input` (pixels to [-1, 1]).

    >>> import kapps
    >>> kapps.NASNetMobile(weights=None, include_top=False, pooling="avg").output_shape
    (None, 1056)
    """
    return build_model(**SPECS["nasnet_mobile"].bind(locals()))


@register(SPECS["nasnet_large"])
def NASNetLarge(input_shape=None, include_top=True, weights="imagenet", input_tensor=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="nasnet_large", *, builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """NASNet-A (6 @ 4032), 331 px; arguments as :func:`NASNetMobile`.

    Without a top and without ``input_shape`` the input is 331 x 331 x 3 (Keras builds
    an unknown-size model that cannot run; see :func:`kapps.factory.static_input_shape`).

    >>> import kapps
    >>> kapps.model_info("nasnet_large")["default_size"]
    331
    """
    return build_model(**SPECS["nasnet_large"].bind(locals()))
