"""Semantic segmentation on any kapps encoder: :func:`UNet` and :func:`DeepLabV3Plus`.

Each model is a Functional graph grown from a kapps model built with ``features_only=True``
(its layers, names and ``encoder_weights`` included) and decoder blocks from
:mod:`kapps.blocks` (:class:`~kapps.blocks.DecoderStage`, :class:`~kapps.blocks.ASPP`,
:class:`~kapps.blocks.SegmentationHead`). Inputs are preprocessed as the encoder's
classifier expects (``kapps.registry.get_spec(backbone).preprocessing``).

>>> import kapps
>>> model = kapps.segmentation.UNet("mobilenet_v2", input_shape=(64, 64, 3), classes=3, encoder_weights=None)
>>> model.output_shape
(None, 64, 64, 3)
"""

from __future__ import annotations

from kapps.segmentation.deeplab import DeepLabV3Plus
from kapps.segmentation.unet import UNet

__all__ = ["DeepLabV3Plus", "UNet"]
