"""Inception-v4 (Szegedy et al. 2016), with timm's ImageNet weights (Google's TensorFlow release).

The paper's Figure 9: a stem (three 3x3 convolutions, then ``Mixed3a``, ``Mixed4a``, ``Mixed5a``,
whose branches each pair a strided convolution with a max pooling or two convolution chains),
four Inception-A modules (35x35 grid), Reduction-A, seven Inception-B modules (17x17, factorized
7x7 convolutions), Reduction-B, three Inception-C modules (8x8, branches forking into 1x3 and 3x1
convolutions), global average pooling and a 1000-way classifier. Every convolution is conv (no
bias) - BatchNorm (epsilon 1e-3) - ReLU; the modules are tables of the shared
:class:`~kapps.blocks.InceptionModule` (Figures 3-8 of the paper).

Layer names are timm's module paths with ``_`` for ``.`` (``features_0_conv``, ``features_0_bn``,
``features_6_branch1_0_conv``, ``features_19_branch2_3a_bn``, ``last_linear``), so ``weights="imagenet"``
converts timm's ``inception_v4.tf_in1k`` safetensors file. Default input 299, smallest 75.
Preprocessing: ``"tf"`` (pixels to [-1, 1]: timm's mean and std of 0.5).
"""

from __future__ import annotations

from typing import Any

import keras

from kapps.blocks import Conv, ConvBNAct, DenseClassifier, Fork, InceptionModule, Names, Pool, Chain, pool_layer
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["InceptionV4", "preprocess_input", "decode_predictions", "MODULES", "SEQUENCE"]

BN_EPSILON = 1e-3

preprocess_input = family_preprocessor("tf")


def _c(role: str, filters: int, kernel: Any = 1, strides: int = 1, padding: str = "same") -> Conv:
    return Conv(filters, kernel, strides, padding, role=role)


def _max(role: str) -> Pool:
    return Pool("max", 3, 2, "valid", role=role)


def _avg(role: str) -> Pool:
    return Pool("avg", 3, 1, "same", role=role)  # count_include_pad=False: Keras' "same" averages only the image


#: Each module kind as a table of branches; roles are timm's module names inside the module.
MODULES: dict[str, tuple] = {
    "mixed3a": ((_max("maxpool"),), (_c("conv", 96, 3, 2, "valid"),)),
    "mixed4a": ((_c("branch0_0", 64), _c("branch0_1", 96, 3, padding="valid")),
                (_c("branch1_0", 64), _c("branch1_1", 64, (1, 7)), _c("branch1_2", 64, (7, 1)),
                 _c("branch1_3", 96, 3, padding="valid"))),
    "mixed5a": ((_c("conv", 192, 3, 2, "valid"),), (_max("maxpool"),)),
    "inception_a": ((_c("branch0", 96),),
                    (_c("branch1_0", 64), _c("branch1_1", 96, 3)),
                    (_c("branch2_0", 64), _c("branch2_1", 96, 3), _c("branch2_2", 96, 3)),
                    (_avg("branch3_0"), _c("branch3_1", 96))),
    "reduction_a": ((_c("branch0", 384, 3, 2, "valid"),),
                    (_c("branch1_0", 192), _c("branch1_1", 224, 3), _c("branch1_2", 256, 3, 2, "valid")),
                    (_max("branch2"),)),
    "inception_b": ((_c("branch0", 384),),
                    (_c("branch1_0", 192), _c("branch1_1", 224, (1, 7)), _c("branch1_2", 256, (7, 1))),
                    (_c("branch2_0", 192), _c("branch2_1", 192, (7, 1)), _c("branch2_2", 224, (1, 7)),
                     _c("branch2_3", 224, (7, 1)), _c("branch2_4", 256, (1, 7))),
                    (_avg("branch3_0"), _c("branch3_1", 128))),
    "reduction_b": ((_c("branch0_0", 192), _c("branch0_1", 192, 3, 2, "valid")),
                    (_c("branch1_0", 256), _c("branch1_1", 256, (1, 7)), _c("branch1_2", 320, (7, 1)),
                     _c("branch1_3", 320, 3, 2, "valid")),
                    (_max("branch2"),)),
    "inception_c": ((_c("branch0", 256),),
                    (_c("branch1_0", 384), Fork(((_c("branch1_1a", 256, (1, 3)),), (_c("branch1_1b", 256, (3, 1)),)),
                                                 name="branch1_concat")),
                    (_c("branch2_0", 384), _c("branch2_1", 448, (3, 1)), _c("branch2_2", 512, (1, 3)),
                     Fork(((_c("branch2_3a", 256, (1, 3)),), (_c("branch2_3b", 256, (3, 1)),)), name="branch2_concat")),
                    (_avg("branch3_0"), _c("branch3_1", 256))),
}
#: ``features`` of timm's model after the three stem convolutions (index 3 onwards), by module kind.
SEQUENCE: tuple[str, ...] = ("mixed3a", "mixed4a", "mixed5a", *["inception_a"] * 4, "reduction_a",
                             *["inception_b"] * 7, "reduction_b", *["inception_c"] * 3)


def unit(prefix: str, conv: Conv) -> ConvBNAct:
    """timm's ``ConvNormAct``: ``{prefix}conv``, ``{prefix}bn`` (epsilon 1e-3), ReLU."""
    return ConvBNAct(conv.filters, conv.kernel, conv.strides, padding=conv.padding, bn_epsilon=BN_EPSILON,
                     bn_momentum=0.9, activation="relu",
                     names=Names("", {"conv": f"{prefix}conv", "bn": f"{prefix}bn", "act": f"{prefix}act",
                                      "block": prefix.rstrip("_")}))


def module(index: int, kind: str) -> InceptionModule:
    prefix = f"features_{index}_"
    return InceptionModule.from_table(
        MODULES[kind],
        make_conv=lambda conv: unit(f"{prefix}{conv.role}_", conv),
        make_pool=lambda pool: pool_layer(pool, name=f"{prefix}{pool.role}"),
        fork_name=lambda fork: f"{prefix}{fork.name}",
        concat_name=f"{prefix}concat", name=f"features_{index}")


def body(options: Options, input_shape: tuple) -> list:
    stem = Chain([unit("features_0_", Conv(32, 3, 2, "valid")), unit("features_1_", Conv(32, 3, 1, "valid")),
                  unit("features_2_", Conv(64, 3))], name="stem")
    return [stem] + [module(index, kind) for index, kind in enumerate(SEQUENCE, start=3)]


def top(options: Any, classes: int, activation: Any) -> DenseClassifier:
    """Global average pooling (``global_pool``) and the ``last_linear`` classifier."""
    return DenseClassifier(classes, activation=activation, pool_name="global_pool", dense_name="last_linear")


SPEC = ModelSpec(
    name="inception_v4", keras_name="InceptionV4", family="inception_v4", body=body, top=top,
    default_size=299, min_size=75, params=42_742_984, flops=24_507_949_248, top1=80.0, top5=95.0,
    reference="Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of Residual Connections on "
              "Learning (timm's weights: Google's TensorFlow release; top-1/top-5: the paper's Table 2, single crop)",
)


@register(SPEC)
def InceptionV4(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="inception_v4", *,
                builder: str = "functional", features_only: bool = False,
                out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """Inception-v4, with keras.applications' argument conventions.

    ``weights="imagenet"`` downloads timm's ``inception_v4.tf_in1k`` safetensors file once and
    converts it once into a Keras weights file in the kapps cache. Keyword-only ``builder`` is
    ``"functional"`` or ``"sequential"``. Preprocess inputs with :func:`preprocess_input` ("tf").

    >>> import kapps
    >>> kapps.InceptionV4(weights=None, include_top=False, input_shape=(75, 75, 3)).output_shape
    (None, 1, 1, 1536)
    """
    return build_model(**SPEC.bind(locals()))
