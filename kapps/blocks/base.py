"""The base class every kapps block derives from.

A block is a small, named group of Keras layers (for example conv + BN + ReLU6).
It is written once and used two ways:

* as a layer: ``block(x)`` inside a ``keras.Sequential`` (the Sequential builder);
* spread flat: ``block.apply_flat(x)`` calls its sub-layers directly on a symbolic
  tensor, so a Functional graph gets them as top-level layers with their own names
  (the Functional builder, whose layer names must equal keras.applications').

Either way the same sub-layer objects, with the same names, hold the weights, which is
why one weight file loads into both builders by layer name.
"""

from __future__ import annotations

__all__ = ["Block", "Names", "apply"]

import inspect
from typing import Any, Mapping

import keras

from kapps.imagenet import resolve_data_format


#: Keys of a block's config that ``keras.layers.Layer`` itself writes and reads.
_LAYER_KEYS = ("name", "trainable", "dtype")


@keras.saving.register_keras_serializable(package="kapps")
class Names:
    """Maps a block's layer *roles* to concrete layer names.

    A block asks ``names("bn")`` for the name of its batch-norm layer. The default is
    ``prefix + role``; a family that must match keras.applications' names passes
    templates, where ``{p}`` stands for the prefix.

    >>> Names("block_1_", {"bn": "{p}expand_BN"})("bn")
    'block_1_expand_BN'
    >>> Names("stem_")("conv")
    'stem_conv'
    """

    def __init__(self, prefix: str = "", templates: Mapping[str, str] | None = None):
        self.prefix = prefix
        self.templates = dict(templates or {})

    def __call__(self, role: str) -> str:
        template = self.templates.get(role)
        if template is None:
            return f"{self.prefix}{role}"
        return template.format(p=self.prefix)

    def sub(self, prefix_suffix: str = "", templates: Mapping[str, str] | None = None) -> "Names":
        """Names for a nested block: same prefix (plus ``prefix_suffix``), new templates."""
        return Names(self.prefix + prefix_suffix, templates)

    def __repr__(self) -> str:
        return f"Names({self.prefix!r}, {self.templates!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Names) and (self.prefix, self.templates) == (other.prefix, other.templates)

    def get_config(self) -> dict:
        """The naming scheme as plain data: ``{"prefix": ..., "templates": {...}}``.

        >>> Names.from_config(Names("b_", {"bn": "{p}BN"}).get_config())
        Names('b_', {'bn': '{p}BN'})
        """
        return {"prefix": self.prefix, "templates": dict(self.templates)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Names":
        return cls(config.get("prefix", ""), config.get("templates"))


def as_names(names: "Names | str | None", default_prefix: str) -> Names:
    """Accepts a :class:`Names`, a plain prefix string, or None (use ``default_prefix``)."""
    if isinstance(names, Names):
        return names
    return Names(default_prefix if names is None else names)


def channel_axis(data_format: str) -> int:
    """The channel axis of a 4-D image batch: 1 (channels_first) or -1 (channels_last).

    >>> channel_axis("channels_first"), channel_axis("channels_last")
    (1, -1)
    """
    return 1 if data_format == "channels_first" else -1


def image_dims(input_shape: Any, data_format: str) -> tuple:
    """``(rows, cols, channels)`` of an image shape without the batch axis.

    >>> image_dims((3, 224, 160), "channels_first"), image_dims((224, 160, 3), "channels_last")
    ((224, 160, 3), (224, 160, 3))
    """
    if data_format == "channels_first":
        return tuple(input_shape[1:3]) + (input_shape[0],)
    return tuple(input_shape[:3])


class Block(keras.layers.Layer):
    """A layer built from named sub-layers; subclasses implement :meth:`compose`.

    ``compose(x)`` applies the sub-layers (not named ``forward``: on the torch backend a Keras
    layer is a ``torch.nn.Module`` whose ``forward`` is Keras' own call entry point). It runs unchanged whether the block is
    called as a layer (Sequential builder) or spread flat into a Functional graph
    (:meth:`apply_flat`). Inside ``compose``, nested blocks are applied with
    ``inner.run(x, training=training)``. Sub-layers whose configuration depends on the input shape
    (for example asymmetric padding before a strided convolution) are created in
    :meth:`create_shape_dependent`, which both paths call once with the input shape.

    A block's config is the arguments it was constructed with (captured before
    ``__init__`` runs, as Keras does for its own auto-configs), each serialized with
    ``keras.saving.serialize_keras_object``: numbers and strings as they are, a
    :class:`Names` as its prefix and templates, nested blocks and layers as their own
    configs. ``cls.from_config(block.get_config())`` rebuilds the block, names included.
    A subclass whose constructor stores arguments that cannot be serialized (a function
    made on the fly, say) overrides ``get_config``.

    Example: a block of your own, usable by both builders::

        class ConvThenPool(Block):
            def __init__(self, filters, **kwargs):
                super().__init__(**kwargs)
                self.conv = ConvBNAct(filters, 3, names="mine_")
                self.pool = keras.layers.MaxPooling2D(name="mine_pool")

            def compose(self, x, training=None):
                return self.pool(self.conv.run(x, training=training))
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> "Block":
        instance = super().__new__(cls, *args, **kwargs)
        # Plain attribute, not tracked by Keras: the arguments hold sub-layers.
        object.__setattr__(instance, "_block_arguments", _constructor_arguments(cls, args, kwargs))
        return instance

    def __init__(self, name: str | None = None, **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self._shape_ready = False

    def use_data_format(self, data_format: str | None) -> str:
        """Resolve ``data_format`` (see :func:`resolve_data_format`) and record it in the config.

        Recorded even when it came from ``image_data_format()``, so that a saved block
        reloads with the layout it was built with.
        """
        self.data_format = resolve_data_format(data_format)
        self.channel_axis = channel_axis(self.data_format)
        self._block_arguments["data_format"] = self.data_format
        return self.data_format

    # -- serialization --------------------------------------------------------------
    def get_config(self) -> dict:
        """Layer config (name, trainable, dtype) plus the serialized constructor arguments."""
        arguments = {k: v for k, v in self._block_arguments.items() if k not in _LAYER_KEYS}
        return {**super().get_config(), **{k: keras.saving.serialize_keras_object(v) for k, v in arguments.items()}}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Block":
        """Rebuild a block from :meth:`get_config` (nested blocks and layers deserialized)."""
        decoded = {
            key: value if key in _LAYER_KEYS else keras.saving.deserialize_keras_object(value)
            for key, value in config.items()
        }
        return super().from_config(decoded)

    # -- hooks for subclasses -------------------------------------------------------
    def create_shape_dependent(self, input_shape: Any) -> None:
        """Create sub-layers that need the input shape. Default: nothing to create."""

    def compose(self, inputs: Any, training: bool | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError


    # -- the two ways of using a block ----------------------------------------------
    def _prepare(self, input_shape: Any) -> None:
        if not self._shape_ready:
            self.create_shape_dependent(input_shape)
            self._shape_ready = True

    def build(self, input_shape: Any) -> None:
        self._prepare(input_shape)
        super().build(input_shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.compose(inputs, training=training)

    def run(self, inputs: Any, training: bool | None = None) -> Any:
        """Apply the sub-layers directly to ``inputs``, without a layer node of its own.

        Blocks nested inside a block call each other this way, so that spread flat
        into a Functional graph they all contribute their sub-layers, not themselves.
        """
        self._prepare(_shape_of(inputs))
        self.built = True
        return self.compose(inputs, training=training)

    def apply_flat(self, inputs: Any) -> Any:
        """Spread the block into a Functional graph: ``run`` on a symbolic tensor."""
        return self.run(inputs)

    def compute_output_spec(self, inputs: Any, training: bool | None = None) -> Any:
        """Output shapes from the sub-layers' own symbolic calls (as the Functional builder does).

        Keras' default traces ``call`` into a scratch TensorFlow graph, which made building
        a Sequential model about 1.5x slower than the same Functional model.
        """
        outputs = self.compose(inputs, training=training)
        return keras.tree.map_structure(lambda t: keras.KerasTensor(t.shape, dtype=t.dtype), outputs)


def _constructor_arguments(cls: type, args: tuple, kwargs: dict) -> dict:
    """The arguments of ``cls(*args, **kwargs)`` by parameter name (``**kwargs`` spread out).

    Arguments that do not fit the signature give ``{}``: ``__init__`` then raises its
    own, clearer error.
    """
    signature = inspect.signature(cls.__init__)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError:
        return {}
    parameters = list(signature.parameters.values())
    arguments = dict(bound.arguments)
    arguments.pop(parameters[0].name)
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(parameter.name, {}))
    return arguments


def _shape_of(inputs: Any) -> Any:
    if isinstance(inputs, (tuple, list)):
        return [tuple(t.shape) for t in inputs]
    return tuple(inputs.shape)


def apply(block: keras.layers.Layer, inputs: Any) -> Any:
    """Apply a block (flat) or a plain Keras layer to a symbolic tensor."""
    if isinstance(block, Block):
        return block.apply_flat(inputs)
    return block(inputs)
