"""ImageNet preprocessing and label decoding (the class index ships with kapps)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Callable

import numpy as np

# Keras is imported inside the functions: kapps' blocks import this module while kapps registers
# them with Keras, which happens during ``import keras`` (kapps/__init__.py); a module-level
# ``import keras`` here would start that registration before this module has defined anything.

#: Preprocessing modes (keras.applications' names) and what they do.
MODES = {
    "tf": "scale pixels from [0, 255] to [-1, 1]",
    "caffe": "RGB to BGR, then subtract the ImageNet mean per channel (no scaling)",
    "torch": "scale to [0, 1], then normalize with the ImageNet mean and std per channel",
    "none": "identity: the model rescales inside (pass pixels in [0, 255])",
}
_CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


DATA_FORMATS = ("channels_first", "channels_last")


def resolve_data_format(data_format: str | None) -> str:
    """``data_format``, or ``keras.config.image_data_format()`` when it is None; validated."""
    import keras

    if data_format is None:
        return keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            "`data_format` must be None (the global keras.config.image_data_format()), 'channels_first' "
            f"or 'channels_last'. Received: data_format={data_format!r}"
        )
    return data_format


def preprocess_input(x: Any, data_format: str | None = None, mode: str = "caffe") -> Any:
    """Preprocess a batch of RGB images in ``[0, 255]`` for an ImageNet model.

    ``data_format`` (default: the global ``keras.config.image_data_format()``) says
    where the channels are. NumPy input gives a new array (float input keeps its
    dtype, other input becomes ``floatx``): unlike keras.applications, which changes a
    float array in place, the input is left as it is. Tensors give new tensors.

    >>> import numpy as np
    >>> preprocess_input(np.array([[[0.0, 127.5, 255.0]]]), mode="tf").tolist()
    [[[-1.0, 0.0, 1.0]]]
    >>> preprocess_input(np.array([[[0.0]], [[127.5]], [[255.0]]]), "channels_first", mode="tf").ravel().tolist()
    [-1.0, 0.0, 1.0]
    """
    import keras

    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {', '.join(map(repr, MODES))}. Received: mode={mode!r}")
    channels_first = resolve_data_format(data_format) == "channels_first"
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        x = np.asarray(x)
        x = x.copy() if np.issubdtype(x.dtype, np.floating) else x.astype(keras.config.floatx())
        return _preprocess_numpy(x, mode, channels_first)
    if "float" not in str(x.dtype):
        x = keras.ops.cast(x, keras.config.floatx())
    return _preprocess_tensor(x, mode, channels_first)


def _per_channel(values: tuple, channels_first: bool) -> np.ndarray:
    """Per-channel constants shaped to broadcast over the channel axis."""
    return np.array(values, "float32").reshape((3, 1, 1) if channels_first else (3,))


def _preprocess_numpy(x: np.ndarray, mode: str, channels_first: bool) -> np.ndarray:
    if mode == "tf":
        x /= 127.5
        x -= 1.0
    elif mode == "torch":
        x /= 255.0
        x -= _per_channel(_TORCH_MEAN, channels_first)
        x /= _per_channel(_TORCH_STD, channels_first)
    elif mode == "caffe":
        x = np.flip(x, axis=-3 if channels_first else -1)
        x -= _per_channel(_CAFFE_MEAN, channels_first)
    return x


def _preprocess_tensor(x: Any, mode: str, channels_first: bool) -> Any:
    import keras

    def constant(values: tuple) -> Any:
        return keras.ops.convert_to_tensor(_per_channel(values, channels_first), dtype=x.dtype)

    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - constant(_TORCH_MEAN)) / constant(_TORCH_STD)
    if mode == "caffe":
        return keras.ops.flip(x, axis=-3 if channels_first else -1) - constant(_CAFFE_MEAN)
    return x


@functools.lru_cache(maxsize=1)
def class_index() -> dict[int, tuple[str, str]]:
    """``{index: (wordnet id, class name)}`` for the 1000 ImageNet classes."""
    text = resources.files("kapps").joinpath("data/imagenet_class_index.json").read_text(encoding="utf-8")
    return {int(k): (v[0], v[1]) for k, v in json.loads(text).items()}


def decode_predictions(preds: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` classes of each row of ImageNet predictions, as (wnid, name, score).

    >>> import numpy as np
    >>> p = np.zeros((1, 1000)); p[0, 281] = 0.9
    >>> decode_predictions(p, top=1)[0][0][1]
    'tabby'
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of ImageNet predictions, an array of shape (samples, 1000). "
            f"Received: preds of shape {preds.shape}"
        )
    if not isinstance(top, int) or not 1 <= top <= 1000:
        raise ValueError(f"`top` must be an integer from 1 to 1000. Received: top={top!r}")
    index = class_index()
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(*index[int(i)], float(row[i])) for i in best])
    return results


def preprocessor(mode: str) -> Callable[..., Any]:
    """A family's ``preprocess_input(x, data_format=None)`` for one mode."""

    def family_preprocess_input(x: Any, data_format: str | None = None) -> Any:
        return preprocess_input(x, data_format=data_format, mode=mode)

    family_preprocess_input.__name__ = "preprocess_input"
    family_preprocess_input.__doc__ = f"Preprocess RGB images in [0, 255] for this family: {MODES[mode]}."
    return family_preprocess_input

