"""ResNet-RS (Bello et al. 2021, "Revisiting ResNets: Improved Training and Scaling Strategies").

ResNet-D (a stem of four 3x3 convolutions instead of the 7x7 and the max pooling; strided
3x3 convolutions; average-pooled projection shortcuts) with squeeze-excite in every block
and stochastic depth in the deeper models: the :class:`~kapps.blocks.Bottleneck` of ResNet
with ``stride_at="middle"``, ``avg_down``, ``squeeze_filters`` and ``drop_rate``.

keras.applications of Keras 3 has no ResNet-RS: the reference is tf.keras
(``tf_keras.applications.resnet_rs``), whose layer names, hyperparameters, weight files and
signatures these models keep, including the layers tf.keras leaves unnamed (``add_3``,
``zero_padding2d_1``: Keras' names for them in a fresh session) and its session-numbered stem
(``stem_1_stem_conv_1``). The models normalize their input themselves
(``include_preprocessing=True``: pass pixels in [0, 255]), so :func:`preprocess_input` is the
identity; without it they expect the normalized image.

Each model has ImageNet files trained at one or more resolutions (:data:`VARIANTS`):
``weights="imagenet"`` loads the largest, ``weights="imagenet-i224"`` (tf.keras' names) another.
The top is global pooling and a dense layer, so any input size (at least 32) takes it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import keras

from kapps.blocks import AutoNames, Bottleneck, Chain, ConvBNAct, DenseClassifier, Names
from kapps.blocks.base import channel_axis, resolve_data_format
from kapps import validation
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models._heads import named_pool_no_top as no_top
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = [
    "ResNetRS50", "ResNetRS101", "ResNetRS152", "ResNetRS200", "ResNetRS270", "ResNetRS350", "ResNetRS420",
    "preprocess_input", "decode_predictions",
]


class Variant(NamedTuple):
    """One depth: blocks per stage, the stochastic-depth and top-dropout rates, the resolutions
    of its ImageNet files (tf.keras' ``BLOCK_ARGS``, ``DEPTH_TO_WEIGHT_VARIANTS`` and constructors)."""

    repeats: tuple[int, int, int, int]
    drop_connect_rate: float
    dropout: float
    resolutions: tuple[int, ...]
    params: int
    flops: int


VARIANTS: dict[int, Variant] = {
    50: Variant((3, 4, 6, 3), 0.0, 0.25, (160,), 35_745_288, 8_908_980_224),
    101: Variant((3, 4, 23, 3), 0.0, 0.25, (160, 192), 63_724_296, 16_351_248_384),
    152: Variant((3, 8, 36, 3), 0.0, 0.25, (192, 224, 256), 86_773_256, 23_790_370_816),
    200: Variant((3, 24, 36, 3), 0.1, 0.25, (256,), 93_386_248, 30_782_275_584),
    270: Variant((4, 29, 53, 4), 0.1, 0.25, (256,), 130_104_520, 41_287_237_632),
    350: Variant((4, 36, 72, 4), 0.1, 0.4, (256, 320), 164_268_360, 52_664_025_088),
    420: Variant((4, 44, 87, 4), 0.1, 0.4, (320,), 192_262_216, 62_726_684_672),
}
#: Bottleneck widths of the four stages (outputs are 4x wider) and the stride of each first block.
WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
STRIDES: tuple[int, ...] = (1, 2, 2, 2)
SQUEEZE_RATIO = 0.25  # of the 4x-wide output, i.e. the bottleneck width
BN_EPSILON, BN_MOMENTUM = 1e-5, 0.0
#: ImageNet mean and standard deviation of pixels in [0, 1] (the Normalization layer).
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: tf.keras names the stem after a session counter (``backend.get_uid("stem_")``): 1 in a fresh session.
STEM = "stem_1"

#: The models normalize inside: preprocessing is the identity.
preprocess_input = family_preprocessor("none")


def drop_rate(variant: Variant, stage: int) -> float:
    """Stochastic depth of the blocks of ``stage`` (0-3): ``rate * (stage + 2) / 5``, tf.keras' rule.

    >>> drop_rate(VARIANTS[200], 0), drop_rate(VARIANTS[50], 3)
    (0.04, 0.0)
    """
    return variant.drop_connect_rate * float(stage + 2) / (len(WIDTHS) + 1)


def block_names(prefix: str, auto: AutoNames, strided: bool) -> Names:
    """tf.keras' layer names of one block (its unnamed padding and sum: Keras' automatic names)."""
    templates = {
        "0_conv": "{p}_projection_conv", "0_bn": "{p}_projection_batch_norm", "0_pool": "{p}_projection_pooling",
        "0_unit": "{p}_projection", "shortcut": "{p}_projection_shortcut",
        "1_conv": "{p}_conv_1", "1_bn": "{p}batch_norm_1", "1_relu": "{p}_act_1", "1_unit": "{p}_unit_1",
        "2_conv": "{p}_conv_2", "2_bn": "{p}_batch_norm_2", "2_relu": "{p}_act_2", "2_unit": "{p}_unit_2",
        "3_conv": "{p}_conv_3", "3_bn": "{p}_batch_norm_3", "3_unit": "{p}_unit_3",
        **{f"se_{role}": f"{{p}}_se_se_{keras_role}" for role, keras_role in (
            ("pool", "squeeze"), ("reshape", "reshape"), ("reduce", "reduce"), ("expand", "expand"),
            ("excite", "excite"))},
        "se": "{p}_se", "drop": "{p}_drop", "out": "{p}_output_act", "body": "{p}_body",
    }
    if strided:
        templates["2_pad"] = auto("zero_padding2d")
    templates["add"] = auto("add")
    return Names(prefix, templates)


def stem(auto: AutoNames) -> Chain:
    """Four 3x3 conv-BN-ReLU (32, 32, 64, 64 channels; the first and last strided, after a fixed padding)."""
    layers: list = []
    for i, (filters, strides) in enumerate(((32, 2), (32, 1), (64, 1), (64, 2)), start=1):
        if strides > 1:
            layers.append(keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name=auto("zero_padding2d")))
        layers.append(ConvBNAct(
            filters, 3, strides, padding="valid" if strides > 1 else "same", bn_epsilon=BN_EPSILON,
            bn_momentum=BN_MOMENTUM, names=Names("", {
                "conv": f"{STEM}_stem_conv_{i}", "bn": f"{STEM}_stem_batch_norm_{i}", "act": f"{STEM}_stem_act_{i}",
                "block": f"{STEM}_stem_unit_{i}"}),
        ))
    return Chain(layers, name=STEM)


def body(options: ResNetRSOptions, input_shape: tuple) -> list:
    variant, auto = VARIANTS[options.depth], AutoNames()
    blocks: list = []
    if options.include_preprocessing:
        layers: list = [keras.layers.Rescaling(1.0 / 255, name=auto("rescaling"))]
        if input_shape[2] == 3:
            layers.append(keras.layers.Normalization(
                mean=list(MEAN), variance=[s**2 for s in STD], axis=channel_axis(resolve_data_format(None)),
                name=auto("normalization")))
        blocks.append(Chain(layers, name="preprocessing"))
    blocks.append(stem(auto))
    for stage, (width, stride, repeats) in enumerate(zip(WIDTHS, STRIDES, variant.repeats)):
        group = f"BlockGroup{stage + 2}_"
        blocks.append(Chain([
            Bottleneck(
                width, stride if i == 0 else 1, conv_shortcut=i == 0, use_bias=False, bn_epsilon=BN_EPSILON,
                bn_momentum=BN_MOMENTUM, stride_at="middle", avg_down=True, skip_first=False,
                squeeze_filters=max(1, int(width * 4 * SQUEEZE_RATIO)), drop_rate=drop_rate(variant, stage),
                names=block_names(f"{group}_block_{i}_", auto, strided=i == 0 and stride > 1),
            ) for i in range(repeats)
        ], name=f"BlockGroup{stage + 2}"))
    return blocks


def top(options: ResNetRSOptions, classes: int, activation: Any) -> DenseClassifier:
    """``avg_pool``, ``top_dropout`` (0.25, or 0.4 for 350 and 420 layers), ``predictions``."""
    return DenseClassifier(classes, activation=activation, dropout=VARIANTS[options.depth].dropout,
                           pool_name="avg_pool")


_NAMED_WEIGHTS = re.compile(r"imagenet-i(\d+)")


@dataclasses.dataclass(frozen=True)
class ResNetRSOptions(Options):
    """The depth (a key of :data:`VARIANTS`, fixed by each model), ``include_preprocessing``, and
    the resolution of the ImageNet file that ``weights`` names (None for other weights)."""

    depth: int
    include_preprocessing: bool
    weights_resolution: int | None

    @classmethod
    def from_arguments(cls, values: Mapping[str, Any], standard: Mapping[str, Any]) -> "ResNetRSOptions":
        weights, resolutions = standard["weights"], VARIANTS[values["depth"]].resolutions
        match = _NAMED_WEIGHTS.fullmatch(weights) if isinstance(weights, str) else None
        resolution = max(resolutions) if weights == "imagenet" else int(match.group(1)) if match else None
        return cls(**values, weights_resolution=resolution)

    def named_weights(self, weights: Any) -> Any:
        if not (isinstance(weights, str) and _NAMED_WEIGHTS.fullmatch(weights)):
            return weights
        resolutions = VARIANTS[self.depth].resolutions
        if self.weights_resolution not in resolutions:
            named = ", ".join(repr(f"imagenet-i{r}") for r in resolutions)
            raise ValueError(
                f"`weights` must be None, 'imagenet' (the file trained at {max(resolutions)} px), one of {named} "
                f"or the path to a weights file for ResNetRS{self.depth}. Received: weights={weights!r}"
            )
        return "imagenet"

    def check(self, weights: Any) -> None:
        validation.check_bool("include_preprocessing", self.include_preprocessing)

    def weights_variant(self, input_shape: tuple) -> dict:
        return {"resolution": self.weights_resolution}

    def model_name(self, input_shape: tuple, weights: Any) -> str:
        return f"resnet-rs-{self.depth}"


def resnet_rs_spec(depth: int) -> ModelSpec:
    info = VARIANTS[depth]
    return ModelSpec(
        name=f"resnet_rs{depth}", keras_name=f"ResNetRS{depth}", family="resnet_rs", body=body, top=top,
        no_top=no_top, default_size=224, min_size=32, options=ResNetRSOptions, fixed={"depth": depth},
        fixed_size_top=False, params=info.params, flops=info.flops, top1=None, top5=None,
        reference="Bello et al. 2021, Revisiting ResNets: Improved Training and Scaling Strategies",
    )


SPECS = {f"resnet_rs{depth}": resnet_rs_spec(depth) for depth in VARIANTS}


@register(SPECS["resnet_rs50"])
def ResNetRS50(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
               classifier_activation="softmax", include_preprocessing=True, *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-50 (stages of 3, 4, 6, 3 blocks; ImageNet files at 160 px).

    The arguments (and their order) are those of ``tf.keras.applications.ResNetRS50``:
    ``weights="imagenet"`` loads the file trained at the largest resolution,
    ``"imagenet-i160"`` and the like one of the others (:data:`VARIANTS`); ``include_preprocessing``
    normalizes pixels in [0, 255] inside the model. The model is named ``resnet-rs-50``. Keyword-only
    ``builder`` is ``"functional"`` (a flat graph with tf.keras' layer names, the default) or
    ``"sequential"`` (a ``keras.Sequential`` of the stem and one block per stage).

    >>> import kapps
    >>> kapps.ResNetRS50(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 2048)
    """
    return build_model(**SPECS["resnet_rs50"].bind(locals()))


@register(SPECS["resnet_rs101"])
def ResNetRS101(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
                classifier_activation="softmax", include_preprocessing=True, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-101 (stages of 3, 4, 23, 3 blocks; files at 160, 192 px); as :func:`ResNetRS50`.

    >>> import kapps
    >>> kapps.model_info("resnet_rs101")["keras_name"]
    'ResNetRS101'
    """
    return build_model(**SPECS["resnet_rs101"].bind(locals()))


@register(SPECS["resnet_rs152"])
def ResNetRS152(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
                classifier_activation="softmax", include_preprocessing=True, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-152 (stages of 3, 8, 36, 3 blocks; files at 192, 224, 256 px); as :func:`ResNetRS50`.

    >>> import kapps
    >>> kapps.model_info("resnet_rs152")["keras_name"]
    'ResNetRS152'
    """
    return build_model(**SPECS["resnet_rs152"].bind(locals()))


@register(SPECS["resnet_rs200"])
def ResNetRS200(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
                classifier_activation="softmax", include_preprocessing=True, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-200 (stages of 3, 24, 36, 3 blocks; files at 256 px); as :func:`ResNetRS50`.

    >>> import kapps
    >>> kapps.model_info("resnet_rs200")["keras_name"]
    'ResNetRS200'
    """
    return build_model(**SPECS["resnet_rs200"].bind(locals()))


@register(SPECS["resnet_rs270"])
def ResNetRS270(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
                classifier_activation="softmax", include_preprocessing=True, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-270 (stages of 4, 29, 53, 4 blocks; files at 256 px); as :func:`ResNetRS50`.

    >>> import kapps
    >>> kapps.model_info("resnet_rs270")["keras_name"]
    'ResNetRS270'
    """
    return build_model(**SPECS["resnet_rs270"].bind(locals()))


@register(SPECS["resnet_rs350"])
def ResNetRS350(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
                classifier_activation="softmax", include_preprocessing=True, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-350 (stages of 4, 36, 72, 4 blocks; files at 256, 320 px); as :func:`ResNetRS50`.

    >>> import kapps
    >>> kapps.model_info("resnet_rs350")["keras_name"]
    'ResNetRS350'
    """
    return build_model(**SPECS["resnet_rs350"].bind(locals()))


@register(SPECS["resnet_rs420"])
def ResNetRS420(include_top=True, weights="imagenet", classes=1000, input_shape=None, input_tensor=None, pooling=None,
                classifier_activation="softmax", include_preprocessing=True, *,
                builder: str = "functional",
                features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ResNet-RS-420 (stages of 4, 44, 87, 4 blocks; files at 320 px); as :func:`ResNetRS50`.

    >>> import kapps
    >>> kapps.model_info("resnet_rs420")["keras_name"]
    'ResNetRS420'
    """
    return build_model(**SPECS["resnet_rs420"].bind(locals()))
