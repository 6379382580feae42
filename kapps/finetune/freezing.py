"""What each phase trains: the whole base frozen (phase 1), or its top unfrozen (phase 2).

BatchNormalization layers stay frozen in both phases (and the base is called with
``training=False``), so their statistics never move: the classic fine-tuning trap.

>>> import keras
>>> base = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
...                          keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="b")])
>>> set_trainable(base, 2, unfreeze="bn")
"unfreeze='bn': 1 layers with weights from 'bn' on (BatchNorm frozen)"
>>> [layer.trainable for layer in base.layers]
[False, False, True]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras

from kapps.utils.layers import leaf_layers

__all__ = ["weighted_layers", "cut_index", "set_trainable"]

_ACCEPTED = "`unfreeze` must be a fraction in (0, 1], a number of layers, 'all', or a layer or block name. "


def weighted_layers(base: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``base`` that own weights, at any depth, in order (what ``unfreeze`` counts)."""
    return list(leaf_layers(base))


def _cut_at_name(layers: Sequence[keras.layers.Layer], base: keras.Model, name: str) -> int:
    names = [layer.name for layer in layers]
    if name in names:
        return names.index(name)
    for top in base.layers:  # a block of the Sequential builder (or any nested layer): its first weighted layer
        if top.name == name:
            inner = {id(layer) for layer in leaf_layers(top)}
            for i, layer in enumerate(layers):
                if id(layer) in inner:
                    return i
    for i, candidate in enumerate(names):  # a block prefix, e.g. "block_13" or "conv5"
        if candidate.startswith(name):
            return i
    raise ValueError(
        f"`unfreeze` names no layer or block of {base.name!r}. Received: unfreeze={name!r}; layer names "
        f"with weights run from {names[0]!r} to {names[-1]!r} (e.g. {names[len(names) * 2 // 3]!r})."
    )


def cut_index(layers: Sequence[keras.layers.Layer], base: keras.Model, unfreeze: Any) -> int:
    """Index in ``layers`` (see :func:`weighted_layers`) of the first layer phase 2 trains."""
    n = len(layers)
    if isinstance(unfreeze, bool) or unfreeze is None:
        raise ValueError(_ACCEPTED + f"Received: unfreeze={unfreeze!r}")
    if unfreeze == "all":
        return 0
    if isinstance(unfreeze, float):
        if not 0.0 < unfreeze <= 1.0:
            raise ValueError(f"`unfreeze` as a fraction must be in (0, 1]. Received: unfreeze={unfreeze!r}")
        return n - max(1, math.ceil(unfreeze * n))
    if isinstance(unfreeze, int):
        if not 1 <= unfreeze <= n:
            raise ValueError(f"`unfreeze` as a number of layers (with weights) must be in [1, {n}]. "
                             f"Received: unfreeze={unfreeze!r}")
        return n - unfreeze
    if isinstance(unfreeze, str):
        return _cut_at_name(layers, base, unfreeze)
    raise ValueError(_ACCEPTED + f"Received: unfreeze={unfreeze!r}")


def set_trainable(base: keras.Model, phase: int, unfreeze: Any = 0.3) -> str:
    """Freeze ``base`` for phase 1; for phase 2 unfreeze its top (BatchNorm layers stay frozen).

    Returns a description of what trains, e.g. ``"30% of the base: 31 layers with weights from
    'block_13_expand' on (BatchNorm frozen)"``.
    """
    if phase == 1:
        base.trainable = False
        return "head only"
    layers = weighted_layers(base)
    if not layers:
        raise ValueError(f"`model` {base.name!r} has no layers with weights to fine-tune.")
    cut = cut_index(layers, base, unfreeze)
    base.trainable = True
    trained = 0
    for i, layer in enumerate(layers):
        batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= cut and not batch_norm
        trained += int(layer.trainable)
    if trained == 0:
        raise ValueError(f"`unfreeze`={unfreeze!r} leaves no layer to train in phase 2 (only BatchNorm layers "
                         "would be unfrozen, and they stay frozen). Unfreeze more of the base.")
    what = f"{unfreeze:.0%} of the base" if isinstance(unfreeze, float) else f"unfreeze={unfreeze!r}"
    return f"{what}: {trained} layers with weights from {layers[cut].name!r} on (BatchNorm frozen)"
