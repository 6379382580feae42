"""The model a segmentation run trains, its encoder, its loss and metrics.

``image -> ImagePreprocessing -> segmentation model -> float32 probabilities``: the model takes
RGB pixels in [0, 255], as fine_tune's classifiers do, and outputs per-pixel class
probabilities at the input's size.

A run is a segmentation run when its ``train`` data are masks
(:func:`kapps.finetune.segmentation_data.is_mask_data`: a folder with ``images/`` and ``masks/``,
or a dataset of ``(image, mask)``). Its ``model`` must then be a segmentation model: a
``keras.Model`` (or a function returning one) with a per-pixel output, ``(batch, h, w, classes)``
at its input's size, as :func:`kapps.segmentation.UNet` and :func:`kapps.segmentation.DeepLabV3Plus`
make. A registry name with masks, or a kapps.segmentation model with class folders, is refused.

The encoder is what phase 1 freezes: every layer the decoder reads from, up from the input.
The decoder is told by its layer names, the prefixes :data:`DECODER_PREFIXES` that
kapps.segmentation gives every layer it adds (``decoder_*``, ``aspp_*``, ``segmentation_head_*``);
an encoder keeps its backbone's names. A frozen Keras BatchNormalization always runs on its
moving statistics, so the encoder's stay put in both phases while the decoder's train.

>>> import keras
>>> inputs = keras.Input((8, 8, 3))
>>> x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
>>> outputs = keras.layers.Conv2D(2, 1, activation="softmax", name="segmentation_head_conv")(x)
>>> model = keras.Model(inputs, outputs)
>>> is_segmentation_model(model), [layer.name for layer in encoder_of(model).layers[1:]]
(True, ['stem'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import keras

from kapps.blocks.losses import SegmentationLoss
from kapps.blocks.preprocessing import ImagePreprocessing
from kapps.finetune import segmentation_data as seg_data
from kapps.finetune.classifier import Family, base_in_scope, resolve_image_size, resolve_preprocessing, spec_for_model
from kapps.finetune.loop import Objective
from kapps.registry import get_spec

if TYPE_CHECKING:
    from kapps.finetune.config import FineTuneConfig
    from kapps.finetune.strategy import Hardware

__all__ = ["DECODER_PREFIXES", "is_segmentation_model", "is_segmentation_run", "resolve_family",
           "check_segmentation_model", "encoder_of", "build_segmenter", "build_segmentation", "objective"]

#: Name prefixes of the layers kapps.segmentation adds to an encoder (what phase 1 trains).
DECODER_PREFIXES = ("decoder_", "aspp_", "segmentation_head_")
#: Prefixes of kapps.segmentation's default model names (``unet_mobilenet_v2``): what follows is the backbone.
ARCHITECTURE_PREFIXES = ("unet_", "deeplabv3plus_")


def _shapes(model: keras.Model) -> tuple[tuple, tuple]:
    inputs, outputs = model.input_shape, model.output_shape
    return (inputs[0] if isinstance(inputs, list) else inputs), (outputs[0] if isinstance(outputs, list) else outputs)


def is_segmentation_model(model: Any) -> bool:
    """Whether ``model`` is a keras.Model whose output is ``(batch, h, w, classes)`` at its input's size."""
    if not isinstance(model, keras.Model):
        return False
    inputs, outputs = _shapes(model)
    return (len(outputs) == 4 and len(inputs) == 4 and outputs[1] is not None
            and tuple(outputs[1:3]) == tuple(inputs[1:3]))


def is_segmentation_run(config: "FineTuneConfig") -> bool:
    """Whether ``config`` asks for segmentation: its ``train`` data are masks (see the module docstring).

    Refuses a registry name with masks, and a segmentation model of kapps.segmentation (a per-pixel
    output and decoder layers) with class folders.
    """
    masks = seg_data.is_mask_data(config.train)
    model = config.model
    if masks and isinstance(model, str):
        raise ValueError(
            "`model` must be a segmentation model (e.g. kapps.segmentation.UNet(...), or a function returning one) "
            f"to train on masks; a registry name is a classifier's base. Received: model={model!r}")
    if not masks and is_segmentation_model(model) and any(layer.name.startswith(DECODER_PREFIXES)
                                                          for layer in model.layers):
        raise ValueError(
            f"`train` must be segmentation data for the segmentation model {model.name!r}: a folder with "
            "images/ and masks/ (or image/ and label/) sub-folders, or a tf.data.Dataset of (image, mask). "
            f"Received: train={config.train!r}")
    return masks


def _spec(model: Any) -> Any:
    """The registry spec of a segmentation model's encoder, from kapps.segmentation's model name, or None."""
    if not isinstance(model, keras.Model):
        return None
    for prefix in ARCHITECTURE_PREFIXES:
        if model.name.startswith(prefix):
            try:
                return get_spec(model.name[len(prefix):])
            except ValueError:
                return None
    return spec_for_model(model)


def resolve_family(config: "FineTuneConfig") -> Family:
    """Input size and preprocessing of a segmentation run (``"auto"``: the encoder's); checks the
    arguments that do not apply to segmentation."""
    if config.class_weight is not None:
        raise ValueError("`class_weight` applies to classifiers only (segmentation weighs every pixel alike). "
                         f"Received: class_weight={config.class_weight!r}")
    seg_data.check_augmentation(config.augment_layers)
    model, spec = config.model, _spec(config.model)
    mode, function = resolve_preprocessing(config.preprocessing, spec, model)
    size = resolve_image_size(config.image_size, spec, model)
    if isinstance(model, keras.Model):
        fixed = tuple(_shapes(model)[0][1:3])
        if None not in fixed and tuple(fixed) != size:
            raise ValueError(f"`image_size` must be the segmentation model's input size {fixed} (its output is made "
                             f"at that size). Received: image_size={config.image_size!r}")
    return Family(spec, size, mode, function)


def check_segmentation_model(model: Any, image_size: tuple[int, int]) -> keras.Model:
    """``model`` itself when it takes RGB at ``image_size`` and gives 2 or more class probabilities per pixel."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model or a function returning one. Received: model={model!r}")
    inputs, outputs = _shapes(model)
    if not is_segmentation_model(model) or tuple(outputs[1:3]) != tuple(image_size) or outputs[-1] < 2 \
            or inputs[-1] != 3:
        raise ValueError(
            f"`model` must be a segmentation model taking RGB images of {tuple(image_size)} (3 channels; grayscale "
            "images are fed as RGB) and giving per-pixel probabilities of 2 or more classes at that size (softmax; "
            f"for binary masks, classes=2). Received: model {model.name!r} with input {inputs} and output {outputs}")
    return model


def encoder_of(model: keras.Model) -> keras.Model:
    """A Functional view of ``model``'s encoder (same layer objects): from its input to every
    tensor a decoder layer (:data:`DECODER_PREFIXES`) reads from outside the decoder."""
    decoder = [layer for layer in model.layers if layer.name.startswith(DECODER_PREFIXES)]
    read = {id(tensor) for layer in decoder for tensor in keras.tree.flatten(layer.input)}
    taps = [layer.output for layer in model.layers if layer not in decoder
            and not isinstance(layer, keras.layers.InputLayer) and id(layer.output) in read]
    if not decoder or not taps:
        raise ValueError(
            f"`model` {model.name!r}: fine_tune cannot tell its encoder from its decoder. It trains first the layers "
            f"named {', '.join(p + '*' for p in DECODER_PREFIXES)} (as kapps.segmentation names them) on the frozen "
            "layers they read from; name your decoder's layers so.")
    encoder = keras.Model(model.inputs, taps, name=f"{model.name}_encoder")
    mixed = [layer.name for layer in encoder.layers if layer.name.startswith(DECODER_PREFIXES)]
    if mixed:
        raise ValueError(f"`model` {model.name!r}: decoder layers {mixed[:5]} feed the layers the decoder reads "
                         "from, so its encoder is not a prefix of the graph; fine_tune cannot freeze it alone.")
    return encoder


def build_segmenter(model: keras.Model, *, image_size: tuple[int, int], preprocessing: str,
                    preprocessing_function: Callable | None = None) -> keras.Model:
    """``image -> ImagePreprocessing -> model -> float32``: RGB pixels in [0, 255] in, probabilities out."""
    inputs = keras.Input((image_size[0], image_size[1], 3), name="image")
    x = ImagePreprocessing(preprocessing, preprocessing_function, name="preprocessing")(inputs)
    outputs = keras.layers.Activation("linear", dtype="float32", name="probabilities")(model(x))
    return keras.Model(inputs, outputs, name=f"{model.name}_finetuned")


def build_segmentation(config: "FineTuneConfig", family: Family,
                       hardware: "Hardware") -> tuple[keras.Model, keras.Model]:
    """``(encoder view, model to train)``, made (or cloned) in the strategy's scope."""
    with hardware.scope():
        model = config.model
        model = base_in_scope(model, hardware.strategy) if isinstance(model, keras.Model) else model()
        model = check_segmentation_model(model, family.image_size)
        encoder = encoder_of(model)  # before the model is called again, while each layer has one output
        segmenter = build_segmenter(model, image_size=family.image_size, preprocessing=family.mode,
                                    preprocessing_function=family.function)
    return encoder, segmenter


def objective(classes: int) -> Objective:
    """:class:`~kapps.blocks.losses.SegmentationLoss` (cross-entropy + Keras' Dice); pixel accuracy and
    Keras' MeanIoU, both kept in the history."""
    return Objective(
        loss=SegmentationLoss,
        metrics=lambda: [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                         keras.metrics.MeanIoU(classes, name="mean_iou", sparse_y_true=True, sparse_y_pred=False)],
        logged=("mean_iou",), phase_one="training the decoder on the frozen encoder")
