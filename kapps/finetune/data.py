"""Input data for fine-tuning: folders of class sub-folders or ``tf.data`` datasets.

A folder is scanned once before training: every file in a class sub-folder is read and
decoded, so unreadable or non-image files are listed by path (skipped with a
:class:`BadImageWarning`, or refused with :class:`BadImageError`), and grayscale,
RGBA and mixed-size images are noted (they are converted to RGB and resized).

Training batches are a pure function of ``(seed, phase, epoch)``: the order of an epoch
is a stateless permutation and each image's augmentation uses a seed derived from its
position, so a run resumed from a checkpoint sees exactly the data an uninterrupted run
would, and every tf.distribute strategy sees the same global batches.

>>> import numpy as np, tensorflow as tf
>>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3), "uint8"), [0, 1, 0, 1]))
>>> source = from_dataset(ds, image_size=(16, 16), class_names=["a", "b"])
>>> source.size, source.class_names
(4, ['a', 'b'])
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import os
import warnings
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from kapps import _keras_compat as compat
from kapps import images as image_io
from kapps.errors import KappsError

__all__ = [
    "BadImageError", "BadImageWarning", "ImageFolder", "Source", "scan_folder", "from_folder",
    "from_dataset", "split_folder", "make_augmentation", "augment", "training_dataset", "evaluation_dataset",
    "DataSplit", "prepare_data", "held_out_fraction", "class_weights", "inspect_file", "bad_listing",
    "shape_notes", "as_rgb",
]

#: Formats accepted for training, told apart by content (magic bytes), not by extension.
_MAGIC = {"jpeg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",), "bmp": (b"BM",)}
_GIF = (b"GIF87a", b"GIF89a")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SHOWN_PATHS = 20


class BadImageError(KappsError, ValueError):
    """A class folder holds files that are not usable images (``on_bad_file="error"``)."""


class BadImageWarning(UserWarning):
    """Files skipped because they are not usable images (``on_bad_file="skip"``)."""


@dataclasses.dataclass
class ImageFolder:
    """The result of scanning a folder of class sub-folders.

    ``paths``/``labels`` are the usable images (sorted by class, then path);
    ``skipped`` lists ``(path, reason)`` of every file left out; ``notes`` says what
    was converted (grayscale, RGBA, mixed sizes).
    """

    root: str
    class_names: list[str]
    paths: list[str]
    labels: np.ndarray
    skipped: list[tuple[str, str]]
    notes: list[str]
    shapes: list[tuple[int, int, int]]

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.labels == i)) for i, name in enumerate(self.class_names)}

    def summary(self) -> str:
        counts = ", ".join(f"{name}: {n}" for name, n in self.counts().items())
        return f"{len(self.paths)} images in {len(self.class_names)} classes ({counts}) from {self.root}"


def _sniff(head: bytes) -> str | None:
    for fmt, magics in _MAGIC.items():
        if head.startswith(magics):
            return fmt
    return "gif" if head.startswith(_GIF) else None


def inspect_file(path: str) -> tuple[tuple[int, int, int] | None, str | None]:
    """``((height, width, channels), None)`` for a usable image, else ``(None, reason)``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"unreadable ({e.strerror or e})"
    if not data:
        return None, "empty file (0 bytes)"
    fmt = _sniff(data[:16])
    if fmt is None:
        named = os.path.splitext(path)[1].lower() in _IMAGE_SUFFIXES
        what = "named like an image, but its content" if named else "its content"
        return None, f"not an image: {what} is not JPEG, PNG or BMP"
    if fmt == "gif":
        return None, ("a GIF (graphics/animation format, not accepted as a training photo; "
                      "convert real photos to JPEG or PNG)")
    try:
        shape = tuple(int(d) for d in tf.io.decode_image(data, expand_animations=False).shape)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        message = str(e.message if hasattr(e, "message") else e).strip().splitlines()[0]
        return None, f"corrupt or truncated {fmt.upper()} ({message})"
    if shape[0] == 0 or shape[1] == 0:
        return None, f"a {fmt.upper()} of size {shape[1]}x{shape[0]} (no pixels)"
    return shape, None  # type: ignore[return-value]


def _list_files(folder: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames))
    return found


def bad_listing(skipped: Sequence[tuple[str, str]]) -> str:
    """``(path, reason)`` pairs as indented lines, the first :data:`SHOWN_PATHS` of them."""
    lines = [f"  {path}: {reason}" for path, reason in skipped[:SHOWN_PATHS]]
    if len(skipped) > SHOWN_PATHS:
        lines.append(f"  ... and {len(skipped) - SHOWN_PATHS} more")
    return "\n".join(lines)


def _class_files(root: str, argument: str, class_names: Sequence[str] | None) -> dict[str, list[str]]:
    """``{class: files}`` of ``root``, refusing a missing folder, fewer than 2 classes, other class
    names than ``class_names`` and empty class folders."""
    if not os.path.isdir(root):
        raise ValueError(
            f"`{argument}` must be a directory of class sub-folders or a tf.data.Dataset. "
            f"Received: {argument}={root!r} (no such directory)"
        )
    entries = sorted(os.listdir(root))
    classes = [e for e in entries if not e.startswith(".") and os.path.isdir(os.path.join(root, e))]
    if not classes:
        loose = [e for e in entries if os.path.isfile(os.path.join(root, e))]
        detail = (f"it holds {len(loose)} file(s) but no class sub-folders; put each class's images in "
                  f"a sub-folder of its own, e.g. {os.path.join(root, 'cats', 'img1.jpg')}") if loose else "it is empty"
        raise ValueError(f"`{argument}` must be a directory of class sub-folders. Received: {argument}={root!r}: {detail}.")
    if len(classes) == 1:
        raise ValueError(
            f"`{argument}` must hold at least 2 class sub-folders (a classifier needs two classes or more). "
            f"Received: {argument}={root!r}, which holds a single class sub-folder: {classes[0]!r}."
        )
    if class_names is not None and list(class_names) != classes:
        missing = sorted(set(class_names) - set(classes))
        extra = sorted(set(classes) - set(class_names))
        raise ValueError(
            f"`{argument}` must have the same class sub-folders as the training data {list(class_names)}. "
            f"Received: {argument}={root!r} with {classes}" + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "") + "."
        )
    per_class = {name: _list_files(os.path.join(root, name)) for name in classes}
    for name, files in per_class.items():
        if not files:
            raise ValueError(
                f"`{argument}`: class folder {os.path.join(root, name)!r} is empty. Every class sub-folder must "
                "hold images; remove the folder or add images to it."
            )
    return per_class


def scan_folder(
    root: str | os.PathLike,
    *,
    argument: str = "train",
    on_bad_file: str = "skip",
    class_names: Sequence[str] | None = None,
    workers: int | None = None,
) -> ImageFolder:
    """Scan ``root``/<class>/... and return the usable images, refusing unusable layouts.

    Raises ValueError naming the path for: a missing folder, no class sub-folders,
    an empty class folder, a single class, or class names different from
    ``class_names``. Unusable files are listed by path: a :class:`BadImageWarning`
    with ``on_bad_file="skip"``, a :class:`BadImageError` with ``"error"``.
    """
    if on_bad_file not in ("skip", "error"):
        raise ValueError(f"`on_bad_file` must be 'skip' or 'error'. Received: on_bad_file={on_bad_file!r}")
    root = os.fspath(root)
    per_class = _class_files(root, argument, class_names)
    classes = list(per_class)
    all_files = [f for name in classes for f in per_class[name]]
    with concurrent.futures.ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = dict(zip(all_files, pool.map(inspect_file, all_files)))

    paths, labels, shapes, skipped = [], [], [], []
    for label, name in enumerate(classes):
        good = 0
        for f in per_class[name]:
            shape, reason = results[f]
            if reason is not None:
                skipped.append((f, reason))
                continue
            paths.append(f)
            labels.append(label)
            shapes.append(shape)
            good += 1
        if good == 0:
            raise ValueError(
                f"`{argument}`: class folder {os.path.join(root, name)!r} holds no usable image "
                f"({len(per_class[name])} file(s), none of them a readable JPEG, PNG or BMP):\n"
                + bad_listing([s for s in skipped if s[0] in set(per_class[name])])
            )
    if skipped:
        message = (f"{len(skipped)} file(s) in `{argument}`={root!r} are not usable images")
        if on_bad_file == "error":
            raise BadImageError(f"{message} (on_bad_file='error'):\n{bad_listing(skipped)}\n"
                                "Remove these files, or pass on_bad_file='skip' to leave them out with a warning.")
        warnings.warn(f"{message} and are skipped:\n{bad_listing(skipped)}", BadImageWarning, stacklevel=3)
    return ImageFolder(root, classes, paths, np.asarray(labels, "int32"), skipped,
                       shape_notes(paths, shapes, argument), shapes)


def shape_notes(paths: Sequence[str], shapes: Sequence[tuple[int, int, int]], argument: str) -> list[str]:
    """Notes on the images converted to RGB and on mixed sizes."""
    notes = []
    kinds = {1: "grayscale", 2: "grayscale+alpha", 4: "RGBA"}
    for channels, kind in kinds.items():
        found = [p for p, s in zip(paths, shapes) if s[2] == channels]
        if found:
            action = "converted to RGB" + (" (alpha channel dropped)" if channels in (2, 4) else "")
            shown = ", ".join(found[:5]) + (f", ... ({len(found) - 5} more)" if len(found) > 5 else "")
            notes.append(f"`{argument}`: {len(found)} {kind} image(s) {action}: {shown}")
    sizes = {(s[1], s[0]) for s in shapes}
    if len(sizes) > 1:
        areas = sorted(sizes, key=lambda wh: (wh[0] * wh[1], wh))
        notes.append(
            f"`{argument}`: images have {len(sizes)} different sizes (from {areas[0][0]}x{areas[0][1]} to "
            f"{areas[-1][0]}x{areas[-1][1]}); each is resized to the model's input size."
        )
    return notes


# -- sources: what the pipelines read from ----------------------------------------------------------


@dataclasses.dataclass
class Source:
    """Labelled images ready for the pipelines: a file list or a ``tf.data`` dataset.

    ``images(indices)`` maps a dataset of indices to decoded RGB float32 images of
    ``image_size`` in [0, 255] (file sources only); ``dataset`` is the standardized
    unbatched ``(image, label)`` dataset (dataset sources only).
    """

    class_names: list[str]
    size: int
    image_size: tuple[int, int]
    labels: np.ndarray | None = None
    crop: bool = True
    paths: list[str] | None = None
    dataset: tf.data.Dataset | None = None
    folder: ImageFolder | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_files(self) -> bool:
        return self.paths is not None

    def label_counts(self) -> np.ndarray:
        if self.labels is None:
            raise ValueError("label counts of a streamed dataset are unknown")
        return np.bincount(self.labels, minlength=len(self.class_names))

    def fingerprint(self) -> str:
        """A hash that changes when the data changes (file names, sizes and times, or dataset spec)."""
        digest = hashlib.sha256(repr((self.class_names, self.size, self.image_size, self.crop)).encode())
        if self.paths is not None:
            for path, label in zip(self.paths, self.labels):
                st = os.stat(path)
                digest.update(f"{path}|{label}|{st.st_size}|{int(st.st_mtime)}\n".encode())
        else:
            digest.update(repr(self.dataset.element_spec).encode())
        return digest.hexdigest()[:16]

    def load(self, path: tf.Tensor) -> tf.Tensor:
        return load_image(path, self.image_size, self.crop)

    def element_fn(self) -> Any:
        """A function from an index (a tensor) to the ``(image, target)`` of that file (file sources)."""
        paths, labels = tf.constant(self.paths), tf.constant(self.labels, tf.int32)
        return lambda i: (self.load(tf.gather(paths, i)), tf.gather(labels, i))

    def augment(self, image: tf.Tensor, target: tf.Tensor, seed: tf.Tensor,
                layers: Sequence[keras.layers.Layer]) -> tuple[tf.Tensor, tf.Tensor]:
        """``(image, target)`` after ``layers`` (seeded by ``seed``); a class label is left as it is."""
        return augment(image, seed, layers)[0], target

    def blank_target(self) -> tf.Tensor:
        """The target of a padding row (TPU evaluation batches)."""
        return tf.constant(0, tf.int32)

    def subset(self, indices: np.ndarray) -> "Source":
        """A file source restricted to ``indices`` (used for validation splits)."""
        return dataclasses.replace(self, size=len(indices), labels=self.labels[indices],
                                   paths=[self.paths[i] for i in indices], notes=[])


def fit_image(image: tf.Tensor, image_size: tuple[int, int], crop: bool = True) -> tf.Tensor:
    """Resize one image to ``image_size`` as float32; with ``crop``, first cut its centre to the
    target aspect ratio (no distortion), else stretch it (:func:`kapps.images.fit_image`)."""
    return image_io.fit_image(image, image_size, crop=crop)


def load_image(path: tf.Tensor, image_size: tuple[int, int], crop: bool = True) -> tf.Tensor:
    """Read, decode (JPEG/PNG/BMP; gray and RGBA become RGB) and fit one image (:func:`fit_image`),
    as float32 in [0, 255]."""
    return fit_image(image_io.decode_image(tf.io.read_file(path)), image_size, crop)


def from_folder(folder: ImageFolder, image_size: tuple[int, int], crop: bool = True) -> Source:
    how = " after a center crop to its aspect ratio." if crop else " (stretched: aspect ratio not kept)."
    notes = [n[:-1] + how if "different sizes" in n else n for n in folder.notes]
    return Source(list(folder.class_names), len(folder.paths), tuple(image_size), labels=folder.labels,
                  crop=crop, paths=list(folder.paths), folder=folder, notes=notes)


def split_folder(source: Source, fraction: float, seed: int) -> tuple[Source, Source]:
    """A stratified split: ``fraction`` of each class (at least one image) goes to validation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`validation_split` must be a number between 0 and 1 (exclusive). Received: validation_split={fraction!r}")
    rng = np.random.default_rng([seed, 7919])
    train_idx, val_idx = [], []
    for label in range(len(source.class_names)):
        members = np.flatnonzero(source.labels == label)
        members = members[rng.permutation(len(members))]
        n_val = int(round(len(members) * fraction))
        n_val = min(max(n_val, 1), len(members) - 1)
        if n_val < 1:
            raise ValueError(
                f"`validation_split`={fraction}: class {source.class_names[label]!r} has only {len(members)} "
                "image(s), too few to split; pass a `validation` folder instead."
            )
        val_idx.extend(members[:n_val])
        train_idx.extend(members[n_val:])
    return source.subset(np.sort(train_idx)), source.subset(np.sort(val_idx))


def as_rgb(image: tf.Tensor, channels: int | None) -> tf.Tensor:
    """One image as RGB float32: gray (and gray+alpha) repeated to three channels, RGBA without alpha."""
    image = tf.cast(image, tf.float32)
    if channels in (1, 2):
        return tf.image.grayscale_to_rgb(image[..., :1])
    return image[..., :3] if channels == 4 else image


def _standardize(image: tf.Tensor, label: tf.Tensor, image_size: tuple[int, int], channels: int | None,
                 one_hot: bool, crop: bool) -> tuple[tf.Tensor, tf.Tensor]:
    image = as_rgb(image, channels)
    if image.shape[0] != image_size[0] or image.shape[1] != image_size[1]:
        image = fit_image(image, image_size, crop)
    image = tf.ensure_shape(image, [image_size[0], image_size[1], 3])
    label = tf.argmax(label, axis=-1, output_type=tf.int32) if one_hot else tf.cast(tf.reshape(label, []), tf.int32)
    return image, label


def from_dataset(
    dataset: tf.data.Dataset,
    *,
    image_size: tuple[int, int],
    class_names: Sequence[str] | None = None,
    argument: str = "train",
    crop: bool = True,
) -> Source:
    """Standardize a ``tf.data.Dataset`` of ``(image, label)`` (batched or not) into a :class:`Source`.

    Images are RGB, grayscale or RGBA pixels in [0, 255] of any size (resized);
    labels are integer class indices or one-hot vectors. The dataset is read once to
    count its elements and, when ``class_names`` is not given, its classes.
    """
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ValueError(
            f"`{argument}` must be a tf.data.Dataset of (image, label) pairs. "
            f"Received: {argument} with element_spec={spec}"
        )
    image_spec, label_spec = spec
    if image_spec.shape.rank == 4:
        dataset = dataset.unbatch()
        image_spec, label_spec = dataset.element_spec
    if image_spec.shape.rank != 3:
        raise ValueError(
            f"`{argument}`: images must have shape (height, width, channels), batched or not. "
            f"Received: image spec {image_spec}"
        )
    channels = image_spec.shape[-1]
    if channels not in (1, 2, 3, 4):
        raise ValueError(
            f"`{argument}`: images must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels with a static "
            f"channel dimension. Received: image spec {image_spec}"
        )
    one_hot = label_spec.shape.rank == 1 and label_spec.shape[0] not in (None, 1)
    if not one_hot and not label_spec.dtype.is_integer:
        raise ValueError(
            f"`{argument}`: labels must be integer class indices or one-hot vectors. Received: label spec {label_spec}"
        )
    size = tuple(image_size)
    std = dataset.map(lambda x, y: _standardize(x, y, size, channels, one_hot, crop), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
    labels = np.fromiter((int(y) for y in std.map(lambda x, y: y).as_numpy_iterator()), dtype="int32")
    if len(labels) == 0:
        raise ValueError(f"`{argument}`: the dataset is empty.")
    if class_names is None:
        inferred = getattr(dataset, "class_names", None)
        num = label_spec.shape[0] if one_hot else int(labels.max()) + 1
        class_names = list(inferred) if inferred else [str(i) for i in range(num)]
    class_names = [str(c) for c in class_names]
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(
            f"`{argument}`: labels must be in [0, {len(class_names) - 1}] for {len(class_names)} classes. "
            f"Received: labels from {labels.min()} to {labels.max()}"
        )
    if len(class_names) < 2:
        raise ValueError(f"`{argument}`: a classifier needs at least 2 classes. Received: class_names={class_names}")
    peak = next(iter(std.take(1).map(lambda x, y: tf.reduce_max(x)).as_numpy_iterator()))
    notes = []
    if 0 < peak <= 1.0:
        warnings.warn(
            f"`{argument}`: pixel values look scaled to [0, 1] (max {peak:.3f}); fine_tune expects RGB pixels in "
            "[0, 255] and applies the model family's own preprocessing.", UserWarning, stacklevel=3)
    if channels != 3:
        notes.append(f"`{argument}`: {channels}-channel images are converted to RGB.")
    return Source(class_names, len(labels), size, labels=labels, crop=crop, dataset=std, notes=notes)


# -- augmentation ---------------------------------------------------------------------------------


def make_augmentation(augmentation: Any) -> list[keras.layers.Layer]:
    """Keras preprocessing layers for ``augmentation``: False/None (none), True (flip, rotation,
    zoom, contrast) or a list of layers of your own."""
    if augmentation in (None, False):
        return []
    if augmentation is True or augmentation == "default":
        return [
            keras.layers.RandomFlip("horizontal", name="augment_flip"),
            keras.layers.RandomRotation(0.1, fill_mode="reflect", name="augment_rotation"),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", name="augment_zoom"),
            keras.layers.RandomContrast(0.1, name="augment_contrast"),
        ]
    if isinstance(augmentation, keras.layers.Layer):
        return [augmentation]
    if isinstance(augmentation, (list, tuple)) and all(isinstance(a, keras.layers.Layer) for a in augmentation):
        return list(augmentation)
    raise ValueError(
        "`augmentation` must be False/None, True (flip, rotation, zoom, contrast) or a list of Keras "
        f"preprocessing layers. Received: augmentation={augmentation!r}"
    )


def augment(image: tf.Tensor, seed: tf.Tensor, layers: Sequence[keras.layers.Layer],
            mask: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Apply ``layers`` to one image with seeds derived from ``seed`` (int64 pair): stateless.

    A ``mask`` (``(h, w, 1)``) gets each layer's same transformation through Keras'
    ``transform_segmentation_masks`` (nearest neighbour; colour changes leave it alone).
    """
    for i, layer in enumerate(layers):
        if hasattr(layer, "get_random_transformation") and hasattr(layer, "transform_images"):
            layer_seed = compat.fixed_seed(tf.stack([seed[0], seed[1] * 16 + i]))
            transform = layer.get_random_transformation(image, training=True, seed=layer_seed)
            image = layer.transform_images(image, transform, training=True)
            if mask is not None:
                mask = tf.cast(layer.transform_segmentation_masks(mask, transform, training=True), tf.float32)
        else:  # a layer of another kind: applied as it is (its randomness is its own)
            image = layer(image, training=True)
        image = tf.cast(image, tf.float32)
    return image, mask


# -- pipelines ------------------------------------------------------------------------------------


def _epoch_key(seed: int, phase: int, epoch: tf.Tensor) -> tf.Tensor:
    """The int64 seed of one epoch: a function of (seed, phase, epoch) only."""
    return tf.cast(seed, tf.int64) * 1_000_003 + phase * 10_007 + tf.cast(epoch, tf.int64)


def _file_epochs(source: Source, seed: int, phase: int, epochs: tuple[int, int], steps: int, global_batch: int,
                 shard: tuple[int, int], shuffle: bool) -> tf.data.Dataset:
    """``(image, target, position, key)`` of the rows ``shard`` of every global batch, files read in parallel."""
    used, (lo, hi) = steps * global_batch, shard
    element = source.element_fn()

    def epoch_files(epoch: tf.Tensor) -> tf.data.Dataset:
        key = _epoch_key(seed, phase, epoch)
        if shuffle:
            noise = tf.random.stateless_uniform([source.size], seed=tf.stack([key, tf.constant(17, tf.int64)]))
            order = tf.argsort(noise)[:used]
        else:
            order = tf.range(used)
        grid = tf.reshape(order, [steps, global_batch])[:, lo:hi]
        pos = tf.reshape(tf.range(used, dtype=tf.int64), [steps, global_batch])[:, lo:hi]
        return tf.data.Dataset.from_tensor_slices((tf.reshape(grid, [-1]), tf.reshape(pos, [-1]),
                                                   tf.fill([steps * (hi - lo)], key)))

    ds = tf.data.Dataset.range(*epochs).flat_map(epoch_files)
    return ds.map(lambda i, pos, key: (*element(i), pos, key), num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)


def _stream_epochs(source: Source, seed: int, phase: int, epochs: tuple[int, int], used: int, global_batch: int,
                   shard: tuple[int, int], shuffle: bool, shuffle_buffer: int) -> tf.data.Dataset:
    """The same four-tuples from a ``tf.data.Dataset`` source (shuffled through a buffer)."""
    lo, hi = shard
    first_epoch, last_epoch = epochs

    def epoch_stream(epoch: int) -> tf.data.Dataset:
        key = (int(seed) * 1_000_003 + phase * 10_007 + epoch) % (2**31 - 1)  # shuffle wants a Python seed
        ds = source.dataset.shuffle(min(source.size, shuffle_buffer), seed=key, reshuffle_each_iteration=False) \
            if shuffle else source.dataset
        ds = ds.take(used).enumerate().filter(
            lambda pos, xy: tf.logical_and(pos % global_batch >= lo, pos % global_batch < hi))
        return ds.map(lambda pos, xy: (xy[0], xy[1], pos, tf.constant(key, tf.int64)))

    return functools.reduce(tf.data.Dataset.concatenate,
                            [epoch_stream(e) for e in range(first_epoch, max(last_epoch, first_epoch + 1))])


def training_dataset(
    source: Source,
    *,
    seed: int,
    phase: int,
    first_epoch: int,
    last_epoch: int,
    global_batch: int,
    per_replica_batch: int,
    shard: tuple[int, int],
    augmentation: Sequence[keras.layers.Layer] = (),
    sample_weights: np.ndarray | None = None,
    shuffle: bool = True,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """The training batches of epochs ``first_epoch .. last_epoch - 1`` of one phase, for one input pipeline.

    Epoch ``e`` is a permutation of the images drawn from ``(seed, phase, e)``, cut to
    whole global batches. This pipeline keeps the rows ``shard = (lo, hi)`` of every
    global batch and yields them in per-replica batches (the rows of its replicas, in
    order). Each image is augmented with a seed made from its position in the epoch.
    """
    steps = source.size // global_batch
    aug = list(augmentation)
    weights = None if sample_weights is None else tf.constant(sample_weights, tf.float32)

    def finish(image: tf.Tensor, label: tf.Tensor, pos: tf.Tensor, key: tf.Tensor):
        if aug:
            image, label = source.augment(image, label, tf.stack([key, pos]), aug)
        if weights is None:
            return image, label
        return image, label, tf.gather(weights, label)

    epochs = (first_epoch, last_epoch)
    if source.is_files:
        ds = _file_epochs(source, seed, phase, epochs, steps, global_batch, shard, shuffle)
    else:
        ds = _stream_epochs(source, seed, phase, epochs, steps * global_batch, global_batch, shard, shuffle,
                            shuffle_buffer)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(per_replica_batch, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(
    source: Source, batch_size: int, *, pad_to_batch: bool = False, cache: bool = False
) -> tf.data.Dataset:
    """``(image, label)`` batches in a fixed order (no augmentation).

    ``pad_to_batch`` (TPUs: static shapes) pads the last batch with blank images of
    sample weight 0 and yields ``(image, label, weight)`` (a weight per pixel for masks),
    so metrics stay exact.
    """
    if source.is_files:
        ds = tf.data.Dataset.range(source.size).map(source.element_fn(), num_parallel_calls=tf.data.AUTOTUNE,
                                                    deterministic=True)
    else:
        ds = source.dataset
    if cache:
        ds = ds.cache()
    if pad_to_batch:
        pad = (-source.size) % batch_size
        h, w = source.image_size
        ds = ds.map(lambda x, y: (x, y, tf.ones_like(y, tf.float32)))  # a weight per label (or pixel)
        if pad:
            target = source.blank_target()
            blank = tf.data.Dataset.from_tensors((tf.zeros([h, w, 3]), target, tf.zeros_like(target, tf.float32)))
            ds = ds.concatenate(blank.repeat(pad))
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = ds.batch(batch_size)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def take_images(source: Source, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images (float32, [0, 255]) and labels, spread over the classes when possible."""
    if source.is_files:
        per_class = [np.flatnonzero(source.labels == c) for c in range(len(source.class_names))]
        picked: list[int] = []
        rank = 0
        while len(picked) < min(count, source.size):  # round robin over the classes
            picked.extend(int(m[rank]) for m in per_class if rank < len(m))
            rank += 1
        picked = picked[:count]
        images = np.stack([source.load(tf.constant(source.paths[i])).numpy() for i in picked])
        return images, source.labels[picked]
    batch = list(source.dataset.take(count).batch(count).as_numpy_iterator())[0]
    return batch[0], batch[1]


# -- the data of a run: training and validation sources, the split policy, class weights ---------------


@dataclasses.dataclass
class DataSplit:
    """The training and validation sources of a run, what was noticed about them, the files left out."""

    train: Source
    validation: Source | None
    notes: list[str] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _load(data: Any, argument: str, names: Sequence[str] | None, split: DataSplit, image_size: tuple[int, int],
          on_bad_file: str, crop: bool) -> Source:
    """A source for the ``train``/``validation`` argument ``data``; notes and skipped files go to ``split``."""
    if isinstance(data, (str, os.PathLike)):
        folder = scan_folder(data, argument=argument, on_bad_file=on_bad_file, class_names=names)
        split.skipped.extend(folder.skipped)
        source = from_folder(folder, image_size, crop)
    elif isinstance(data, tf.data.Dataset):
        source = from_dataset(data, image_size=image_size, class_names=names, argument=argument, crop=crop)
    else:
        raise ValueError(f"`{argument}` must be a directory of class sub-folders or a tf.data.Dataset of "
                         f"(image, label). Received: {argument}={data!r}")
    split.notes.extend(source.notes)
    mine = [path for path, _ in source.folder.skipped] if source.folder is not None else []
    if mine:
        split.notes.append(f"`{argument}`: {len(mine)} unusable file(s) skipped: " + ", ".join(mine[:5])
                           + (" ..." if len(mine) > 5 else ""))
    return source


def _split_dataset(source: Source, fraction: float) -> tuple[Source, Source, str]:
    """The first ``fraction`` of a dataset source for validation, the rest for training."""
    n_val = max(1, int(round(source.size * fraction)))
    if n_val >= source.size:
        raise ValueError(f"`validation_split`={fraction} leaves no training data ({source.size} images).")
    full, labels = source.dataset, source.labels
    val_part = Source(source.class_names, n_val, source.image_size, labels=labels[:n_val], crop=source.crop,
                      dataset=full.take(n_val))
    train_part = Source(source.class_names, source.size - n_val, source.image_size, labels=labels[n_val:],
                        crop=source.crop, dataset=full.skip(n_val))
    note = (f"validation: the first {n_val} elements of the `train` dataset ({fraction:.0%}) are held out "
            "(the dataset must iterate in a fixed order)")
    return train_part, val_part, note


def held_out_fraction(validation_given: bool, validation_split: Any, train_is_files: bool) -> float | None:
    """The fraction of ``train`` to hold out for validation, or None (the split policy of
    :func:`prepare_data`); refuses a ``validation_split`` that does not fit."""
    if validation_given:
        if validation_split not in ("auto", None):
            raise ValueError("`validation_split` must be 'auto' or None when `validation` is given (pass one of "
                             f"them). Received: validation_split={validation_split!r}")
        return None
    if validation_split is None or (validation_split == "auto" and not train_is_files):
        return None
    fraction = 0.2 if validation_split == "auto" else validation_split
    if not isinstance(fraction, float) or not 0.0 < fraction < 1.0:
        raise ValueError(f"`validation_split` must be 'auto', None or a number between 0 and 1 (exclusive). "
                         f"Received: validation_split={validation_split!r}")
    return fraction


def prepare_data(train: Any, validation: Any, validation_split: Any, image_size: tuple[int, int], *,
                 class_names: Sequence[str] | None = None, on_bad_file: str = "skip", seed: int | None = None,
                 crop: bool = True) -> DataSplit:
    """The sources of a run and the split policy.

    With ``validation``, ``validation_split`` must be ``"auto"`` or None. Without it,
    ``"auto"`` holds out 0.2 of each class of a training folder (a dataset: no
    validation), a number holds out that fraction (a folder: stratified, seeded by
    ``seed``; a dataset: its first elements), and None trains on everything.
    """
    split = DataSplit(None, None)  # type: ignore[arg-type]
    split.train = _load(train, "train", class_names, split, image_size, on_bad_file, crop)
    fraction = held_out_fraction(validation is not None, validation_split, split.train.is_files)
    if validation is not None:
        split.validation = _load(validation, "validation", split.train.class_names, split, image_size,
                                 on_bad_file, crop)
    if fraction is None:
        return split
    split_seed = 0 if seed is None else seed
    if split.train.is_files:
        split.train, split.validation = split_folder(split.train, fraction, split_seed)
        split.notes.append(f"validation: {split.validation.size} images ({fraction:.0%} of each class of "
                           f"`train`, seed {split_seed}) held out from training")
    else:
        split.train, split.validation, note = _split_dataset(split.train, fraction)
        split.notes.append(note)
    return split


def class_weights(class_weight: Any, source: Source) -> np.ndarray | None:
    """One weight per class for ``class_weight`` (None, ``"balanced"`` or ``{name or index: weight}``)."""
    if class_weight is None:
        return None
    names = source.class_names
    if class_weight == "balanced":
        counts = source.label_counts().astype("float64")
        return (counts.sum() / (len(names) * np.maximum(counts, 1))).astype("float32")
    if isinstance(class_weight, Mapping):
        weights = np.ones(len(names), "float32")
        for key, value in class_weight.items():
            index = names.index(key) if key in names else key
            if not isinstance(index, (int, np.integer)) or not 0 <= index < len(names):
                raise ValueError(f"`class_weight` keys must be class names {names} or indices 0..{len(names) - 1}. "
                                 f"Received: key {key!r}")
            weights[int(index)] = float(value)
        return weights
    raise ValueError(f"`class_weight` must be None, 'balanced' or a dict {{class name or index: weight}}. "
                     f"Received: class_weight={class_weight!r}")
