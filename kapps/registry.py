"""The model registry: every architecture's spec and metadata, described once.

>>> import kapps
>>> kapps.list_models("resnet5*")
['resnet50', 'resnet50_v2']
>>> kapps.model_info("mobilenet_v2")["default_size"]
224
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Callable

import keras

from kapps.weights import manifest

ModelFn = Callable[..., keras.Model]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What kapps knows about one architecture: how to build it and its metadata.

    Building: ``body(options, input_shape)`` returns the blocks from the input to the
    last feature map; ``top(options, classes, classifier_activation)`` the ImageNet
    classifier head. ``options`` holds the family's own arguments (``alpha``, ...).
    Weights: ``weights_variant(options, input_shape)`` gives the manifest variant keys.
    Metadata (``params``, ``flops`` at the default input size with the top, ImageNet
    ``top1``/``top5`` as Keras publishes them) feeds ``model_info`` and the README table.
    """

    name: str
    keras_name: str
    family: str
    body: Callable[..., list]
    top: Callable[..., keras.layers.Layer]
    default_size: int
    min_size: int
    preprocessing: str
    default_model_name: Callable[[dict, tuple, Any], str]
    weights_variant: Callable[[dict, tuple], dict] = lambda options, shape: {}
    check_options: Callable[[dict, Any], None] = lambda options, weights: None
    default_size_for: Callable[[Any], int] | None = None
    fixed_size_top: bool = True
    params: int | None = None
    flops: int | None = None
    top1: float | None = None
    top5: float | None = None
    reference: str = ""
    input_channels: int = 3
    #: Optional ``no_top(options, pooling)``: the head (or None) for ``include_top=False``
    #: when the family's differs from plain global pooling (ConvNeXt normalizes after it).
    no_top: Callable[[dict, Any], keras.layers.Layer] | None = None


_SPECS: dict[str, ModelSpec] = {}
_FUNCTIONS: dict[str, ModelFn] = {}


def register(spec: ModelSpec) -> Callable[[ModelFn], ModelFn]:
    """Decorator: record ``spec`` and the public constructor that builds it."""

    def decorate(fn: ModelFn) -> ModelFn:
        if spec.name in _SPECS:
            raise ValueError(f"model {spec.name!r} is registered twice")
        _SPECS[spec.name] = spec
        _FUNCTIONS[spec.name] = fn
        return fn

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registry names, sorted, optionally filtered by a glob ``pattern`` (e.g. ``"resnet*"``)."""
    names = sorted(_SPECS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def _unknown(name: Any) -> ValueError:
    close = [n for n in _SPECS if isinstance(name, str) and (name.lower() in n or n in name.lower())]
    hint = f" Did you mean {', '.join(map(repr, close[:5]))}?" if close else ""
    return ValueError(f"`name` must be a registered model (see kapps.list_models()). Received: name={name!r}.{hint}")


def get_spec(name: str) -> ModelSpec:
    if name not in _SPECS:
        by_keras = {s.keras_name.lower(): s for s in _SPECS.values()}
        if isinstance(name, str) and name.lower() in by_keras:
            return by_keras[name.lower()]
        raise _unknown(name)
    return _SPECS[name]


def get_model(name: str, **kwargs: Any) -> keras.Model:
    """Build a registered model by name; keyword arguments go to its constructor.

    Accepts registry names (``"mobilenet_v2"``) and Keras names (``"MobileNetV2"``).

    >>> import kapps
    >>> kapps.get_model("mobilenet_v2", weights=None, alpha=0.35).name
    'mobilenetv2_0.35_224'
    """
    return _FUNCTIONS[get_spec(name).name](**kwargs)


def model_function(name: str) -> ModelFn:
    return _FUNCTIONS[get_spec(name).name]


def model_info(name: str) -> dict[str, Any]:
    """Metadata of a registered model: sizes, preprocessing, accuracy, params, FLOPs, weight files."""
    spec = get_spec(name)
    files = manifest.files_for(spec.name)
    entry = manifest.model_entry(spec.name)
    return {
        "name": spec.name,
        "keras_name": spec.keras_name,
        "family": spec.family,
        "default_size": spec.default_size,
        "min_size": spec.min_size,
        "input_channels": spec.input_channels,
        "preprocessing": spec.preprocessing,
        "params": spec.params,
        "flops": spec.flops,
        "gflops": None if spec.flops is None else round(spec.flops / 1e9, 3),
        "top1": spec.top1,
        "top5": spec.top5,
        "reference": spec.reference,
        "imagenet_weights": bool(entry.get("imagenet")),
        "weight_files": [
            {"file": f.file, "include_top": f.include_top, **f.variant_dict, "url": f.url,
             "hash": None if not f.hash_value else f"{f.hash_algorithm}:{f.hash_value}"}
            for f in files
        ],
    }
