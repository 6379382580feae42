"""The one check for features that only the TensorFlow backend of Keras can run."""

from __future__ import annotations

from kapps.errors import BackendError

__all__ = ["require_tensorflow_backend"]


def require_tensorflow_backend(feature: str, reason: str) -> None:
    """Raise :class:`kapps.errors.BackendError` at once unless Keras runs on TensorFlow.

    >>> require_tensorflow_backend("kapps.export", "TFLite is a TensorFlow format")  # on TensorFlow: nothing
    """
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(
            f"{feature} needs the TensorFlow backend of Keras ({reason}); the active backend is {backend!r}. "
            "Set KERAS_BACKEND=tensorflow in the environment before Python starts "
            "(or \"backend\": \"tensorflow\" in ~/.keras/keras.json)."
        )
