"""Bicubic resampling of small grids as matrices: torch's ``interpolate(mode="bicubic", align_corners=True)``.

ViT's position embeddings are a grid of vectors, one per patch; a model at another input size
needs the grid at another size. torchvision resizes it with bicubic interpolation, corners
aligned (``torchvision.models.vision_transformer.interpolate_embeddings``). Bicubic
interpolation is separable, so resizing a ``(rows, cols)`` grid is ``R @ grid @ C^T`` with one
matrix per axis, computed here in numpy (cubic convolution with ``A = -0.75``, edge samples
repeated, as PyTorch computes it).

>>> bicubic_matrix(2, 3).round(3).tolist()
[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
"""

from __future__ import annotations

__all__ = ["bicubic_matrix", "resize_grid"]

import numpy as np

#: The cubic convolution coefficient PyTorch uses (Keys' kernel with ``A = -0.75``).
CUBIC_A = -0.75


def _cubic_weights(t: float) -> np.ndarray:
    """The four tap weights for a sample at fraction ``t`` between taps 1 and 2."""
    a = CUBIC_A

    def near(x: float) -> float:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.array([far(t + 1), near(t), near(1 - t), far(2 - t)])


def bicubic_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The ``(size_out, size_in)`` matrix of 1-D bicubic resampling, corners aligned."""
    if size_in < 1 or size_out < 1:
        raise ValueError(f"sizes must be positive. Received: size_in={size_in!r}, size_out={size_out!r}")
    matrix = np.zeros((size_out, size_in))
    scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    for i in range(size_out):
        source = scale * i
        base = int(np.floor(source))
        for tap, weight in zip(range(base - 1, base + 3), _cubic_weights(source - base)):
            matrix[i, min(max(tap, 0), size_in - 1)] += weight
    return matrix


def resize_grid(grid: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A ``(r, c, channels)`` grid resized to ``(rows, cols, channels)`` (bicubic, corners aligned).

    >>> resize_grid(np.arange(4.0).reshape(2, 2, 1), 3, 3)[..., 0].tolist()
    [[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]
    """
    r, c = grid.shape[:2]
    out = np.einsum("ir,rcd->icd", bicubic_matrix(r, rows), grid.astype("float64"))
    return np.einsum("jc,icd->ijd", bicubic_matrix(c, cols), out).astype(grid.dtype)
