"""VGG19 (Simonyan & Zisserman 2015): configuration "E", 16 3x3 convolutions and 3 dense layers."""

from __future__ import annotations

import keras

from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.models.vgg16 import vgg_spec
from kapps.registry import family_preprocessor, register

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]

preprocess_input = family_preprocessor("caffe")

SPEC = vgg_spec("vgg19", "VGG19", 143_667_240, 39_264_124_928, 71.3, 90.0)


@register(SPEC)
def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg19", *, builder: str = "functional",
          features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """VGG19, with keras.applications' signature and layer names (see :func:`kapps.VGG16`).

    >>> import kapps
    >>> kapps.VGG19(weights=None, include_top=False, pooling="avg").output_shape
    (None, 512)
    """
    return build_model(**SPEC.bind(locals()))
