"""Shared fixtures: the ../shared folder, real photos, and a keras.applications reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The folder of real weights and data (``KAPPS_SHARED_DIR``, default ``../shared``)."""
    path = Path(os.environ.get("KAPPS_SHARED_DIR", REPO.parent / "shared"))
    if not (path / "weights").is_dir():
        pytest.fail(
            f"The shared resources folder {path} is missing (set KAPPS_SHARED_DIR to the folder that holds "
            "weights/ and data/). These tests need real files and do not skip."
        )
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


def photo(size: int = 224, which: str = "chelsea") -> np.ndarray:
    """A real photo from scikit-image, resized to ``size`` x ``size``, as float32 in [0, 255]."""
    import skimage.data
    import tensorflow as tf

    image = getattr(skimage.data, which)()
    resized = tf.image.resize(image[None].astype("float32"), (size, size), antialias=True)
    return np.clip(resized.numpy(), 0, 255).astype("float32")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    """No test reads or writes the user's real caches."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("KAPPS_CACHE_DIR", str(tmp_path / "kapps_cache"))
    monkeypatch.delenv("KAPPS_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("KAPPS_WEIGHTS_MIRROR", raising=False)
