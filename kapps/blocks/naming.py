"""Reproducing Keras' automatic layer names (``conv2d``, ``conv2d_1``, ...).

Some keras.applications families (InceptionV3, InceptionResNetV2) leave most layers
unnamed, so Keras names them by class in creation order. A family that must match
those names creates its layers in the same order and asks :class:`AutoNames` for
each name, which makes the names independent of what else the session has built.
"""

from __future__ import annotations

__all__ = ["AutoNames"]


class AutoNames:
    """Keras' naming rule for unnamed layers, per model: ``prefix``, ``prefix_1``, ...

    Keras names the first unnamed ``Conv2D`` of a fresh session ``conv2d``, the next
    ``conv2d_1``, and so on, with one counter per prefix; named layers do not count.

    >>> names = AutoNames()
    >>> [names("conv2d"), names("batch_normalization"), names("conv2d")]
    ['conv2d', 'batch_normalization', 'conv2d_1']
    """

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        count = self._counts.get(prefix, 0)
        self._counts[prefix] = count + 1
        return prefix if count == 0 else f"{prefix}_{count}"
