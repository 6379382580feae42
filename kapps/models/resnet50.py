"""``kapps.resnet50``: keras.applications.resnet50's names, re-exported from :mod:`kapps.resnet`.

ResNet50 is defined (and registered, once) in :mod:`kapps.models.resnet`; this module
only mirrors keras.applications' second import path for it.

>>> import kapps
>>> kapps.resnet50.ResNet50 is kapps.resnet.ResNet50
True
"""

from __future__ import annotations

from kapps.models.resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]
