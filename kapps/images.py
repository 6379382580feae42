"""Loading photos from disk (or scikit-image's samples) into model-ready batches."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf

#: scikit-image sample photos used when no image is given.
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut")


def load_image(path: str | os.PathLike, size: int | tuple[int, int]) -> np.ndarray:
    """Read a JPEG/PNG/GIF/BMP file as RGB float32 in [0, 255], resized to ``size``.

    Raises ValueError naming the path when the file is not a readable image.
    """
    path = os.fspath(path)
    height, width = (size, size) if isinstance(size, int) else size
    if not os.path.isfile(path):
        raise ValueError(f"`image` must be an existing image file. Received: {path!r} (no such file)")
    try:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        raise ValueError(
            f"`image` must be a JPEG, PNG, GIF or BMP file. Received: {path!r} ({e.message.splitlines()[0]})"
        ) from None
    resized = tf.image.resize(tf.cast(image, tf.float32), (height, width), antialias=True)
    return np.clip(resized.numpy(), 0, 255)


def sample_photos(size: int, names: Sequence[str] = SAMPLE_PHOTOS) -> tuple[list[str], np.ndarray]:
    """scikit-image's sample photos as a batch (labels, images); needs scikit-image."""
    try:
        import skimage.data
    except ImportError:
        raise ValueError(
            "No image given and scikit-image (for its sample photos) is not installed: pass image paths, "
            "or `pip install scikit-image`."
        ) from None
    images = []
    for name in names:
        image = getattr(skimage.data, name)()
        resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
        images.append(np.clip(resized.numpy(), 0, 255))
    return [f"skimage.data.{n}" for n in names], np.stack(images)
