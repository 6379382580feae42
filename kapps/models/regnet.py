"""RegNetX and RegNetY (Radosavovic et al. 2020, "Designing Network Design Spaces").

A stem (3x3/2 conv-BN-ReLU, 32 channels) and four stages of
:class:`~kapps.blocks.GroupedBottleneck`, each stage starting with a strided block; a
model is its depths, widths and group width (tf.keras' ``MODEL_CONFIGS``). The X block
has no squeeze-excite; the Y block adds one whose reduction is a quarter of the block's
input width. ``RegNetX016`` is the X design space at about 1.6 GFLOPs (1600 MF).

keras.applications of Keras 3 has no RegNet: the reference is tf.keras
(``tf_keras.applications.regnet``), whose layer names, hyperparameters, weight files and
signatures these models keep. The models rescale their input to [0, 1] themselves
(``include_preprocessing=True``, pass pixels in [0, 255]), so :func:`preprocess_input` is
the identity. Layer names start with ``model_name`` (``regnetx002_Stage_0_XBlock_0_conv_3x3``);
with ``weights="imagenet"`` they start with the variant's own name whatever ``model_name``
is, so that the official files load.

Two deliberate differences from tf.keras:

* ``classifier_activation`` is applied (tf.keras' RegNet top returns logits whatever it is
  given), so ``RegNetX002()`` predicts probabilities as every other kapps classifier does;
* tf.keras computes the squeeze-excite product and the residual sum with TensorFlow
  operations (``tf.math.multiply``, ``+``), which become weightless ``TFOpLambda`` layers with
  session-numbered names; here they are ``Multiply`` and ``Add`` layers named after their
  block (``..._squeeze_and_excite_multiply``, ``..._add``). Every layer with weights has
  tf.keras' name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import keras

from kapps.blocks import AutoNames, Chain, ConvBNAct, DenseClassifier, GroupedBottleneck, Names, PoolingHead
from kapps import validation
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = [
    "RegNetX002", "RegNetX004", "RegNetX006", "RegNetX008", "RegNetX016", "RegNetX032",
    "RegNetX040", "RegNetX064", "RegNetX080", "RegNetX120", "RegNetX160", "RegNetX320",
    "RegNetY002", "RegNetY004", "RegNetY006", "RegNetY008", "RegNetY016", "RegNetY032",
    "RegNetY040", "RegNetY064", "RegNetY080", "RegNetY120", "RegNetY160", "RegNetY320",
    "preprocess_input", "decode_predictions",
]


class Variant(NamedTuple):
    """One model: blocks and output channels of the four stages, channels per group."""

    depths: tuple[int, int, int, int]
    widths: tuple[int, int, int, int]
    group_width: int
    params: int
    flops: int


#: tf.keras' MODEL_CONFIGS (the paper's Tables, as pycls published them), by variant.
VARIANTS: dict[str, Variant] = {
    "x002": Variant((1, 1, 4, 7), (24, 56, 152, 368), 8, 2_705_640, 398_079_744),
    "x004": Variant((1, 2, 7, 12), (32, 64, 160, 384), 16, 5_194_184, 795_355_136),
    "x006": Variant((1, 3, 5, 7), (48, 96, 240, 528), 24, 6_229_320, 1_201_780_224),
    "x008": Variant((1, 3, 7, 5), (64, 128, 288, 672), 16, 7_296_968, 1_599_399_424),
    "x016": Variant((2, 4, 10, 2), (72, 168, 408, 912), 24, 9_233_640, 3_205_699_584),
    "x032": Variant((2, 6, 15, 2), (96, 192, 432, 1008), 48, 15_359_112, 6_353_243_904),
    "x040": Variant((2, 5, 14, 2), (80, 240, 560, 1360), 40, 22_194_312, 7_928_997_632),
    "x064": Variant((2, 4, 10, 1), (168, 392, 784, 1624), 56, 26_283_464, 12_920_582_528),
    "x080": Variant((2, 5, 15, 1), (80, 240, 720, 1920), 120, 39_663_112, 15_990_264_832),
    "x120": Variant((2, 5, 11, 1), (224, 448, 896, 2240), 112, 46_202_440, 24_173_356_032),
    "x160": Variant((2, 6, 13, 1), (256, 512, 896, 2048), 128, 54_389_704, 31_881_510_912),
    "x320": Variant((2, 7, 13, 1), (336, 672, 1344, 2520), 168, 107_973_576, 63_471_859_584),
    "y002": Variant((1, 1, 4, 7), (24, 56, 152, 368), 8, 3_183_844, 399_028_160),
    "y004": Variant((1, 3, 6, 6), (48, 104, 208, 440), 8, 4_371_296, 803_685_696),
    "y006": Variant((1, 3, 7, 4), (48, 112, 256, 608), 16, 6_084_920, 1_202_441_984),
    "y008": Variant((1, 3, 8, 2), (64, 128, 320, 768), 16, 6_293_056, 1_594_353_664),
    "y016": Variant((2, 6, 17, 2), (48, 120, 336, 888), 24, 11_255_102, 3_224_152_320),
    "y032": Variant((2, 5, 13, 1), (72, 216, 576, 1512), 24, 19_502_498, 6_352_965_504),
    "y040": Variant((2, 6, 12, 2), (128, 192, 512, 1088), 64, 20_708_928, 7_946_576_896),
    "y064": Variant((2, 7, 14, 2), (144, 288, 576, 1296), 72, 30_665_684, 12_710_409_984),
    "y080": Variant((2, 4, 10, 1), (168, 448, 896, 2016), 56, 39_265_812, 15_926_114_624),
    "y120": Variant((2, 5, 11, 1), (224, 448, 896, 2240), 112, 51_918_928, 24_184_753_152),
    "y160": Variant((2, 4, 11, 1), (224, 448, 1232, 3024), 112, 83_712_956, 31_823_020_544),
    "y320": Variant((2, 5, 12, 1), (232, 696, 1392, 3712), 232, 145_205_058, 64_559_105_664),
}
STEM_FILTERS = 32
SQUEEZE_RATIO = 0.25  # of the block's input channels (Y blocks)
BN_EPSILON, BN_MOMENTUM = 1e-5, 0.9
#: tf.keras names the classifier after a session counter (``backend.get_uid("head")``), which
#: is 1 for the first model of a session: ``1_head_gap``, ``1head_dense``.
HEAD_UID = 1

#: The models rescale inside: preprocessing is the identity.
preprocess_input = family_preprocessor("none")


def block_names(prefix: str) -> Names:
    """tf.keras' layer names of one X or Y block (``{prefix}_conv_1x1_1``, ...)."""
    return Names(prefix, {
        "shortcut_conv": "{p}_skip_1x1", "shortcut_bn": "{p}_skip_bn", "shortcut": "{p}_skip",
        "conv1": "{p}_conv_1x1_1", "bn1": "{p}_conv_1x1_1_bn", "act1": "{p}_conv_1x1_1_relu", "unit1": "{p}_unit_1",
        "conv2": "{p}_conv_3x3", "bn2": "{p}_conv_3x3_bn", "act2": "{p}_conv_3x3_relu", "unit2": "{p}_unit_2",
        "se_pool": "{p}_squeeze_and_excite_gap", "se_reduce": "{p}_squeeze_and_excite_squeeze",
        "se_expand": "{p}_squeeze_and_excite_excite", "se_excite": "{p}_squeeze_and_excite_multiply",
        "se": "{p}_squeeze_and_excite",
        "conv3": "{p}_conv_1x1_2", "bn3": "{p}_conv_1x1_2_bn", "unit3": "{p}_unit_3",
        "add": "{p}_add", "out": "{p}_exit_relu", "body": "{p}_body",
    })


def body(options: RegNetOptions, input_shape: tuple) -> list:
    p, variant = options.prefix, VARIANTS[options.variant]
    kind = options.variant[0].upper()  # "X" or "Y"
    blocks: list = []
    if options.include_preprocessing:
        blocks.append(keras.layers.Rescaling(1.0 / 255.0, name=f"{p}_prestem_rescaling"))
    blocks.append(ConvBNAct(STEM_FILTERS, 3, 2, use_bias=False, bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM,
                            names=Names("", {"conv": f"{p}_stem_conv", "bn": f"{p}_stem_bn", "act": f"{p}_stem_relu",
                                             "block": f"{p}_stem"})))
    filters_in = STEM_FILTERS
    for stage, (depth, width) in enumerate(zip(variant.depths, variant.widths)):
        stage_blocks = []
        for i in range(depth):
            channels = filters_in if i == 0 else width
            stage_blocks.append(GroupedBottleneck(
                channels, width, variant.group_width, 2 if i == 0 else 1,
                squeeze_filters=int(channels * SQUEEZE_RATIO) if kind == "Y" else None,
                bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM,
                names=block_names(f"{p}_Stage_{stage}_{kind}Block_{i}"),
            ))
        blocks.append(Chain(stage_blocks, name=f"{p}_Stage_{stage}"))
        filters_in = width
    return blocks


def top(options: RegNetOptions, classes: int, activation: Any) -> DenseClassifier:
    """Global average pooling and the classifier, tf.keras' session-numbered names (:data:`HEAD_UID`)."""
    return DenseClassifier(classes, activation=activation, pool_name=f"{HEAD_UID}_head_gap",
                           dense_name=f"{HEAD_UID}head_dense", name="head")


def no_top(options: RegNetOptions, pooling: Any) -> PoolingHead | None:
    """Optional global pooling, left unnamed by tf.keras: Keras' name for it in a fresh session."""
    if pooling is None:
        return None
    layer = {"avg": "global_average_pooling2d", "max": "global_max_pooling2d"}.get(pooling)
    return PoolingHead(pooling, pool_name=AutoNames()(layer) if layer else None)


@dataclasses.dataclass(frozen=True)
class RegNetOptions(Options):
    """The variant (a key of :data:`VARIANTS`), ``include_preprocessing``, the constructor's
    ``model_name`` (here ``name``) and the layer-name ``prefix`` derived from it (module docs)."""

    variant: str
    include_preprocessing: bool
    name: Any
    prefix: str

    @classmethod
    def from_arguments(cls, values: Mapping[str, Any], standard: Mapping[str, Any]) -> "RegNetOptions":
        values = dict(values)
        name, variant = values.pop("model_name"), values["variant"]
        own = f"regnet{variant}"
        prefix = own if standard["weights"] == "imagenet" or not isinstance(name, str) or not name else name
        return cls(**values, name=name, prefix=prefix)

    def check(self, weights: Any) -> None:
        validation.check_bool("include_preprocessing", self.include_preprocessing)
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                "`model_name` must be a non-empty string (it names the model and prefixes its layer names). "
                f"Received: model_name={self.name!r}"
            )

    def model_name(self, input_shape: tuple, weights: Any) -> str | None:
        return self.name


def regnet_spec(variant: str) -> ModelSpec:
    info = VARIANTS[variant]
    return ModelSpec(
        name=f"regnet{variant}", keras_name=f"RegNet{variant.upper()}", family="regnet", body=body, top=top,
        no_top=no_top, default_size=224, min_size=32, options=RegNetOptions, fixed={"variant": variant},
        params=info.params, flops=info.flops, top1=None, top5=None,
        reference="Radosavovic et al. 2020, Designing Network Design Spaces",
    )


SPECS = {f"regnet{variant}": regnet_spec(variant) for variant in VARIANTS}


@register(SPECS["regnetx002"])
def RegNetX002(model_name="regnetx002", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-200MF (stages of 1, 1, 4, 7 X blocks, 24 to 368 channels, groups of 8).

    The arguments are those of ``tf.keras.applications.RegNetX002``: ``model_name`` names the
    model and prefixes its layer names (except with ``weights="imagenet"``, see the module
    docs); ``include_preprocessing`` rescales pixels in [0, 255] inside the model. Keyword-only
    ``builder`` is ``"functional"`` (a flat graph with tf.keras' layer names, the default) or
    ``"sequential"`` (a ``keras.Sequential`` of the stem and one block per stage).

    >>> import kapps
    >>> kapps.RegNetX002(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 368)
    """
    return build_model(**SPECS["regnetx002"].bind(locals()))


@register(SPECS["regnetx004"])
def RegNetX004(model_name="regnetx004", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-400MF (depths 1-2-7-12, widths 32 to 384, group width 16); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx004")["keras_name"]
    'RegNetX004'
    """
    return build_model(**SPECS["regnetx004"].bind(locals()))


@register(SPECS["regnetx006"])
def RegNetX006(model_name="regnetx006", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-600MF (depths 1-3-5-7, widths 48 to 528, group width 24); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx006")["keras_name"]
    'RegNetX006'
    """
    return build_model(**SPECS["regnetx006"].bind(locals()))


@register(SPECS["regnetx008"])
def RegNetX008(model_name="regnetx008", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-800MF (depths 1-3-7-5, widths 64 to 672, group width 16); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx008")["keras_name"]
    'RegNetX008'
    """
    return build_model(**SPECS["regnetx008"].bind(locals()))


@register(SPECS["regnetx016"])
def RegNetX016(model_name="regnetx016", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-1.6GF (depths 2-4-10-2, widths 72 to 912, group width 24); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx016")["keras_name"]
    'RegNetX016'
    """
    return build_model(**SPECS["regnetx016"].bind(locals()))


@register(SPECS["regnetx032"])
def RegNetX032(model_name="regnetx032", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-3.2GF (depths 2-6-15-2, widths 96 to 1008, group width 48); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx032")["keras_name"]
    'RegNetX032'
    """
    return build_model(**SPECS["regnetx032"].bind(locals()))


@register(SPECS["regnetx040"])
def RegNetX040(model_name="regnetx040", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-4GF (depths 2-5-14-2, widths 80 to 1360, group width 40); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx040")["keras_name"]
    'RegNetX040'
    """
    return build_model(**SPECS["regnetx040"].bind(locals()))


@register(SPECS["regnetx064"])
def RegNetX064(model_name="regnetx064", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-6.4GF (depths 2-4-10-1, widths 168 to 1624, group width 56); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx064")["keras_name"]
    'RegNetX064'
    """
    return build_model(**SPECS["regnetx064"].bind(locals()))


@register(SPECS["regnetx080"])
def RegNetX080(model_name="regnetx080", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-8GF (depths 2-5-15-1, widths 80 to 1920, group width 120); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx080")["keras_name"]
    'RegNetX080'
    """
    return build_model(**SPECS["regnetx080"].bind(locals()))


@register(SPECS["regnetx120"])
def RegNetX120(model_name="regnetx120", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-12GF (depths 2-5-11-1, widths 224 to 2240, group width 112); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx120")["keras_name"]
    'RegNetX120'
    """
    return build_model(**SPECS["regnetx120"].bind(locals()))


@register(SPECS["regnetx160"])
def RegNetX160(model_name="regnetx160", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-16GF (depths 2-6-13-1, widths 256 to 2048, group width 128); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx160")["keras_name"]
    'RegNetX160'
    """
    return build_model(**SPECS["regnetx160"].bind(locals()))


@register(SPECS["regnetx320"])
def RegNetX320(model_name="regnetx320", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetX-32GF (depths 2-7-13-1, widths 336 to 2520, group width 168); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnetx320")["keras_name"]
    'RegNetX320'
    """
    return build_model(**SPECS["regnetx320"].bind(locals()))


@register(SPECS["regnety002"])
def RegNetY002(model_name="regnety002", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-200MF (depths 1-1-4-7, widths 24 to 368, group width 8); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.RegNetY002(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg").output_shape
    (None, 368)
    """
    return build_model(**SPECS["regnety002"].bind(locals()))


@register(SPECS["regnety004"])
def RegNetY004(model_name="regnety004", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-400MF (depths 1-3-6-6, widths 48 to 440, group width 8); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety004")["keras_name"]
    'RegNetY004'
    """
    return build_model(**SPECS["regnety004"].bind(locals()))


@register(SPECS["regnety006"])
def RegNetY006(model_name="regnety006", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-600MF (depths 1-3-7-4, widths 48 to 608, group width 16); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety006")["keras_name"]
    'RegNetY006'
    """
    return build_model(**SPECS["regnety006"].bind(locals()))


@register(SPECS["regnety008"])
def RegNetY008(model_name="regnety008", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-800MF (depths 1-3-8-2, widths 64 to 768, group width 16); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety008")["keras_name"]
    'RegNetY008'
    """
    return build_model(**SPECS["regnety008"].bind(locals()))


@register(SPECS["regnety016"])
def RegNetY016(model_name="regnety016", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-1.6GF (depths 2-6-17-2, widths 48 to 888, group width 24); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety016")["keras_name"]
    'RegNetY016'
    """
    return build_model(**SPECS["regnety016"].bind(locals()))


@register(SPECS["regnety032"])
def RegNetY032(model_name="regnety032", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-3.2GF (depths 2-5-13-1, widths 72 to 1512, group width 24); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety032")["keras_name"]
    'RegNetY032'
    """
    return build_model(**SPECS["regnety032"].bind(locals()))


@register(SPECS["regnety040"])
def RegNetY040(model_name="regnety040", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-4GF (depths 2-6-12-2, widths 128 to 1088, group width 64); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety040")["keras_name"]
    'RegNetY040'
    """
    return build_model(**SPECS["regnety040"].bind(locals()))


@register(SPECS["regnety064"])
def RegNetY064(model_name="regnety064", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-6.4GF (depths 2-7-14-2, widths 144 to 1296, group width 72); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety064")["keras_name"]
    'RegNetY064'
    """
    return build_model(**SPECS["regnety064"].bind(locals()))


@register(SPECS["regnety080"])
def RegNetY080(model_name="regnety080", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-8GF (depths 2-4-10-1, widths 168 to 2016, group width 56); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety080")["keras_name"]
    'RegNetY080'
    """
    return build_model(**SPECS["regnety080"].bind(locals()))


@register(SPECS["regnety120"])
def RegNetY120(model_name="regnety120", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-12GF (depths 2-5-11-1, widths 224 to 2240, group width 112); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety120")["keras_name"]
    'RegNetY120'
    """
    return build_model(**SPECS["regnety120"].bind(locals()))


@register(SPECS["regnety160"])
def RegNetY160(model_name="regnety160", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-16GF (depths 2-4-11-1, widths 224 to 3024, group width 112); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety160")["keras_name"]
    'RegNetY160'
    """
    return build_model(**SPECS["regnety160"].bind(locals()))


@register(SPECS["regnety320"])
def RegNetY320(model_name="regnety320", include_top=True, include_preprocessing=True, weights="imagenet",
               input_tensor=None, input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", *,
               builder: str = "functional",
               features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """RegNetY-32GF (depths 2-5-12-1, widths 232 to 3712, group width 232); as :func:`RegNetX002`.

    >>> import kapps
    >>> kapps.model_info("regnety320")["keras_name"]
    'RegNetY320'
    """
    return build_model(**SPECS["regnety320"].bind(locals()))
