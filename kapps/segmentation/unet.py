"""U-Net (Ronneberger et al. 2015) on any kapps encoder, or with the paper's own encoder."""

from __future__ import annotations

__all__ = ["UNet"]

from typing import Any, Sequence

import keras

from kapps.blocks import DecoderStage, SegmentationHead
from kapps.segmentation import encoders
from kapps.validation import check_choice

#: ``decoder_block`` -> :class:`~kapps.blocks.DecoderStage`'s ``upsampling``.
DECODER_BLOCKS = {"upsampling": "bilinear", "transpose": "transpose"}
DEFAULT_DECODER_FILTERS = (256, 128, 64, 32, 16)
#: The paper's expanding path (its up-convolutions halve the channels: 1024 -> 512 -> ... -> 64).
PLAIN_DECODER_FILTERS = (512, 256, 128, 64)


def UNet(
    backbone: str | None = "mobilenet_v2",
    input_shape: tuple[int, int, int] = (256, 256, 3),
    classes: int = 2,
    activation: str | None = "softmax",
    encoder_weights: Any = "imagenet",
    encoder_freeze: bool = False,
    decoder_filters: Sequence[int] = DEFAULT_DECODER_FILTERS,
    *,
    builder: str = "functional",
    decoder_block: str = "upsampling",
    name: str | None = None,
) -> keras.Model:
    """A U-Net: a kapps encoder (``features_only``) and a decoder with skip connections.

    The decoder starts from the encoder's deepest feature map and has one stage per entry
    of ``decoder_filters``; each stage upsamples x2 (``decoder_block="upsampling"``:
    bilinear ``UpSampling2D``; ``"transpose"``: a 2x2 ``Conv2DTranspose`` with stride 2),
    concatenates the encoder's feature map of that resolution (a stage at a resolution the
    encoder has no feature map for gets none, e.g. the last one), then applies two 3x3
    conv-BN-ReLU. A 1x1 convolution to ``classes`` and ``activation`` end the model, whose
    output has the input's size (bilinearly upsampled if the stages stop short of it).

    The model takes the encoder's *preprocessed* input, as the classifiers do:
    ``kapps.registry.get_spec(backbone).preprocessing`` names the mode (for MobileNetV2,
    ``kapps.mobilenet_v2.preprocess_input``).

    ``backbone=None`` builds the paper's own network: four down stages of two 3x3
    convolutions + ReLU and a 2x2 max pooling (64, 128, 256, 512 filters), a bottleneck of
    1024, and a symmetric decoder. Unlike the paper it uses "same" padding (the output has the
    input's size; the paper's valid convolutions shrink it and crop the skips) and BatchNorm
    after each convolution. Its ``encoder_weights`` must be None, its sides multiples of 16,
    and the default ``decoder_filters`` become the paper's ``(512, 256, 128, 64)``;
    ``decoder_block="transpose"`` is the paper's up-convolution.

    Args:
        backbone: a registered model name (``kapps.list_models()``) or None.
        input_shape: ``(rows, cols, channels)`` (channels first under that data format);
            rows and cols multiples of the encoder's deepest reduction (32 for most encoders).
        classes: output channels; 1 with ``activation="sigmoid"`` for binary masks.
        activation: a Keras activation name applied to the output, or None (logits).
        encoder_weights: ``"imagenet"``, None or a weights file of the backbone.
        encoder_freeze: make every encoder layer non-trainable (BatchNorm included).
        decoder_filters: channels of each decoder stage, deepest first. The default keeps
            its last stages for an encoder whose deepest reduction is below 32 (SqueezeNet,
            16: ``(128, 64, 32, 16)``; LeNet-5, 4: ``(32, 16)``).
        builder: ``"functional"`` spreads every block's layers into the graph;
            ``"sequential"`` keeps each decoder block whole, one layer (the model itself
            stays Functional: skips are not sequential).
        decoder_block: ``"upsampling"`` or ``"transpose"``.
        name: the model's name (default ``"unet_<backbone>"``, or ``"unet"``).

    >>> import kapps
    >>> model = kapps.segmentation.UNet(None, input_shape=(64, 64, 1), classes=2, encoder_weights=None)
    >>> model.output_shape
    (None, 64, 64, 2)
    """
    size = encoders.check_arguments(input_shape=input_shape, classes=classes, activation=activation,
                                    encoder_weights=encoder_weights, encoder_freeze=encoder_freeze, builder=builder)
    check_choice("decoder_block", decoder_block, tuple(DECODER_BLOCKS))
    filters = encoders.check_positive_ints("decoder_filters", decoder_filters)
    backbone = None if backbone is None else encoders.resolve_backbone(backbone)
    encoder = _encoder(backbone, input_shape, size, encoder_weights, builder)
    if backbone is None and filters == DEFAULT_DECODER_FILTERS:
        filters = PLAIN_DECODER_FILTERS
    deepest = encoder.feature_info[-1]["reduction"]
    if decoder_filters == DEFAULT_DECODER_FILTERS:  # the default fits shallower encoders: its last stages
        filters = filters[-encoders.stage_count_limit(deepest):]
    _check_stages(filters, deepest, backbone)
    encoders.check_divisible(input_shape, size, deepest, f"the deepest reduction of the {backbone or 'U-Net'} encoder")
    if encoder_freeze:
        encoders.freeze(encoder)
    skips = encoders.levels(encoder)
    x, reduction = encoder.outputs[-1], deepest
    for i, stage_filters in enumerate(filters, start=1):
        reduction //= 2
        stage = DecoderStage(stage_filters, upsampling=DECODER_BLOCKS[decoder_block], names=f"decoder_stage{i}_")
        x = encoders.place(stage, x if reduction not in skips else [x, skips[reduction]], builder)
    head = SegmentationHead(classes, activation, size=size[:2], names="segmentation_head_")
    outputs = encoders.place(head, x, builder)
    return keras.Model(encoder.inputs[0], outputs, name=name or ("unet" if backbone is None else f"unet_{backbone}"))


def _encoder(backbone: str | None, input_shape: Any, size: tuple, encoder_weights: Any, builder: str) -> keras.Model:
    """The paper's encoder for ``backbone=None``, else the feature model of ``backbone`` (a registry name)."""
    if backbone is None:
        if encoder_weights is not None:
            encoders.fail("encoder_weights", encoder_weights,
                          "None with backbone=None (the plain U-Net encoder has no pretrained weights)")
        encoders.check_divisible(input_shape, size, 16, "the plain U-Net's four 2x2 poolings")
        return encoders.plain_unet_encoder(input_shape, builder)
    return encoders.build_encoder(backbone, input_shape, encoder_weights, builder)


def _check_stages(filters: tuple, deepest: int, backbone: Any) -> None:
    """No more x2 stages than take the deepest feature map back to the input's resolution."""
    limit = encoders.stage_count_limit(deepest)
    if len(filters) > limit:
        encoders.fail("decoder_filters", filters,
                      f"at most {limit} stages for the {backbone or 'U-Net'} encoder (its deepest reduction is "
                      f"{deepest}; each stage upsamples x2)")
