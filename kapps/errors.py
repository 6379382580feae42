"""Exceptions kapps raises on purpose. Each message names what to change."""

from __future__ import annotations


class KappsError(Exception):
    """Base class of kapps' own errors (the CLI prints these without a traceback)."""


class WeightsNotFoundError(KappsError, FileNotFoundError):
    """An ImageNet weight file is neither on disk nor downloadable."""


class WeightsIntegrityError(KappsError, ValueError):
    """A weight file's hash or size is not the one the manifest publishes."""


class DownloadError(KappsError, OSError):
    """An HTTP download failed (status code, truncated transfer, network error)."""


class WeightsMismatchError(KappsError, ValueError):
    """A weight file does not fit the model (missing layers, wrong shapes).

    ``width_ratio``: when every mismatched shape differs from the model's by one factor
    (the file's channels / the model's), that factor, else None.
    """

    def __init__(self, message: str, width_ratio: float | None = None):
        super().__init__(message)
        self.width_ratio = width_ratio


class CheckpointError(KappsError, ValueError):
    """A PyTorch / safetensors checkpoint cannot be read safely, or does not fit the model.

    Raised for a file that is neither format, a pickle that names a global outside the
    tensor-rebuilding set (which could run code), and a state dict whose keys or shapes do
    not fit the model being converted; the message names the file and the key or global.
    """


class BackendError(KappsError, RuntimeError):
    """A TensorFlow-only feature (fine_tune, export) was asked for on another Keras backend."""
