"""Inception modules: parallel branches on one input, concatenated on channels.

An inception module (Szegedy et al. 2014) runs several *branches* side by side (each a
chain of conv-BN-act units, possibly after a pooling layer) and concatenates their
outputs. GoogLeNet's modules, InceptionV3's A/B/C and reduction blocks and the
Inception-ResNet blocks are all written as *tables* of branches:

* :class:`Conv` - one convolution unit (filters, kernel, strides, padding);
* :class:`Pool` - a pooling layer (average or max);
* :class:`Fork` - the branch splits again into sub-branches that are concatenated
  (InceptionV3's parallel 1x3 / 3x1 convolutions).

:meth:`InceptionModule.from_table` turns a table into layers; the family supplies the
factories that make the convolution and pooling layers (so that each family keeps its
own layer names and conv flavour). :class:`ScaledResidual` adds a module's output,
scaled, to its input (Szegedy et al. 2016, Inception-ResNet).

>>> import numpy as np
>>> table = ((Conv(8),), (Conv(4), Conv(8, 3)), (Pool("max"), Conv(4)))
>>> module = InceptionModule.from_table(table, make_conv=lambda c: ConvBNAct(c.filters, c.kernel), name="m")
>>> tuple(module(np.zeros((1, 8, 8, 3), "float32")).shape)
(1, 8, 8, 20)
>>> output_channels(table, 3)
20
"""

from __future__ import annotations

__all__ = ["Conv", "Pool", "Fork", "InceptionModule", "ScaleAdd", "ScaledResidual", "inception_conv",
           "output_channels", "pool_layer"]

import dataclasses
from typing import Any, Callable, Sequence, Union

import keras

from kapps._keras_compat import keras_custom_scale_layer
from kapps.blocks.activations import make_activation
from kapps.blocks.base import Block, Names
from kapps.blocks.conv import ConvBNAct
from kapps.blocks.naming import AutoNames
from kapps.blocks.residual import Chain, run_layer


@dataclasses.dataclass(frozen=True)
class Conv:
    """One convolution unit of a branch; ``role`` is a name suffix for families that use it."""

    filters: int
    kernel: int | tuple[int, int] = 1
    strides: int = 1
    padding: str = "same"
    role: str = ""


@dataclasses.dataclass(frozen=True)
class Pool:
    """A pooling layer of a branch: ``kind`` is ``"avg"`` or ``"max"``."""

    kind: str = "avg"
    size: int = 3
    strides: int = 1
    padding: str = "same"
    role: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("avg", "max"):
            raise ValueError(f"`kind` must be 'avg' or 'max'. Received: kind={self.kind!r}")


@dataclasses.dataclass(frozen=True)
class Fork:
    """The branch splits: ``branches`` run in parallel and are concatenated (named ``name``)."""

    branches: tuple
    name: str | None = None


Step = Union[Conv, Pool, Fork]
Table = Sequence[Sequence[Step]]


def output_channels(table: Table, in_channels: int) -> int:
    """Channels of a module's output: each branch's last conv filters (a pool keeps its input's)."""

    def branch(steps: Sequence[Step], channels: int) -> int:
        for step in steps:
            if isinstance(step, Conv):
                channels = step.filters
            elif isinstance(step, Fork):
                channels = sum(branch(sub, channels) for sub in step.branches)
        return channels

    return sum(branch(steps, in_channels) for steps in table)


def pool_layer(pool: Pool, name: str | None = None, data_format: str | None = None) -> keras.layers.Layer:
    """The Keras pooling layer for a :class:`Pool` table entry."""
    layer = keras.layers.AveragePooling2D if pool.kind == "avg" else keras.layers.MaxPooling2D
    return layer(pool.size, strides=pool.strides, padding=pool.padding, data_format=data_format, name=name)


def inception_conv(
    conv: Conv, names: AutoNames, *, name: str | None = None, data_format: str | None = None
) -> ConvBNAct:
    """Conv (no bias) - BatchNorm (no scale) - ReLU: the unit of InceptionV3 and Inception-ResNet.

    Named as keras.applications names it: by ``names`` (Keras' automatic names,
    ``conv2d_N``, ``batch_normalization_N``, ``activation_N``), or, given ``name``, as
    ``{name}``, ``{name}_bn``, ``{name}_ac`` (Inception-ResNet's named units).

    >>> unit = inception_conv(Conv(8, (1, 7)), AutoNames())
    >>> unit.conv.name, unit.bn.name, unit.act.name
    ('conv2d', 'batch_normalization', 'activation')
    """
    if name is None:
        conv_name = names("conv2d")
        roles = {"conv": conv_name, "bn": names("batch_normalization"), "act": names("activation")}
    else:
        conv_name = name
        roles = {"conv": name, "bn": f"{name}_bn", "act": f"{name}_ac"}
    return ConvBNAct(
        conv.filters, conv.kernel, conv.strides, padding=conv.padding, bn_scale=False, activation="relu",
        data_format=data_format,
        names=Names("", {**roles, "block": f"{conv_name}_unit"}),
    )


@keras.saving.register_keras_serializable(package="kapps")
class InceptionModule(Block):
    """Parallel branches applied to one input; their outputs concatenated on channels.

    Each branch is a block or layer, or a sequence of them applied in order; the
    Concatenate layer is named ``concat_name``.

    >>> import numpy as np
    >>> module = InceptionModule(
    ...     [ConvBNAct(8, 1, names="a_"), [ConvBNAct(4, 1, names="b1_"), ConvBNAct(8, 3, names="b2_")]],
    ...     concat_name="mixed", name="mixed_module")
    >>> tuple(module(np.zeros((1, 6, 6, 3), "float32")).shape)
    (1, 6, 6, 16)
    """

    def __init__(
        self,
        branches: Sequence[keras.layers.Layer | Sequence[keras.layers.Layer]],
        *,
        concat_name: str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.use_data_format(data_format)
        if len(branches) < 2:
            raise ValueError(f"`branches` must hold at least two branches. Received: {len(branches)} branch(es)")
        self.branches = [
            branch if isinstance(branch, keras.layers.Layer) else Chain(list(branch), name=f"{self.name}_branch{i}")
            for i, branch in enumerate(branches)
        ]
        self.concat = keras.layers.Concatenate(axis=self.channel_axis, name=concat_name)

    @classmethod
    def from_table(
        cls,
        table: Table,
        *,
        make_conv: Callable[[Conv], keras.layers.Layer],
        make_pool: Callable[[Pool], keras.layers.Layer] | None = None,
        fork_name: Callable[[Fork], str | None] = lambda fork: fork.name,
        concat_name: str | None = None,
        **kwargs: Any,
    ) -> "InceptionModule":
        """Build a module from a table of branches (see the module docs).

        Layers are made branch by branch, step by step, in table order: a family whose
        names come from a counter (:class:`~kapps.blocks.AutoNames`) gets the same names
        as a hand-written graph that creates them in that order. ``make_conv`` (and
        ``make_pool``, default :func:`pool_layer`) must build for the ``data_format`` given.
        """
        name = kwargs.get("name") or "inception"
        data_format = kwargs.get("data_format")
        if make_pool is None:
            make_pool = lambda pool: pool_layer(pool, data_format=data_format)  # noqa: E731

        def build(steps: Sequence[Step], path: str) -> list[keras.layers.Layer]:
            layers = []
            for step in steps:
                if isinstance(step, Conv):
                    layers.append(make_conv(step))
                elif isinstance(step, Pool):
                    layers.append(make_pool(step))
                elif isinstance(step, Fork):
                    subs = [build(sub, f"{path}_{j}") for j, sub in enumerate(step.branches)]
                    layers.append(cls(subs, concat_name=fork_name(step), name=f"{path}_fork",
                                      data_format=data_format))
                else:
                    raise TypeError(f"a branch step must be Conv, Pool or Fork. Received: {step!r}")
            return layers

        branches = [build(steps, f"{name}_branch{i}") for i, steps in enumerate(table)]
        return cls(branches, concat_name=concat_name, **kwargs)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        return self.concat([run_layer(branch, x, training) for branch in self.branches])


#: ``inputs[0] + inputs[1] * scale``, a residual added with a fixed scale: ``ScaleAdd(scale, name=...)``.
#: It is keras.applications' Inception-ResNet ``CustomScaleLayer`` (Keras exports it nowhere
#: public), so that kapps' Inception-ResNet files reload in plain Keras.
#:
#: >>> import numpy as np
#: >>> np.asarray(ScaleAdd(0.5)([np.ones((1, 2)), np.full((1, 2), 4.0)])).tolist()
#: [[3.0, 3.0]]
ScaleAdd = keras_custom_scale_layer()


@keras.saving.register_keras_serializable(package="kapps")
class ScaledResidual(Block):
    """``activation(x + scale * body(x))``, the Inception-ResNet block (Szegedy et al. 2016).

    ``body`` (typically an :class:`InceptionModule` followed by a linear 1x1 conv back to
    the input's channels) must keep the input's shape. Scaling the residual down
    (0.1-0.3) keeps very deep residual Inception networks stable in training.

    >>> import numpy as np
    >>> body = Chain([InceptionModule([ConvBNAct(4, 1, names="a_"), ConvBNAct(4, 3, names="b_")]),
    ...               ConvBNAct(8, 1, use_bias=True, bn=False, activation=None, names="up_")])
    >>> block = ScaledResidual(body, 0.17, scale_name="scale", act_name="out", name="res")
    >>> tuple(block(np.ones((1, 5, 5, 8), "float32")).shape)
    (1, 5, 5, 8)
    """

    def __init__(
        self,
        body: keras.layers.Layer,
        scale: float,
        *,
        activation: str | Callable | None = "relu",
        scale_name: str | None = None,
        act_name: str = "out",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.body = body
        self.scale_add = ScaleAdd(scale, name=scale_name)
        self.act = make_activation(activation, act_name)

    def compose(self, x: Any, training: bool | None = None) -> Any:
        y = self.scale_add([x, run_layer(self.body, x, training)])
        return self.act(y) if self.act is not None else y
