"""Explicit zero padding that reproduces TensorFlow's SAME padding for strided convs."""

from __future__ import annotations

__all__ = ["same_padding_for_stride"]

from typing import Any


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def same_padding_for_stride(
    input_shape: Any, kernel_size: int | tuple[int, int], mode: str = "correct", data_format: str = "channels_last"
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding ``((top, bottom), (left, right))`` to put before a stride-2 valid conv.

    ``mode="correct"`` pads like TensorFlow's SAME for the actual (even or odd) input
    size, and like an even size when the size is unknown; ``mode="bottom_right"``
    always pads ``kernel // 2`` pixels at the bottom and right only. ``data_format``
    says where the rows and columns of ``input_shape`` are.

    >>> same_padding_for_stride((None, 224, 224, 3), 3)
    ((0, 1), (0, 1))
    >>> same_padding_for_stride((None, 225, 225, 3), 3)
    ((1, 1), (1, 1))
    >>> same_padding_for_stride((None, 3, 225, 224), 3, data_format="channels_first")
    ((1, 1), (0, 1))
    >>> same_padding_for_stride((None, None, None, 3), 5, "bottom_right")
    ((0, 2), (0, 2))
    """
    kh, kw = _pair(kernel_size)
    if mode == "bottom_right":
        return ((0, kh // 2), (0, kw // 2))
    if mode != "correct":
        raise ValueError(f"`mode` must be 'correct' or 'bottom_right'. Received: mode={mode!r}")
    rows, cols = input_shape[-2:] if data_format == "channels_first" else input_shape[1:3]
    adjust_r = 1 if rows is None else 1 - rows % 2
    adjust_c = 1 if cols is None else 1 - cols % 2
    return ((kh // 2 - adjust_r, kh // 2), (kw // 2 - adjust_c, kw // 2))
