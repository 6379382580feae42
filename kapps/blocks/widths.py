"""Channel-width arithmetic shared by the width-multiplier families."""

from __future__ import annotations

__all__ = ["make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor``, never more than 10% below it.

    The rule of the MobileNetV2, MobileNetV3 and EfficientNet reference code.

    >>> make_divisible(32 * 0.35)
    16
    >>> make_divisible(1280 * 1.4)
    1792
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
