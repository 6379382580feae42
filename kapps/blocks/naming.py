"""Reproducing Keras' automatic layer names (``conv2d``, ``conv2d_1``, ...).

Some keras.applications families (InceptionV3, InceptionResNetV2) leave most layers
unnamed, so Keras names them by class in creation order. A family that must match
those names creates its layers in the same order and asks :class:`AutoNames` for
each name, which makes the names independent of what else the session has built.

Names already taken by the layers of a user's ``input_tensor`` graph are skipped, as
Keras' session-wide counter skips them: declare them with :func:`reserved_names`
around the building of the model.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterable, Iterator

__all__ = ["AutoNames", "reserved_names"]

_RESERVED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("kapps_reserved_names", default=frozenset())


@contextlib.contextmanager
def reserved_names(names: Iterable[str]) -> Iterator[None]:
    """Within this context, :class:`AutoNames` made here never hand out one of ``names``.

    >>> with reserved_names(["conv2d"]):
    ...     names = AutoNames()
    >>> [names("conv2d"), names("conv2d")]
    ['conv2d_1', 'conv2d_2']
    """
    token = _RESERVED.set(frozenset(names))
    try:
        yield
    finally:
        _RESERVED.reset(token)


class AutoNames:
    """Keras' naming rule for unnamed layers, per model: ``prefix``, ``prefix_1``, ...

    Keras names the first unnamed ``Conv2D`` of a fresh session ``conv2d``, the next
    ``conv2d_1``, and so on, with one counter per prefix; named layers do not count.
    Names in ``reserved`` (default: those of the enclosing :func:`reserved_names`)
    are skipped.

    >>> names = AutoNames()
    >>> [names("conv2d"), names("batch_normalization"), names("conv2d")]
    ['conv2d', 'batch_normalization', 'conv2d_1']
    >>> AutoNames(reserved={"add", "add_1"})("add")
    'add_2'
    """

    def __init__(self, reserved: Iterable[str] | None = None) -> None:
        self._counts: dict[str, int] = {}
        self._reserved = _RESERVED.get() if reserved is None else frozenset(reserved)

    def __call__(self, prefix: str) -> str:
        while True:
            count = self._counts.get(prefix, 0)
            self._counts[prefix] = count + 1
            name = prefix if count == 0 else f"{prefix}_{count}"
            if name not in self._reserved:
                return name
