"""Inference optimization: fold BatchNorm into convolutions, drop training-only layers.

:func:`optimize_for_inference` turns any Keras model (a kapps model of either builder,
a keras.applications model, or your own functional/sequential model, nested models
included) into a new flat functional model that computes the same function at
inference time with fewer operations:

* every ``BatchNormalization`` that directly follows a ``Conv1D/2D/3D``,
  ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D`` or ``Dense`` with a linear activation
  (and whose output nothing else reads) is folded into that layer's kernel and bias:
  with ``s = gamma / sqrt(moving_variance + epsilon)``, the kernel's output channels are
  multiplied by ``s`` and the bias becomes ``(bias - moving_mean) * s + beta``;
  any other BatchNorm is kept;
* layers that are the identity at inference are removed: ``Dropout`` (and its spatial
  variants, which keras.applications also uses for EfficientNet's drop-connect),
  ``GaussianNoise``, ``GaussianDropout``, ``AlphaDropout``, ``ActivityRegularization``
  and stochastic-depth layers;
* optionally (``xla=True``) the model's ``predict``/``predict_on_batch`` are compiled
  with XLA (``jit_compile``).

The original model is left untouched: layers with weights are copied (folded ones are
new); stateless layers (activations, pooling, additions...) are shared with it. A layer
with weights that cannot be copied (no working ``get_config``/``from_config``) is refused
with an error naming it, never shared.

Only public Keras API and backend-neutral operations are used: it works on the
TensorFlow, JAX and PyTorch backends, and its result saves to and loads from ``.keras``.
"""

from __future__ import annotations

__all__ = ["optimize_for_inference", "fold_batch_norm_weights"]

from typing import Any, Callable

import keras
import numpy as np

from kapps.tools.graph import Trace, flatten, rebuild, trace
from kapps.utils.layers import has_linear_activation, has_plain_weights, set_layer_weights

_FOLDABLE = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
    keras.layers.Dense,
)
_IDENTITY_AT_INFERENCE = (
    keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
    keras.layers.AlphaDropout, keras.layers.ActivityRegularization,
)
#: Class names of custom layers that are the identity at inference (stochastic depth).
_IDENTITY_CLASS_NAMES = frozenset({"StochasticDepth", "DropPath", "DropConnect", "Identity"})


def optimize_for_inference(model: keras.Model, *, xla: bool = False, name: str | None = None) -> keras.Model:
    """A new inference-only model computing what ``model`` computes with ``training=False``.

    Args:
        model: any Keras model (Functional or Sequential, nested models and kapps blocks
            included). Subclassed models and custom layers are kept as they are, as
            one opaque layer each.
        xla: compile the returned model's ``predict``/``predict_on_batch`` with XLA
            (``model.jit_compile = True``). Calling the model directly is unaffected.
            Meant for GPUs/TPUs: on CPU, XLA ran MobileNetV2 about 7x and ResNet50 about
            1.1-2x slower than TensorFlow's oneDNN kernels in kapps' benchmark.
        name: name of the new model (default: ``model.name``).

    Returns:
        A flat Functional model whose BatchNorm layers that follow a convolution or a
        dense layer are folded into it, without Dropout-like layers. Use it for
        inference only: its folded layers cannot be fine-tuned like the original.

    >>> import numpy as np, kapps
    >>> model = kapps.MobileNetV2(weights=None, input_shape=(96, 96, 3), include_top=False)
    >>> fast = kapps.optimize_for_inference(model)
    >>> sum("BatchNormalization" in type(l).__name__ for l in fast.layers)
    0
    >>> x = np.random.default_rng(0).uniform(-1, 1, (1, 96, 96, 3)).astype("float32")
    >>> bool(np.allclose(fast(x), model(x, training=False), atol=1e-4))
    True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r} of type {type(model).__name__}")
    if not isinstance(xla, bool):
        raise TypeError(f"`xla` must be True or False. Received: xla={xla!r}")
    optimized = _rewrite(flatten(model), name or model.name)
    if xla:
        optimized.jit_compile = True
    return optimized


# -- which BatchNorm layers fold ----------------------------------------------------------


def _channel_axis_ok(producer: keras.layers.Layer, bn: keras.layers.BatchNormalization, rank: int) -> bool:
    axis = bn.axis if isinstance(bn.axis, int) else (bn.axis[0] if len(bn.axis) == 1 else None)
    if axis is None:
        return False
    axis = axis % rank
    if isinstance(producer, keras.layers.Dense):
        return axis == rank - 1
    channels_first = getattr(producer, "data_format", "channels_last") == "channels_first"
    return axis == (1 if channels_first else rank - 1)


def _fold_pairs(graph: Trace) -> dict[int, keras.layers.BatchNormalization]:
    """``{id(producer layer): bn layer}`` for every BatchNorm that can be folded."""
    producer: dict[int, Any] = {}
    consumers: dict[int, list] = {}
    calls: dict[int, int] = {}
    for node in graph.calls:
        calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for t in node.outputs:
            producer[id(t)] = node
        for t in node.inputs:
            consumers.setdefault(id(t), []).append(node)
    outputs = {id(t) for t in graph.outputs}
    pairs = {}
    for node in graph.calls:
        bn = node.operation
        if type(bn) is not keras.layers.BatchNormalization or len(node.inputs) != 1:
            continue
        tensor = node.inputs[0]
        source = producer.get(id(tensor))
        if source is None:
            continue
        layer = source.operation
        if not (isinstance(layer, _FOLDABLE) and has_linear_activation(layer) and has_plain_weights(layer)):
            continue
        if calls[id(layer)] != 1 or calls[id(bn)] != 1 or id(tensor) in outputs:
            continue
        if len(consumers.get(id(tensor), [])) != 1 or id(layer) in pairs:
            continue
        if not _channel_axis_ok(layer, bn, len(tensor.shape)):
            continue
        pairs[id(layer)] = bn
    return pairs


def fold_batch_norm_weights(layer: keras.layers.Layer, bn: keras.layers.BatchNormalization) -> list[np.ndarray]:
    """The weights of ``layer`` (with a bias) that compute ``bn(layer(x))`` at inference.

    Works for Conv, DepthwiseConv, SeparableConv and Dense layers; the arithmetic is done
    in float64 and the result cast to the layer's variable dtype.
    """
    moving_mean = np.asarray(bn.moving_mean, dtype="float64")
    moving_variance = np.asarray(bn.moving_variance, dtype="float64")
    gamma = np.asarray(bn.gamma, dtype="float64") if bn.scale else np.ones_like(moving_mean)
    beta = np.asarray(bn.beta, dtype="float64") if bn.center else np.zeros_like(moving_mean)
    scale = gamma / np.sqrt(moving_variance + bn.epsilon)
    shift = beta - moving_mean * scale

    weights = layer.get_weights()
    dtype = weights[0].dtype
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        depthwise, pointwise = weights[0], weights[1].astype("float64")
        folded = [depthwise, pointwise * scale]
    elif isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        kernel = weights[0].astype("float64")  # (..., in_channels, multiplier); out = in * mult + m
        folded = [kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])]
    else:
        folded = [weights[0].astype("float64") * scale]
    bias = weights[len(folded)].astype("float64") if layer.use_bias else np.zeros_like(moving_mean)
    return [w.astype(dtype) for w in folded] + [(bias * scale + shift).astype(dtype)]


class _Rewriter:
    """Maps every operation of the flat graph to its replacement in the new graph."""

    def __init__(self, flat: keras.Model):
        self.pairs = _fold_pairs(trace(flat))
        self.folded_bn = {id(bn) for bn in self.pairs.values()}
        self.clones: dict[int, Callable] = {}
        self.copies: list[tuple[keras.layers.Layer, Any]] = []  # (new layer, weights source)
        self.names: set[str] = set()

    def _unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self.names:
            candidate, i = f"{name}_{i}", i + 1
        self.names.add(candidate)
        return candidate

    def _clone(self, layer: keras.layers.Layer, **overrides: Any) -> keras.layers.Layer:
        try:
            config = layer.get_config()
            config.update(overrides)
            config["name"] = self._unique(layer.name)
            for key in config:  # the weights are set afterwards: skip random initialization
                if key.endswith("_initializer") and config[key] is not None:
                    config[key] = "zeros"
            return layer.__class__.from_config(config)
        except (NotImplementedError, TypeError, ValueError, KeyError) as e:
            raise ValueError(
                f"`model` must have layers with weights that can be copied: optimize_for_inference never "
                f"shares a weighted layer with the original model. Layer {layer.name!r} "
                f"({type(layer).__name__}) cannot be rebuilt from its get_config(): "
                f"{type(e).__name__}: {e}. Give it a get_config() that lists its constructor arguments."
            ) from e

    def call(self, op: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``op``'s replacement where the flat graph calls ``op``."""
        replacement = self.replacement(op)
        if replacement is _identity:
            return args[0]
        return replacement(*args, **kwargs)

    def replacement(self, op: Any) -> Callable:
        key = id(op)
        if key not in self.clones:
            self.clones[key] = self._make(op)
        return self.clones[key]

    def _make(self, op: Any) -> Callable:
        if not isinstance(op, keras.layers.Layer):
            return op  # a stateless keras.ops operation: reuse it
        if id(op) in self.folded_bn or _identity_at_inference(op):
            return _identity
        if id(op) in self.pairs:
            new = self._clone(op, use_bias=True)
            self.copies.append((new, fold_batch_norm_weights(op, self.pairs[id(op)])))
            return new
        if not op.weights:  # stateless (activation, pooling, add, padding...): share it
            self.names.add(op.name)
            return op
        new = self._clone(op)
        self.copies.append((new, op))
        return new

    def set_weights(self) -> None:
        """Give every copied layer its weights (folded ones their folded weights)."""
        for new, source in self.copies:
            weights = source if isinstance(source, list) else source.get_weights()
            try:
                set_layer_weights(new, weights)
            except ValueError as e:
                name = source.name if isinstance(source, keras.layers.Layer) else new.name
                raise ValueError(
                    f"`model` must have layers whose copy from get_config() has the same weights: layer "
                    f"{name!r} ({type(new).__name__}) does not ({e})."
                ) from e


def _identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def _identity_at_inference(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, _IDENTITY_AT_INFERENCE) or type(layer).__name__ in _IDENTITY_CLASS_NAMES


def _rewrite(flat: keras.Model, name: str) -> keras.Model:
    rewriter = _Rewriter(flat)
    model = rebuild(flat, rewriter.call, name=name)
    rewriter.set_weights()
    return model
