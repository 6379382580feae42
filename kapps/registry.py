"""The model registry: every architecture's spec and metadata, described once.

>>> import kapps
>>> kapps.list_models("resnet5*")
['resnet50', 'resnet50_v2']
>>> kapps.model_info("mobilenet_v2")["default_size"]
224

How a model is written (one spec entry plus one constructor, in the family's file)::

    SPECS = {"resnet50": resnet_spec("resnet50", "ResNet50", ...)}

    @register(SPECS["resnet50"])
    def ResNet50(include_top=True, weights="imagenet", ..., name="resnet50", *, builder="functional"):
        \"\"\"ResNet50 ... (docstring with a runnable example)\"\"\"
        return build_model(**SPECS["resnet50"].bind(locals()))

Why explicit ``def``s that delegate in one line, not generated functions: the ``def``
*is* keras.applications' signature, written once where IDEs, type checkers,
``inspect.signature``, ``help()`` and doctest see it. A generator setting
``__signature__`` and ``__doc__`` would save about eight lines per model, but static
tools (mypy, pyright, IDE completion) do not run it and would see ``(*args, **kwargs)``
for each of the fifty models to come. ``bind(locals())`` forwards every parameter, so the body
cannot drift from the signature: the standard keras.applications arguments go to
:func:`kapps.factory.build_model`, the family's own (``alpha``, ``minimalistic``, ...)
become the family's typed :class:`Options`, and a parameter that is neither fails.
Defaults are stated only in the signature: :meth:`ModelSpec.options_of` fills missing
option values from it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import inspect
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import keras

from kapps.imagenet import preprocessor
from kapps.utils.names import resolve_model_name
from kapps.weights import manifest

ModelFn = Callable[..., keras.Model]

#: The keras.applications arguments every constructor has; the factory handles them.
STANDARD_ARGUMENTS = (
    "include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
    "classifier_activation", "name", "builder", "features_only", "out_indices",
)


def family_preprocessor(mode: str) -> Callable[..., Any]:
    """A family's ``preprocess_input``; the spec reads its mode back (stated once per family).

    >>> family_preprocessor("tf").mode
    'tf'
    """
    function = preprocessor(mode)
    function.mode = mode  # type: ignore[attr-defined]
    return function


@dataclasses.dataclass(frozen=True)
class Options(Mapping):
    """A family's own constructor arguments, typed (subclass: a frozen dataclass per family).

    The hooks below are the family's rules; the defaults suit a family without them.
    Options also read as a read-only mapping of their fields (``options["alpha"]``).

    >>> @dataclasses.dataclass(frozen=True)
    ... class WidthOptions(Options):
    ...     alpha: float
    >>> dict(WidthOptions(alpha=0.5))
    {'alpha': 0.5}
    """

    @classmethod
    def from_arguments(cls, values: Mapping[str, Any], standard: Mapping[str, Any]) -> "Options":
        """Options from the family's argument ``values``; ``standard`` holds the common arguments."""
        return cls(**values)

    def check(self, weights: Any) -> None:
        """Raise a ValueError naming the argument for a bad option value."""

    def weights_variant(self, input_shape: tuple) -> dict:
        """The manifest variant keys of the ImageNet file for this input shape."""
        return {}

    def model_name(self, input_shape: tuple, weights: Any) -> str | None:
        """The model's name for ``name=None``; None: the constructor's default ``name``."""
        return None

    def default_size(self, input_shape: Any) -> int | None:
        """The default input size given the requested shape; None: the spec's."""
        return None

    def named_weights(self, weights: Any) -> Any:
        """``weights`` as the factory reads it: the family's own names of its ImageNet files
        (ResNet-RS' ``"imagenet-i224"``) become ``"imagenet"`` (``weights_variant`` then chooses
        the file); a name the family does not know raises a ValueError naming ``weights``."""
        return weights

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What kapps knows about one architecture: how to build it and its metadata.

    Building: ``body(options, input_shape)`` returns the blocks from the input to the
    last feature map; ``top(options, classes, classifier_activation)`` the ImageNet
    classifier head; optional ``no_top(options, pooling)`` the head (or None) for
    ``include_top=False`` when the family's differs from plain global pooling.
    ``options`` is the family's :class:`Options` class (its rules are its hooks) and
    ``fixed`` the option values that make this model (``{"depths": (3, 4, 6, 3)}``).
    ``static_input``: the model needs a known input size (NASNet: without a top and
    without ``input_shape`` it uses the default size; unknown sizes are refused).
    ``multi_scale``: the body has feature maps at several reductions, so ``features_only``
    works (False for ViT, one sequence of tokens).
    Metadata (``params``, ``flops`` at the default input size with the top, ImageNet
    ``top1``/``top5`` as Keras publishes them) feeds ``model_info`` and the README table;
    ``preprocessing`` is read from the family's ``preprocess_input``.
    """

    name: str
    keras_name: str
    family: str
    body: Callable[[Any, tuple], list]
    top: Callable[[Any, int, Any], keras.layers.Layer]
    default_size: int
    min_size: int
    options: type[Options] = Options
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    no_top: Callable[[Any, Any], keras.layers.Layer | None] | None = None
    fixed_size_top: bool = True
    static_input: bool = False
    multi_scale: bool = True
    input_channels: int = 3
    params: int | None = None
    flops: int | None = None
    top1: float | None = None
    top5: float | None = None
    reference: str = ""

    @property
    def preprocessing(self) -> str:
        """The ``kapps.imagenet.preprocess_input`` mode of the family's ``preprocess_input``."""
        return importlib.import_module(f"kapps.models.{self.family}").preprocess_input.mode

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """A constructor's ``locals()`` as :func:`kapps.factory.build_model`'s keyword arguments.

        A constructor without ``name`` (tf.keras' ResNet-RS; RegNet calls it ``model_name``, an
        option) binds ``name=None``: the family's :meth:`Options.model_name` names the model.
        """
        standard = {key: arguments[key] for key in STANDARD_ARGUMENTS if key != "name" or key in arguments}
        standard.setdefault("name", None)
        values = {key: value for key, value in arguments.items() if key not in standard}
        return {"spec": self, "options": self.options.from_arguments({**self.fixed, **values}, standard), **standard}

    def options_of(self, options: Mapping[str, Any], **standard: Any) -> Options:
        """``options`` as this family's :class:`Options`, made as :meth:`bind` makes them (through
        ``from_arguments``); a plain mapping may leave out values that have a default in the
        constructor's signature (or are fixed by the spec), and ``standard`` overrides the
        constructor's defaults of the standard arguments (``weights="imagenet"``)."""
        if isinstance(options, self.options):
            return options
        defaults = self.constructor_defaults()
        values = {key: value for key, value in defaults.items() if key not in STANDARD_ARGUMENTS}
        given = {key: defaults.get(key) for key in STANDARD_ARGUMENTS} | standard
        return self.options.from_arguments({**values, **self.fixed, **options}, given)

    def constructor_defaults(self) -> dict[str, Any]:
        """The default of every parameter of the registered constructor."""
        parameters = inspect.signature(_FUNCTIONS[self.name]).parameters.values()
        return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}

    def weights_variant(self, options: Mapping[str, Any], input_shape: tuple) -> dict:
        """The manifest variant keys for ``options`` and ``input_shape``."""
        return self.options_of(options).weights_variant(input_shape)

    def default_model_name(self, options: Mapping[str, Any], input_shape: tuple, weights: Any) -> str:
        """The model's name when ``name=None``: the family's rule or the constructor's default."""
        name = self.options_of(options).model_name(input_shape, weights)
        return name if name is not None else self.constructor_defaults()["name"]

    def default_size_for(self, options: Mapping[str, Any], input_shape: Any) -> int:
        """The default input size, given the requested shape (or None)."""
        size = self.options_of(options).default_size(input_shape)
        return self.default_size if size is None else size


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


def _specs() -> dict[str, ModelSpec]:
    """The registry, with every family registered (importing :mod:`kapps.models` registers them)."""
    importlib.import_module("kapps.models")
    return _SPECS


def list_models(pattern: str | None = None) -> list[str]:
    """Registry names, sorted, optionally filtered by a glob ``pattern`` (e.g. ``"resnet*"``)."""
    names = sorted(_specs())
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def get_spec(name: str) -> ModelSpec:
    """The spec of a registry name (``"mobilenet_v2"``) or Keras name (``"MobileNetV2"``)."""
    specs = _specs()
    return specs[resolve_model_name(name, {n: spec.keras_name for n, spec in specs.items()})]


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
             "hash": None if not f.hash_value else f"{f.hash_algorithm}:{f.hash_value}",
             **({"eval_transform": f.eval_transform} if f.eval_transform else {}),
             **({"source": f.source, "accuracy": f.accuracy} if f.is_checkpoint else {})}
            for f in files
        ],
    }
