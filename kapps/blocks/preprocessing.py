"""A family's ``preprocess_input`` as a layer (what ``fine_tune`` puts in front of the base).

It is registered and serializable (the families that normalize inside the model use Keras'
own ``keras.layers.Normalization``; see :func:`kapps.utils.layers.refresh_statistics`).
``ImagePreprocessing`` with a custom function is saved only when Keras can serialize the function (registered with ``keras.saving.register_keras_serializable``);
any other function is refused when the model is saved, never when it is loaded.
"""

from __future__ import annotations

__all__ = ["ImagePreprocessing", "is_serializable_function"]

from typing import Any, Callable

import keras

from kapps.imagenet import MODES, preprocess_input


def is_serializable_function(function: Callable) -> bool:
    """Whether ``function`` is registered with ``keras.saving.register_keras_serializable``."""
    name = keras.saving.get_registered_name(function)
    return keras.saving.get_registered_object(name) is function and ">" in name


@keras.saving.register_keras_serializable(package="kapps")
class ImagePreprocessing(keras.layers.Layer):
    """A model family's ``preprocess_input`` as a layer: RGB pixels in [0, 255] in, model input out.

    ``mode`` is one of :data:`kapps.imagenet.MODES` (``"tf"``, ``"caffe"``, ``"torch"``,
    ``"none"``); ``function``, when given, is applied instead (``mode`` then only names it).
    """

    def __init__(self, mode: str = "tf", function: Callable | dict | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(function, dict):  # from a saved config
            function = keras.saving.deserialize_keras_object(function)
        if function is None and mode not in MODES:
            raise ValueError(f"`preprocessing` must be one of {', '.join(map(repr, MODES))} or a function. "
                             f"Received: preprocessing={mode!r}")
        if function is not None and not callable(function):
            raise ValueError(f"`function` must be callable or None. Received: function={function!r}")
        self.mode = mode
        self.function = function

    def call(self, inputs: Any) -> Any:
        if self.function is not None:
            return self.function(inputs)
        return preprocess_input(inputs, mode=self.mode)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "mode": self.mode}
        if self.function is None:
            return config
        if not is_serializable_function(self.function):
            name = getattr(self.function, "__qualname__", repr(self.function))
            raise ValueError(
                f"Cannot save layer {self.name!r}: its preprocessing function {name!r} is not registered with "
                "Keras, so a saved model could not be reloaded. Accepted: a mode name "
                f"({', '.join(map(repr, MODES))}) or a function decorated with "
                "@keras.saving.register_keras_serializable(). Received: preprocessing=" + name
            )
        return {**config, "function": keras.saving.serialize_keras_object(self.function)}
