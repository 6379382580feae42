"""DeepLabV3+ (Chen et al. 2018) on any kapps encoder."""

from __future__ import annotations

__all__ = ["DeepLabV3Plus"]

from typing import Any, Sequence

import keras

from kapps.blocks import ASPP, DecoderStage, SegmentationHead
from kapps.segmentation import encoders
from kapps.validation import check_choice

#: Output strides DeepLabV3+ accepts (each only if the encoder has a feature map at that reduction).
OUTPUT_STRIDES = (8, 16, 32)
#: The ASPP's and decoder's channels, and the low-level projection's (the paper's 256 and 48).
ASPP_FILTERS = 256
LOW_LEVEL_FILTERS = 48
#: The reduction of the low-level feature map the decoder concatenates.
LOW_LEVEL_REDUCTION = 4


def DeepLabV3Plus(
    backbone: str = "mobilenet_v2",
    input_shape: tuple[int, int, int] = (256, 256, 3),
    classes: int = 2,
    activation: str | None = "softmax",
    encoder_weights: Any = "imagenet",
    encoder_freeze: bool = False,
    output_stride: int = 16,
    atrous_rates: Sequence[int] = (6, 12, 18),
    *,
    builder: str = "functional",
    name: str | None = None,
) -> keras.Model:
    """DeepLabV3+: ASPP on a deep encoder feature map, a light decoder with a low-level skip.

    The encoder's feature map at reduction ``output_stride`` goes through ASPP (a 1x1
    convolution, three 3x3 atrous convolutions at ``atrous_rates`` scaled by
    ``16 / output_stride``, and image pooling; each conv-BN-ReLU; concatenated and projected
    by a 1x1 conv-BN-ReLU to 256), is upsampled bilinearly to the reduction-4 feature map
    and concatenated with that map's 1x1 conv-BN-ReLU projection to 48 channels; two 3x3
    conv-BN-ReLU (256), a 1x1 convolution to ``classes``, bilinear upsampling to the input
    size and ``activation`` follow.

    The encoder is used as published: kapps does not trade its last strides for dilation
    (the paper's atrous encoder), so ``output_stride=16`` takes the encoder's own
    reduction-16 feature map (32 and 8 the reduction-32 and -8 maps), and the encoder's layers
    beyond it are left out of the model.

    The model takes the encoder's *preprocessed* input, as the classifiers do:
    ``kapps.registry.get_spec(backbone).preprocessing`` names the mode (for MobileNetV2,
    ``kapps.mobilenet_v2.preprocess_input``).

    Args:
        backbone: a registered model name (``kapps.list_models()``).
        input_shape: ``(rows, cols, channels)`` (channels first under that data format);
            rows and cols multiples of ``output_stride``.
        classes: output channels; 1 with ``activation="sigmoid"`` for binary masks.
        activation: a Keras activation name applied to the output, or None (logits).
        encoder_weights: ``"imagenet"``, None or a weights file of the backbone.
        encoder_freeze: make every encoder layer non-trainable (BatchNorm included).
        output_stride: 8, 16 or 32: the reduction of the feature map ASPP reads.
        atrous_rates: ASPP's dilation rates at output stride 16.
        builder: ``"functional"`` spreads every block's layers into the graph;
            ``"sequential"`` keeps each block (ASPP, decoder, head) whole, one layer.
        name: the model's name (default ``"deeplabv3plus_<backbone>"``).

    >>> import kapps
    >>> model = kapps.segmentation.DeepLabV3Plus(input_shape=(64, 64, 3), classes=3, encoder_weights=None)
    >>> model.output_shape
    (None, 64, 64, 3)
    """
    size = encoders.check_arguments(input_shape=input_shape, classes=classes, activation=activation,
                                    encoder_weights=encoder_weights, encoder_freeze=encoder_freeze, builder=builder)
    check_choice("output_stride", output_stride, OUTPUT_STRIDES)
    rates = encoders.check_positive_ints("atrous_rates", atrous_rates)
    if backbone is None:
        encoders.fail("backbone", backbone, "a registered model name (DeepLabV3Plus has no encoder of its own)")
    backbone = encoders.resolve_backbone(backbone)
    encoder = encoders.build_encoder(backbone, input_shape, encoder_weights, builder)
    features = encoders.levels(encoder)
    if output_stride not in features:
        encoders.fail("output_stride", output_stride,
                      f"a reduction the {backbone} encoder has a feature map at ({_reductions(features)})")
    if LOW_LEVEL_REDUCTION not in features:
        encoders.fail("backbone", backbone, f"an encoder with a reduction-{LOW_LEVEL_REDUCTION} feature map "
                      f"(this one has {_reductions(features)})")
    encoders.check_divisible(input_shape, size, output_stride, "the output stride")
    if encoder_freeze:
        encoders.freeze(encoder)
    scaled = tuple(max(1, round(rate * 16 / output_stride)) for rate in rates)
    x = encoders.place(ASPP(ASPP_FILTERS, scaled, names="aspp_"), features[output_stride], builder)
    decoder = DecoderStage(ASPP_FILTERS, scale=output_stride // LOW_LEVEL_REDUCTION, skip_filters=LOW_LEVEL_FILTERS,
                           names="decoder_")
    x = encoders.place(decoder, [x, features[LOW_LEVEL_REDUCTION]], builder)
    outputs = encoders.place(SegmentationHead(classes, activation, size=size[:2], names="segmentation_head_"), x,
                             builder)
    return keras.Model(encoder.inputs[0], outputs, name=name or f"deeplabv3plus_{backbone}")


def _reductions(features: dict) -> str:
    return ", ".join(str(r) for r in sorted(features))
