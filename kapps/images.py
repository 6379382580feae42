"""Photos into model-ready arrays: one resize/crop rule and one list of sample photos.

:func:`fit_image` is the one place where an image is brought to a model's size (stretched,
or centre-cropped to the target aspect ratio first); it is made of TensorFlow image ops,
so ``kapps.finetune``'s tf.data pipeline uses it in its graphs and :func:`load_image`,
:func:`sample_photos` and the export's calibration images use it eagerly. TensorFlow is
imported when an image is loaded, not when this module is.

>>> from kapps.images import sample_photos
>>> labels, batch = sample_photos(32)
>>> labels[0], batch.shape
('skimage.data.chelsea', (3, 32, 32, 3))
"""

from __future__ import annotations

__all__ = ["SAMPLE_PHOTOS", "fit_image", "decode_image", "read_image", "load_image", "sample_photo", "sample_photos", "sample_photo_views"]

import os
from typing import Any, Callable, Sequence

import numpy as np

#: scikit-image's colour photos (shipped with it, no download). The first three are
#: what ``kapps predict`` shows without an image; export calibrates on all of them.
SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
#: How many of :data:`SAMPLE_PHOTOS` :func:`sample_photos` returns by default.
DEFAULT_SAMPLES = 3


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def fit_image(image: Any, size: int | Sequence[int], crop: bool = False, *, interpolation: str = "bilinear") -> Any:
    """Resize one ``(rows, cols, channels)`` image to ``size`` as float32 (antialiased bilinear).

    With ``crop``, its centre is first cut to the target aspect ratio (no distortion);
    otherwise it is stretched. ``interpolation="nearest"`` (segmentation masks: class
    indices stay class indices) takes the same crop and the nearest pixel instead. Works
    eagerly and inside tf.data / tf.function graphs.

    >>> import numpy as np
    >>> tuple(fit_image(np.zeros((40, 80, 3), "uint8"), 20, crop=True).shape)
    (20, 20, 3)
    """
    import tensorflow as tf

    height, width = _size(size)
    image = tf.convert_to_tensor(image)
    channels = image.shape[-1]
    if crop:
        shape = tf.shape(image)
        rows, cols = shape[0], shape[1]
        ratio = width / height
        crop_h = tf.minimum(rows, tf.cast(tf.round(tf.cast(cols, tf.float32) / ratio), tf.int32))
        crop_w = tf.minimum(cols, tf.cast(tf.round(tf.cast(rows, tf.float32) * ratio), tf.int32))
        crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
        image = tf.image.crop_to_bounding_box(image, (rows - crop_h) // 2, (cols - crop_w) // 2, crop_h, crop_w)
    if interpolation == "nearest":
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width), method="nearest")
    elif interpolation == "bilinear":
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width), antialias=True)
    else:
        raise ValueError(f"`interpolation` must be 'bilinear' or 'nearest'. Received: interpolation={interpolation!r}")
    return tf.ensure_shape(image, [height, width, channels])


def decode_image(data: Any) -> Any:
    """Decode JPEG/PNG/GIF/BMP bytes (a tensor or ``bytes``) as an RGB uint8 tensor (gray, RGBA -> RGB)."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def read_image(path: str | os.PathLike) -> Any:
    """Read and decode an image file as an RGB uint8 tensor.

    Raises ValueError naming the path when the file is missing or not a readable image.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"`image` must be an existing image file. Received: {path!r} (no such file)")
    try:
        return decode_image(tf.io.read_file(path))
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
        raise ValueError(
            f"`image` must be a JPEG, PNG, GIF or BMP file. Received: {path!r} ({e.message.splitlines()[0]})"
        ) from None


def load_image(path: str | os.PathLike, size: int | Sequence[int] | None = None, *, crop: bool = False,
               transform: Callable[[Any], np.ndarray] | None = None) -> np.ndarray:
    """Read an image file as RGB float32 in [0, 255], fitted to ``size`` (:func:`fit_image`).

    With ``transform`` (an evaluation transform, ``kapps.eval_transform(name)``) the image
    goes through it instead and comes back model-ready (resized, cropped, preprocessed).
    Raises ValueError naming the path when the file is not a readable image.
    """
    if (size is None) == (transform is None):
        raise ValueError("`load_image` takes exactly one of `size` and `transform`. "
                         f"Received: size={size!r}, transform={transform!r}")
    image = read_image(path)
    if transform is not None:
        return transform(np.asarray(image))[0]
    return np.clip(np.asarray(fit_image(image, size, crop=crop)), 0, 255)


def sample_photo(name: str) -> np.ndarray:
    """One of :data:`SAMPLE_PHOTOS` at its own size, RGB uint8 (needs scikit-image)."""
    try:
        import skimage.data
    except ImportError:
        raise ValueError(
            "No image given and scikit-image (for its sample photos) is not installed: pass image paths, "
            "or `pip install scikit-image`."
        ) from None
    return np.asarray(getattr(skimage.data, name)())[..., :3]


def sample_photos(size: int | Sequence[int],
                  names: Sequence[str] = SAMPLE_PHOTOS[:DEFAULT_SAMPLES]) -> tuple[list[str], np.ndarray]:
    """scikit-image's sample photos as a batch (labels, RGB float32 images in [0, 255]); needs scikit-image."""
    images = [np.clip(np.asarray(fit_image(sample_photo(name), size)), 0, 255) for name in names]
    return [f"skimage.data.{n}" for n in names], np.stack(images)


def sample_photo_views(size: int | Sequence[int], names: Sequence[str] = SAMPLE_PHOTOS) -> np.ndarray:
    """Six views of each sample photo: whole, its four corners (70 %) and its flipped centre.

    >>> sample_photo_views(16).shape
    (42, 16, 16, 3)
    """
    views = []
    for name in names:
        image = sample_photo(name).astype("float32")
        h, w = image.shape[:2]
        ch, cw = int(h * 0.7), int(w * 0.7)
        centre = image[(h - ch) // 2:(h + ch) // 2, (w - cw) // 2:(w + cw) // 2][:, ::-1]
        for view in (image, image[:ch, :cw], image[:ch, -cw:], image[-ch:, :cw], image[-ch:, -cw:], centre):
            views.append(np.asarray(fit_image(view, size)))
    return np.clip(np.stack(views), 0, 255)
