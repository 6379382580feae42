"""ConvNeXt (Liu et al. 2022): a ResNet modernized stage by stage towards a vision Transformer.

Four stages of :class:`~kapps.blocks.ConvNeXtBlock` at strides 4, 8, 16 and 32, with a
4x4/4 "patchify" stem and LayerNorm + 2x2/2 convolution downsampling between stages.
The models normalize their inputs themselves (``include_preprocessing=True``): pass
pixels in [0, 255]; :func:`preprocess_input` is the identity, as in keras.applications.

Layer names are keras.applications': each starts with the model's ``name``
(``convnext_tiny_stem_conv``, ``convnext_tiny_stage_0_block_0_depthwise_conv``, ...).
With ``weights="imagenet"`` they start with the variant's name whatever ``name`` is, so
that the official files, whose layers carry those names, load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import keras

from kapps.blocks import Chain, ConvNeXtBlock, global_pool
from kapps import validation
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = [
    "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
    "preprocess_input", "decode_predictions",
]

#: Blocks per stage and channels per stage, by variant (Section 3 of the paper).
CONFIGS: dict[str, dict[str, tuple[int, ...]]] = {
    "convnext_tiny": {"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768)},
    "convnext_small": {"depths": (3, 3, 27, 3), "dims": (96, 192, 384, 768)},
    "convnext_base": {"depths": (3, 3, 27, 3), "dims": (128, 256, 512, 1024)},
    "convnext_large": {"depths": (3, 3, 27, 3), "dims": (192, 384, 768, 1536)},
    "convnext_xlarge": {"depths": (3, 3, 27, 3), "dims": (256, 512, 1024, 2048)},
}
#: Keras' published models use neither stochastic depth nor another layer-scale start.
DROP_PATH_RATE = 0.0
LAYER_SCALE_INIT_VALUE = 1e-6
LAYER_NORM_EPSILON = 1e-6
#: ImageNet mean and std, in pixels (the Normalization layer inside the model).
PIXEL_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
PIXEL_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

#: The models rescale inside: preprocessing is the identity.
preprocess_input = family_preprocessor("none")


def _layer_norm(name: str | None) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def drop_rates(depths: tuple[int, ...], drop_path_rate: float) -> list[float]:
    """Stochastic depth rate of every block, rising linearly from 0 to ``drop_path_rate``.

    >>> drop_rates((1, 2), 0.2)
    [0.0, 0.1, 0.2]
    """
    total = sum(depths)
    if total == 1:
        return [0.0]
    return [drop_path_rate * i / (total - 1) for i in range(total)]


def body(options: ConvNeXtOptions, input_shape: tuple) -> list:
    p, config = options.prefix, CONFIGS[options.variant]
    depths, dims = config["depths"], config["dims"]
    blocks: list = []
    if options.include_preprocessing and input_shape[2] == 3:
        blocks.append(keras.layers.Normalization(
            mean=list(PIXEL_MEAN), variance=[s**2 for s in PIXEL_STD], name=f"{p}_prestem_normalization",
        ))
    rates = iter(drop_rates(depths, DROP_PATH_RATE))
    for stage, (depth, dim) in enumerate(zip(depths, dims)):
        if stage == 0:
            blocks.append(Chain([
                keras.layers.Conv2D(dim, 4, strides=4, name=f"{p}_stem_conv"),
                _layer_norm(f"{p}_stem_layernorm"),
            ], name=f"{p}_stem"))
        else:
            i = stage - 1
            blocks.append(Chain([
                _layer_norm(f"{p}_downsampling_layernorm_{i}"),
                keras.layers.Conv2D(dim, 2, strides=2, name=f"{p}_downsampling_conv_{i}"),
            ], name=f"{p}_downsampling_block_{i}"))
        for j in range(depth):
            block = f"{p}_stage_{stage}_block_{j}"
            blocks.append(ConvNeXtBlock(
                dim, next(rates), LAYER_SCALE_INIT_VALUE, layer_norm_epsilon=LAYER_NORM_EPSILON,
                names=f"{block}_", name=block,
            ))
    return blocks


def top(options: ConvNeXtOptions, classes: int, activation: Any) -> Chain:
    """Global average pooling, LayerNorm, Dense (Keras' ``{name}_head_*`` layers)."""
    p = options.prefix
    return Chain([
        keras.layers.GlobalAveragePooling2D(name=f"{p}_head_gap"),
        _layer_norm(f"{p}_head_layernorm"),
        keras.layers.Dense(classes, activation=activation, name=f"{p}_head_dense"),
    ], name=f"{p}_head")


def no_top(options: ConvNeXtOptions, pooling: Any) -> Chain:
    """Optional global pooling, then a LayerNorm (always, as keras.applications does).

    Keras leaves this LayerNorm unnamed; kapps names it ``layer_normalization``, the
    name Keras gives it in a fresh session.
    """
    pool = global_pool(pooling)
    return Chain([*([pool] if pool is not None else []), _layer_norm("layer_normalization")], name="no_top_head")


@dataclasses.dataclass(frozen=True)
class ConvNeXtOptions(Options):
    """The variant (a key of :data:`CONFIGS`), ``include_preprocessing``, the constructor's
    ``name`` and the layer-name ``prefix`` derived from it (see the module docs)."""

    variant: str
    include_preprocessing: bool
    name: str | None
    prefix: str

    @classmethod
    def from_arguments(cls, values: Mapping[str, Any], standard: Mapping[str, Any]) -> "ConvNeXtOptions":
        name, variant = standard["name"], values["variant"]
        prefix = variant if standard["weights"] == "imagenet" or not isinstance(name, str) or not name else name
        return cls(**values, name=name, prefix=prefix)

    def check(self, weights: Any) -> None:
        validation.check_bool("include_preprocessing", self.include_preprocessing)
        name = self.name
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(
                f"`name` must be a non-empty string (it prefixes every layer name). Received: name={name!r}"
            )


def convnext_spec(name: str, keras_name: str, params: int, flops: int, top1: float) -> ModelSpec:
    return ModelSpec(
        name=name, keras_name=keras_name, family="convnext", body=body, top=top, no_top=no_top,
        default_size=224, min_size=32, options=ConvNeXtOptions, fixed={"variant": name},
        params=params, flops=flops, top1=top1, top5=None,
        reference="Liu et al. 2022, A ConvNet for the 2020s",
    )


SPECS = {
    "convnext_tiny": convnext_spec("convnext_tiny", "ConvNeXtTiny", 28_589_128, 8_911_062_528, 81.3),
    "convnext_small": convnext_spec("convnext_small", "ConvNeXtSmall", 50_223_688, 17_367_424_512, 82.3),
    "convnext_base": convnext_spec("convnext_base", "ConvNeXtBase", 88_591_464, 30_709_458_944, 85.3),
    "convnext_large": convnext_spec("convnext_large", "ConvNeXtLarge", 197_767_336, 68_722_867_200, 86.3),
    "convnext_xlarge": convnext_spec("convnext_xlarge", "ConvNeXtXLarge", 350_196_968, 121_842_061_312, 86.7),
}


@register(SPECS["convnext_tiny"])
def ConvNeXtTiny(include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
                 input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", name="convnext_tiny",
                 *, builder: str = "functional",
                 features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ConvNeXt-T (stages of 3, 3, 9, 3 blocks, 96 to 768 channels), with keras.applications' signature.

    Arguments are those of ``keras.applications.ConvNeXtTiny``: ``include_preprocessing``
    puts the ImageNet normalization inside the model (pass pixels in [0, 255]);
    ``name`` names the model and prefixes its layer names (except with
    ``weights="imagenet"``, see the module docs). Keyword-only ``builder`` is
    ``"functional"`` (a flat graph, the default) or ``"sequential"`` (a
    ``keras.Sequential`` of the stem, the downsampling layers, every block and the head).

    >>> import kapps
    >>> kapps.ConvNeXtTiny(weights=None, include_top=False, pooling="avg").output_shape
    (None, 768)
    """
    return build_model(**SPECS["convnext_tiny"].bind(locals()))


@register(SPECS["convnext_small"])
def ConvNeXtSmall(include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
                  input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
                  name="convnext_small", *, builder: str = "functional",
                  features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ConvNeXt-S (stages of 3, 3, 27, 3 blocks, 96 to 768 channels); arguments as :func:`ConvNeXtTiny`.

    >>> import kapps
    >>> kapps.ConvNeXtSmall(weights=None, include_top=False, input_shape=(64, 64, 3)).output_shape
    (None, 2, 2, 768)
    """
    return build_model(**SPECS["convnext_small"].bind(locals()))


@register(SPECS["convnext_base"])
def ConvNeXtBase(include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
                 input_shape=None, pooling=None, classes=1000, classifier_activation="softmax", name="convnext_base",
                 *, builder: str = "functional",
                 features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ConvNeXt-B (stages of 3, 3, 27, 3 blocks, 128 to 1024 channels); arguments as :func:`ConvNeXtTiny`.

    >>> import kapps
    >>> kapps.model_info("convnext_base")["params"]
    88591464
    """
    return build_model(**SPECS["convnext_base"].bind(locals()))


@register(SPECS["convnext_large"])
def ConvNeXtLarge(include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
                  input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
                  name="convnext_large", *, builder: str = "functional",
                  features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ConvNeXt-L (stages of 3, 3, 27, 3 blocks, 192 to 1536 channels); arguments as :func:`ConvNeXtTiny`.

    >>> import kapps
    >>> kapps.model_info("convnext_large")["params"]
    197767336
    """
    return build_model(**SPECS["convnext_large"].bind(locals()))


@register(SPECS["convnext_xlarge"])
def ConvNeXtXLarge(include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
                   input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
                   name="convnext_xlarge", *, builder: str = "functional",
                   features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """ConvNeXt-XL (stages of 3, 3, 27, 3 blocks, 256 to 2048 channels); arguments as :func:`ConvNeXtTiny`.

    >>> import kapps
    >>> kapps.model_info("convnext_xlarge")["params"]  # build it with kapps.ConvNeXtXLarge(...)
    350196968
    """
    return build_model(**SPECS["convnext_xlarge"].bind(locals()))
