"""kapps: the keras.applications model zoo, rebuilt on shared blocks, and more.

>>> import kapps
>>> model = kapps.MobileNetV2(weights=None)           # same layers as keras.applications
>>> seq = kapps.MobileNetV2(weights=None, builder="sequential")  # a Sequential of blocks
>>> "mobilenet_v2" in kapps.list_models()
True
"""

from __future__ import annotations

import sys as _sys

from kapps import blocks, images, weights
from kapps.errors import (
    DownloadError,
    KappsError,
    WeightsIntegrityError,
    WeightsMismatchError,
    WeightsNotFoundError,
)
from kapps.imagenet import decode_predictions, preprocess_input
from kapps.models import load_all as _load_all
from kapps.registry import get_model, list_models, model_info

__version__ = "0.1.0"

_FAMILIES = _load_all()
_PUBLIC_MODELS: list[str] = []
for _module_name, _module in _FAMILIES.items():
    # kapps.mobilenet_v2 is the family module, as keras.applications.mobilenet_v2 is.
    globals()[_module_name] = _module
    _sys.modules[f"{__name__}.{_module_name}"] = _module
    for _export in getattr(_module, "__all__", ()):
        if _export[:1].isupper():
            globals()[_export] = getattr(_module, _export)
            _PUBLIC_MODELS.append(_export)

__all__ = [
    "blocks", "images", "weights", "list_models", "get_model", "model_info", "decode_predictions",
    "preprocess_input", "KappsError", "WeightsNotFoundError", "WeightsIntegrityError",
    "WeightsMismatchError", "DownloadError", *sorted(_FAMILIES), *sorted(set(_PUBLIC_MODELS)),
]

from kapps.finetune import fine_tune, evaluate  # noqa: E402
__all__ += ["fine_tune", "evaluate"]

from kapps.tools.optimize import optimize_for_inference  # noqa: E402
from kapps.tools.export import export  # noqa: E402
__all__ += ["optimize_for_inference", "export"]
