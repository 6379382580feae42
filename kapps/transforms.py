"""Evaluation transforms: how a weight file's published accuracy is reproduced.

Each ImageNet classifier file in ``weights_manifest.json`` carries its transform: the
input size, how the photo is resized (``"shorter_side"`` keeps the aspect ratio,
``"squash"`` does not), the centre-crop fraction ``crop_pct``, the interpolation and the
family's ``preprocess_input`` mode. :func:`eval_transform` returns it as a callable:

>>> import numpy as np, kapps
>>> transform = kapps.eval_transform("mobilenet", alpha=0.25)
>>> transform.size, transform.resize_size, transform.interpolation
((224, 224), (256, 256), 'bilinear')
>>> transform(np.zeros((300, 400, 3), "uint8")).shape    # one image -> a batch of one
(1, 224, 224, 3)
>>> transform.replace(crop_pct=1.0).resize_size
(224, 224)

TensorFlow is imported when an image is transformed, not when this module is.
"""

from __future__ import annotations

__all__ = ["EvalTransform", "INTERPOLATIONS", "RESIZE_MODES", "eval_transform"]

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np

#: Interpolations (TensorFlow's ``tf.image.resize`` methods, antialiased when shrinking).
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area", "lanczos3")
#: ``shorter_side``: scale to cover ``size / crop_pct`` keeping the aspect ratio, then crop
#: the centre; ``squash``: resize to ``size / crop_pct`` square, then crop the centre.
RESIZE_MODES = ("shorter_side", "squash")
_TF_METHODS = {"bicubic": "bicubic", "bilinear": "bilinear", "nearest": "nearest", "area": "area",
               "lanczos3": "lanczos3"}


def _check_size(size: Any) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
    try:
        height, width = (int(v) for v in pair)
        valid = all(float(v) == int(v) for v in pair) and height > 0 and width > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"`size` must be a positive integer or a (height, width) pair. Received: size={size!r}")
    return height, width


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """Decoded RGB images of any size -> model-ready batches (resize, centre crop, preprocess).

    Args:
        size: the model's input ``(height, width)`` (an int for a square).
        crop_pct: the fraction of the resized image kept by the centre crop, in (0, 1].
        interpolation: one of :data:`INTERPOLATIONS`.
        resize: one of :data:`RESIZE_MODES`.
        preprocessing: the ``kapps.preprocess_input`` mode applied last (``"tf"``,
            ``"torch"``, ``"caffe"`` or ``"none"``).
        source: where this protocol comes from (shown by ``kapps info``).
    """

    size: tuple[int, int]
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    resize: str = "shorter_side"
    preprocessing: str = "caffe"
    source: str = ""

    def __post_init__(self) -> None:
        from kapps.imagenet import MODES

        object.__setattr__(self, "size", _check_size(self.size))
        if isinstance(self.crop_pct, bool) or not isinstance(self.crop_pct, (int, float)) \
                or not 0 < self.crop_pct <= 1:
            raise ValueError(f"`crop_pct` must be a number in (0, 1]. Received: crop_pct={self.crop_pct!r}")
        object.__setattr__(self, "crop_pct", float(self.crop_pct))
        for argument, value, accepted in (("interpolation", self.interpolation, INTERPOLATIONS),
                                          ("resize", self.resize, RESIZE_MODES),
                                          ("preprocessing", self.preprocessing, MODES)):
            if value not in accepted:
                raise ValueError(f"`{argument}` must be one of {', '.join(map(repr, accepted))}. "
                                 f"Received: {argument}={value!r}")

    @property
    def resize_size(self) -> tuple[int, int]:
        """The size before the centre crop: ``floor(size / crop_pct)`` (timm's rule)."""
        return tuple(int(math.floor(s / self.crop_pct)) for s in self.size)  # type: ignore[return-value]

    def replace(self, **changes: Any) -> "EvalTransform":
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "resize": self.resize, "crop_pct": self.crop_pct,
                "interpolation": self.interpolation, "preprocessing": self.preprocessing, "source": self.source}

    def describe(self) -> str:
        """One line: ``shorter side 256 (bilinear), centre crop 224x224, preprocessing 'tf'``."""
        rh, rw = self.resize_size
        how = f"shorter side {min(rh, rw)}" if self.resize == "shorter_side" else f"squash to {rh}x{rw}"
        return (f"{how} ({self.interpolation}), centre crop {self.size[0]}x{self.size[1]}, "
                f"preprocessing {self.preprocessing!r}")

    def geometry(self, image: Any) -> Any:
        """One ``(rows, cols, 3)`` image resized and centre-cropped, float32 in [0, 255]
        (a tensor; works inside tf.data graphs)."""
        import tensorflow as tf

        image = tf.cast(tf.convert_to_tensor(image), tf.float32)
        (height, width), (cover_h, cover_w) = self.size, self.resize_size
        if self.resize == "shorter_side":
            shape = tf.cast(tf.shape(image)[:2], tf.float32)
            scale = tf.maximum(cover_h / shape[0], cover_w / shape[1])
            new = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), [cover_h, cover_w])
        else:
            new = tf.constant([cover_h, cover_w], tf.int32)
        image = tf.image.resize(image, new, method=_TF_METHODS[self.interpolation], antialias=True)
        top, left = (new[0] - height) // 2, (new[1] - width) // 2
        image = tf.image.crop_to_bounding_box(image, top, left, height, width)
        return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [height, width, 3])

    def preprocess(self, batch: Any) -> Any:
        """The family's ``preprocess_input`` on a batch of transformed images."""
        from kapps.imagenet import preprocess_input

        return preprocess_input(batch, mode=self.preprocessing)

    def __call__(self, images: Any) -> np.ndarray:
        """One image ``(rows, cols, 3)``, a batch ``(n, rows, cols, 3)`` or a list of images
        of any sizes (RGB, values in [0, 255]) -> a preprocessed float32 batch."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        elif isinstance(images, np.ndarray) and images.ndim != 4:
            raise ValueError("`images` must be one (rows, cols, 3) image, a (n, rows, cols, 3) batch or a list "
                             f"of images. Received: an array of shape {images.shape}")
        batch = np.stack([np.asarray(self.geometry(image)) for image in images])
        return np.asarray(self.preprocess(batch), "float32")


def from_dict(entry: Mapping[str, Any]) -> EvalTransform:
    """An :class:`EvalTransform` from its manifest form (:meth:`EvalTransform.to_dict`)."""
    fields = {f.name for f in dataclasses.fields(EvalTransform)}
    return EvalTransform(**{k: (tuple(v) if k == "size" else v) for k, v in entry.items() if k in fields})


def eval_transform(name: str, weights: str = "imagenet", *, size: int | Sequence[int] | None = None,
                   crop_pct: float | None = None, interpolation: str | None = None, resize: str | None = None,
                   **options: Any) -> EvalTransform:
    """The evaluation transform of a model's ImageNet classifier weights, optionally overridden.

    Args:
        name: registry or Keras name (``"mobilenet"``, ``"MobileNet"``).
        weights: ``"imagenet"`` (the only weights with a published protocol).
        size, crop_pct, interpolation, resize: override the stated protocol.
        **options: the model's own options that choose its file (``alpha=0.25``).

    Raises ValueError naming the argument for a model without ImageNet classifier weights
    or a bad value.
    """
    from kapps.registry import get_spec
    from kapps.weights import manifest

    if weights != "imagenet":
        raise ValueError("`weights` must be 'imagenet': other weights have no stated evaluation transform "
                         f"(build an EvalTransform yourself). Received: weights={weights!r}")
    spec = get_spec(name)
    family_options = spec.options_of(options, weights="imagenet")
    variant = family_options.weights_variant((spec.default_size_for(family_options, None),) * 2 + (3,))
    entry = manifest.find(spec.name, True, variant)
    if entry.eval_transform is None:
        raise ValueError(f"`name`: {entry.file} states no evaluation transform. Received: name={name!r}")
    return from_dict(entry.eval_transform).replace(size=size, crop_pct=crop_pct, interpolation=interpolation,
                                                   resize=resize)
