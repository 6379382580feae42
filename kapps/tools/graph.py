"""A model as one flat graph of leaf layers, and the list of its layer calls with their shapes.

:func:`flatten` spreads nested models and kapps blocks into one Functional model whose
layers are the original leaf layers (shared, not copied); :func:`trace` lists the calls
of a flat model in graph order, each with its symbolic input and output tensors. Both
only build symbolic graphs: no layer runs on data. They serve
:func:`kapps.optimize_for_inference` and :func:`kapps.tools.flops.count_flops`.

>>> import keras
>>> from kapps.tools.graph import flatten, trace
>>> inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
>>> inputs = keras.Input((4,))
>>> model = keras.Model(inputs, keras.layers.ReLU(name="act")(inner(inputs)))
>>> [(c.operation.name, tuple(c.outputs[0].shape)) for c in trace(flatten(model)).calls]
[('fc', (None, 3)), ('act', (None, 3))]
"""

from __future__ import annotations

__all__ = ["Call", "Trace", "flatten", "is_flat", "trace", "new_inputs", "rebuild"]

import dataclasses
from typing import Any, Callable, Sequence

import keras

from kapps import _keras_compat as compat
from kapps.blocks.base import Block


@dataclasses.dataclass(frozen=True)
class Call:
    """One call of an operation (a layer or a keras.ops operation) in a flat graph."""

    operation: Any
    inputs: tuple  # the symbolic tensors it reads
    outputs: tuple  # the symbolic tensors it returns


def new_inputs(model: keras.Model, shape: Sequence[int | None] | None = None) -> list:
    """Fresh ``keras.Input`` tensors like ``model``'s (``shape``: a new shape for its one input)."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"`model` must have known inputs (a Functional model, or a Sequential model built with an "
            f"Input). Received: model={model.name!r} with no defined inputs; call it once or build it "
            "with keras.Input first."
        )
    if shape is not None and len(inputs) != 1:
        raise ValueError(f"`input_shape` can only be given for a model with one input. Received: "
                         f"input_shape={tuple(shape)!r} for a model with {len(inputs)} inputs")
    shapes = [(None, *shape)] if shape is not None else [tuple(t.shape) for t in inputs]
    return [keras.Input(batch_shape=s, dtype=t.dtype, name=_tensor_name(t, i))
            for i, (s, t) in enumerate(zip(shapes, inputs))]


def _tensor_name(tensor: Any, index: int) -> str:
    name = getattr(tensor, "name", None) or f"input_{index}"
    return name.split(":")[0].split("/")[0]


def _inline(layer: Any, args: tuple, kwargs: dict) -> Any:
    """Apply ``layer`` to symbolic tensors, spreading nested models and blocks flat."""
    if isinstance(layer, keras.Sequential):
        x = args[0]
        for sub in layer.layers:
            x = _inline(sub, (x,), {})
        return x
    if compat.is_functional(layer):
        inputs = args[0] if len(args) == 1 else list(args)
        return compat.call_graph(layer, inputs, lambda op, *a, **k: _inline(op, a, k))
    if isinstance(layer, Block):
        return layer.run(*args, **kwargs)
    return layer(*args, **kwargs)


def is_flat(model: keras.Model) -> bool:
    """A Functional model with no nested model or block among its layers."""
    return compat.is_functional(model) and not any(isinstance(l, (keras.Model, Block)) for l in model.layers)


def flatten(model: keras.Model, input_shape: Sequence[int | None] | None = None) -> keras.Model:
    """``model`` as a flat Functional model of its leaf layers (``model`` itself when already flat).

    ``input_shape`` (without the batch axis) rebuilds the graph for another input size.
    """
    if input_shape is None and is_flat(model):
        return model
    inputs = new_inputs(model, input_shape)
    outputs = _inline(model, tuple(inputs), {})
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=f"{model.name}_flat")


def rebuild(flat: keras.Model, call: Callable[..., Any], name: str | None = None) -> keras.Model:
    """A new Functional model on fresh inputs: ``call(op, *args, **kwargs)`` replaces each call of ``flat``."""
    inputs = new_inputs(flat)
    rebuilt = keras.models.clone_model(flat, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                       clone_function=lambda op: op, call_function=call)
    return rebuilt if name is None else keras.Model(rebuilt.input, rebuilt.output, name=name)


@dataclasses.dataclass(frozen=True)
class Trace:
    """The calls of a flat graph in graph order, and the graph's input and output tensors (a new model
    can be cut from them: ``keras.Model(trace.inputs, call.outputs)``)."""

    calls: list[Call]
    outputs: tuple
    inputs: tuple = ()


def trace(flat: keras.Model) -> Trace:
    """Every operation call of the flat Functional model ``flat``, in graph order."""
    calls: list[Call] = []

    def record(op: Any, *args: Any, **kwargs: Any) -> Any:
        outputs = op(*args, **kwargs)
        calls.append(Call(op, _symbolic((args, kwargs)), _symbolic(outputs)))
        return outputs

    rebuilt = rebuild(flat, record)
    return Trace(calls, _symbolic(rebuilt.outputs), _symbolic(rebuilt.inputs))


def _symbolic(structure: Any) -> tuple:
    return tuple(t for t in keras.tree.flatten(structure) if isinstance(t, keras.KerasTensor))
