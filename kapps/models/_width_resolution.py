"""Shared rules of the families whose ImageNet files vary by width and resolution.

MobileNet (v1) and MobileNetV2 publish one file per (alpha, resolution): the model's
default size follows a square listed input, other sizes use the 224 px file (weights
of a network without top do not depend on the input size), and the default model
name records alpha and that resolution.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from kapps.blocks.base import image_dims, resolve_data_format
from kapps.factory import nearest_weights_size
from kapps.registry import Options


@dataclasses.dataclass(frozen=True)
class WidthResolution:
    """The variant rules for one family: its listed sizes and its name prefix.

    >>> rules = WidthResolution(sizes=(128, 224), name_prefix="mobilenet")
    >>> rules.default_model_name({"alpha": 0.5}, (128, 128, 3), "imagenet")
    'mobilenet_0.50_128'
    """

    sizes: tuple[int, ...]
    name_prefix: str
    fallback: int = 224

    def file_rows(self, input_shape: tuple) -> int:
        rows, cols, _ = input_shape  # specs see (rows, cols, channels) in either data format
        return rows if rows == cols and rows in self.sizes else self.fallback

    def weights_variant(self, options: dict, input_shape: tuple) -> dict:
        rows = nearest_weights_size(*input_shape[:2], self.sizes, self.fallback)
        return {"alpha": float(options["alpha"]), "resolution": rows}

    def default_model_name(self, options: dict, input_shape: tuple, weights: Any) -> str:
        rows = self.file_rows(input_shape) if weights == "imagenet" else input_shape[0]
        return f"{self.name_prefix}_{options['alpha']:0.2f}_{rows}"

    def default_size_for(self, shape: Any) -> int:
        rows, cols = (None, None) if shape is None else image_dims(shape, resolve_data_format(None))[:2]
        if rows is not None and rows == cols and rows in self.sizes:
            return rows
        return self.fallback


@dataclasses.dataclass(frozen=True)
class WidthResolutionOptions(Options):
    """Options of a family with one ImageNet file per (``alpha``, resolution): its ``RULES``."""

    RULES: ClassVar[WidthResolution]
    alpha: float

    def check(self, weights: Any) -> None:
        check_alpha(self.alpha)

    def weights_variant(self, input_shape: tuple) -> dict:
        return self.RULES.weights_variant(self, input_shape)

    def model_name(self, input_shape: tuple, weights: Any) -> str:
        return self.RULES.default_model_name(self, input_shape, weights)

    def default_size(self, input_shape: Any) -> int:
        return self.RULES.default_size_for(input_shape)


def check_alpha(alpha: Any) -> None:
    """``alpha`` (width multiplier) must be a positive number."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"`alpha` must be a positive number (width multiplier). Received: alpha={alpha!r}")
