"""Segmentation data for fine_tune: folders of images and masks, or datasets of ``(image, mask)``.

A folder holds an ``images/`` and a ``masks/`` sub-folder (or ``image/`` and ``label/``, the
layout of the ISBI membrane data); the image ``images/<stem>.<ext>`` (JPEG, PNG or BMP) goes
with the mask ``masks/<stem>.png``. A mask is a PNG of class indices, one value per pixel
(mode L, P or I; an RGB mask whose three channels are equal counts as gray), or binary 0/255:
when every mask of a folder holds only 0 and 255, 255 is class 1. Images are fed as RGB
(grayscale images are repeated to three channels).

Every pair is read once before training. An image without a mask (and the reverse), a mask
whose size differs from its image's, a colour mask and (once the model's class count is
known, :func:`check_classes`) class values outside ``range(classes)`` are refused with a
:class:`BadMaskError` naming each file; unreadable files are skipped or refused as for
classifiers (``on_bad_file``).

Masks are cropped like their images and resized with the nearest pixel; augmentation draws
one random transformation per image and applies it to both (Keras'
``transform_segmentation_masks``: nearest neighbour, colour changes leave the mask alone).

>>> import numpy as np, tensorflow as tf
>>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3), "uint8"), np.zeros((4, 8, 8), "uint8")))
>>> source = from_mask_dataset(ds, image_size=(16, 16))
>>> source.size, [tuple(t.shape) for t in next(iter(source.dataset))]
(4, [(16, 16, 3), (16, 16)])
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import warnings
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from kapps import images as image_io
from kapps.errors import KappsError
from kapps.finetune import data as data_lib

__all__ = ["LAYOUTS", "BadMaskError", "MaskFolder", "MaskSource", "mask_layout", "is_mask_data", "read_mask",
           "scan_mask_folder", "from_mask_folder", "from_mask_dataset", "prepare_masks", "check_classes",
           "check_augmentation", "take_pairs"]

#: ``(images, masks)`` sub-folder names a segmentation folder may have, in the order they are looked for.
LAYOUTS = (("images", "masks"), ("image", "label"))
_PNG = b"\x89PNG\r\n\x1a\n"


class BadMaskError(KappsError, ValueError):
    """Segmentation data that cannot be trained on: unpaired files, sizes that differ, colour masks, bad classes."""


def mask_layout(root: Any) -> tuple[str, str] | None:
    """The ``(images, masks)`` sub-folders of ``root`` (see :data:`LAYOUTS`), or None."""
    if not isinstance(root, (str, os.PathLike)) or not os.path.isdir(root):
        return None
    for images, masks in LAYOUTS:
        if os.path.isdir(os.path.join(root, images)) and os.path.isdir(os.path.join(root, masks)):
            return images, masks
    return None


def _is_mask_spec(spec: Any) -> bool:
    """A dataset element ``(image, target)`` whose target has a value per pixel (batched or not)."""
    if not (isinstance(spec, tuple) and len(spec) == 2):
        return False
    image, target = (s.shape.rank for s in spec)
    return image is not None and target is not None and image >= 3 and target >= image - 1


def is_mask_data(data: Any) -> bool:
    """Whether ``data`` is segmentation data: a folder with a layout of :data:`LAYOUTS`, or a
    ``tf.data.Dataset`` of ``(image, mask)`` with a mask per pixel."""
    if isinstance(data, tf.data.Dataset):
        return _is_mask_spec(data.element_spec)
    return mask_layout(data) is not None


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """The class indices of a mask file, an int32 ``(height, width)`` array.

    Palette PNGs give their indices (not their colours); an RGB(A) mask whose channels differ
    raises :class:`BadMaskError` naming it.
    """
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as image:
        mode = image.mode
        pixels = np.asarray(image)
    if pixels.ndim == 3:
        colour = pixels[..., :3]
        if pixels.shape[-1] >= 3 and not (np.array_equal(colour[..., 0], colour[..., 1])
                                          and np.array_equal(colour[..., 0], colour[..., 2])):
            raise BadMaskError(
                f"mask {os.fspath(path)!r} is a colour image (mode {mode}) whose channels differ: a mask must hold "
                "class indices, one value per pixel (a grayscale or palette PNG). Convert its colours to indices.")
        pixels = pixels[..., 0]
    return pixels.astype("int32")


# -- folders --------------------------------------------------------------------------------------


@dataclasses.dataclass
class MaskFolder:
    """The scan of a segmentation folder: usable pairs, the distinct values of each mask, what was skipped."""

    root: str
    image_paths: list[str]
    mask_paths: list[str]
    values: list[np.ndarray]
    shapes: list[tuple[int, int, int]]
    skipped: list[tuple[str, str]]
    notes: list[str]

    @property
    def binary(self) -> bool:
        """Whether the masks are 0/255 (255 is then class 1)."""
        return binary_values(self.values)


def binary_values(values: Sequence[np.ndarray]) -> bool:
    """Whether the masks with these distinct values are 0/255 binary masks (255 present, nothing but 0 and 255)."""
    found = set(np.concatenate([np.asarray(v).ravel() for v in values]).tolist()) if values else set()
    return 255 in found and found <= {0, 255}


def _files(folder: str) -> dict[str, str]:
    """``{stem: path}`` of the files of ``folder`` (not hidden); two files of one stem are refused."""
    found: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        stem = os.path.splitext(name)[0]
        if stem in found:
            raise BadMaskError(f"{found[stem]!r} and {path!r} have the same file name stem: each image and each "
                               "mask must have a stem of its own (it is what pairs them).")
        found[stem] = path
    return found


def _pairs(root: str, layout: tuple[str, str], argument: str) -> list[tuple[str, str]]:
    """``(image, mask)`` paths paired by stem; refuses images without a mask and masks without an image."""
    image_dir, mask_dir = (os.path.join(root, name) for name in layout)
    images, masks = _files(image_dir), _files(mask_dir)
    for kind, have, other, other_dir in (("image", images, masks, mask_dir), ("mask", masks, images, image_dir)):
        alone = [(have[stem], f"no {'mask' if kind == 'image' else 'image'} of this stem in {other_dir}")
                 for stem in sorted(set(have) - set(other))]
        if alone:
            raise BadMaskError(f"`{argument}`: {len(alone)} {kind}(s) without a partner (an image and its mask share "
                               f"their file name stem: {layout[0]}/a.jpg goes with {layout[1]}/a.png):\n"
                               + data_lib.bad_listing(alone))
    if not images:
        raise BadMaskError(f"`{argument}`: {image_dir!r} holds no images.")
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def _inspect_pair(pair: tuple[str, str]) -> tuple[Any, Any, str | None, BadMaskError | None]:
    """``(image shape, mask values, reason it is unusable, structural error)`` of one pair."""
    image_path, mask_path = pair
    shape, reason = data_lib.inspect_file(image_path)
    if reason is not None:
        return None, None, f"image: {reason}", None
    try:
        with open(mask_path, "rb") as f:
            head = f.read(8)
        if head != _PNG:
            return None, None, f"mask {mask_path}: not a PNG (masks must be lossless PNG files of class indices)", None
        mask = read_mask(mask_path)
    except BadMaskError as e:
        return None, None, None, e
    except (OSError, ValueError) as e:  # PIL: truncated or corrupt
        return None, None, f"mask {mask_path}: unreadable ({e})", None
    if mask.shape != tuple(shape[:2]):
        return None, None, None, BadMaskError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                                              f"{image_path} is {shape[1]}x{shape[0]}")
    return shape, np.unique(mask), None, None


def scan_mask_folder(root: str | os.PathLike, *, argument: str = "train", on_bad_file: str = "skip",
                     workers: int | None = None) -> MaskFolder:
    """Pair and read every image and mask of ``root`` (see the module docstring); raises
    :class:`BadMaskError` naming each unpaired file, size mismatch and colour mask."""
    root = os.fspath(root)
    layout = mask_layout(root)
    if layout is None:
        names = " or ".join(f"{a}/ and {b}/" for a, b in LAYOUTS)
        raise BadMaskError(f"`{argument}` must be a folder with {names} sub-folders for segmentation. "
                           f"Received: {argument}={root!r}")
    pairs = _pairs(root, layout, argument)
    with concurrent.futures.ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = list(pool.map(_inspect_pair, pairs))
    errors = [str(error) for *_, error in results if error is not None]
    if errors:
        raise BadMaskError(f"`{argument}`: {len(errors)} mask(s) cannot be used:\n"
                           + "\n".join(f"  {e}" for e in errors[:data_lib.SHOWN_PATHS])
                           + (f"\n  ... and {len(errors) - data_lib.SHOWN_PATHS} more"
                              if len(errors) > data_lib.SHOWN_PATHS else ""))
    skipped = [(pair[0], reason) for pair, (_, _, reason, _) in zip(pairs, results) if reason is not None]
    kept = [(pair, shape, values) for pair, (shape, values, reason, _) in zip(pairs, results) if reason is None]
    if skipped:
        message = f"{len(skipped)} pair(s) in `{argument}`={root!r} are not usable"
        if on_bad_file == "error":
            raise data_lib.BadImageError(f"{message} (on_bad_file='error'):\n{data_lib.bad_listing(skipped)}\n"
                                         "Remove these files, or pass on_bad_file='skip' to leave them out.")
        warnings.warn(f"{message} and are skipped:\n{data_lib.bad_listing(skipped)}", data_lib.BadImageWarning,
                      stacklevel=3)
    if not kept:
        raise BadMaskError(f"`{argument}`: no usable image and mask pair in {root!r}.")
    image_paths = [pair[0] for pair, _, _ in kept]
    shapes = [shape for _, shape, _ in kept]
    folder = MaskFolder(root, image_paths, [pair[1] for pair, _, _ in kept], [v for *_, v in kept], shapes,
                        skipped, data_lib.shape_notes(image_paths, shapes, argument))
    if folder.binary:
        folder.notes.append(f"`{argument}`: masks are 0/255 binary; 255 is read as class 1")
    return folder


# -- sources --------------------------------------------------------------------------------------


def _mask_array(path: Any) -> np.ndarray:
    path = path.item() if isinstance(path, np.ndarray) else path  # eagerly: a 0-d array of bytes
    return read_mask(path.decode())


@dataclasses.dataclass
class MaskSource(data_lib.Source):
    """Images with their masks, for :mod:`~kapps.finetune.data`'s pipelines: targets are int32
    ``(height, width)`` class maps. ``values`` holds the distinct raw values of each mask and
    ``owners`` what names it in errors (its path, or ``element i`` of a dataset)."""

    mask_paths: list[str] | None = None
    binary: bool = False
    values: list[np.ndarray] = dataclasses.field(default_factory=list)
    owners: list[str] = dataclasses.field(default_factory=list)

    def load_mask(self, path: tf.Tensor) -> tf.Tensor:
        """Read one mask, crop it like its image and resize it (nearest pixel): int32 ``(h, w)``."""
        mask = tf.numpy_function(_mask_array, [path], tf.int32, stateful=False)
        mask.set_shape([None, None])
        return self.fit_mask(mask)

    def fit_mask(self, mask: tf.Tensor) -> tf.Tensor:
        """A raw mask (``(h, w)``, any integer values) as class indices at ``image_size``."""
        mask = tf.cast(mask, tf.int32)
        if self.binary:
            mask = tf.where(mask == 255, 1, mask)
        fitted = image_io.fit_image(mask[..., None], self.image_size, crop=self.crop, interpolation="nearest")
        return tf.cast(fitted[..., 0], tf.int32)

    def element_fn(self) -> Any:
        images, masks = tf.constant(self.paths), tf.constant(self.mask_paths)
        return lambda i: (self.load(tf.gather(images, i)), self.load_mask(tf.gather(masks, i)))

    def augment(self, image: tf.Tensor, target: tf.Tensor, seed: tf.Tensor,
                layers: Sequence[keras.layers.Layer]) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = data_lib.augment(image, seed, layers, mask=tf.cast(target[..., None], tf.float32))
        return image, tf.cast(tf.round(mask[..., 0]), tf.int32)

    def blank_target(self) -> tf.Tensor:
        return tf.zeros(self.image_size, tf.int32)

    def label_counts(self) -> np.ndarray:
        raise ValueError("segmentation data have no per-image labels to count")

    def fingerprint(self) -> str:
        digest = hashlib.sha256(repr((self.size, self.image_size, self.crop, self.binary)).encode())
        if self.paths is not None:
            for image, mask in zip(self.paths, self.mask_paths):
                for path in (image, mask):
                    st = os.stat(path)
                    digest.update(f"{path}|{st.st_size}|{int(st.st_mtime)}\n".encode())
        else:
            digest.update(repr(self.dataset.element_spec).encode())
            digest.update(repr([v.tolist() for v in self.values]).encode())
        return digest.hexdigest()[:16]

    def subset(self, indices: np.ndarray) -> "MaskSource":
        pick = [int(i) for i in indices]
        return dataclasses.replace(self, size=len(pick), paths=[self.paths[i] for i in pick],
                                   mask_paths=[self.mask_paths[i] for i in pick], values=[self.values[i] for i in pick],
                                   owners=[self.owners[i] for i in pick], notes=[])


def from_mask_folder(folder: MaskFolder, image_size: tuple[int, int], crop: bool = True) -> MaskSource:
    """A :class:`MaskSource` of a scanned folder, images and masks fitted to ``image_size``."""
    return MaskSource([], len(folder.image_paths), tuple(image_size), crop=crop, paths=list(folder.image_paths),
                      mask_paths=list(folder.mask_paths), binary=folder.binary, values=list(folder.values),
                      owners=list(folder.mask_paths), notes=list(folder.notes))


def _dataset_facts(dataset: tf.data.Dataset, argument: str) -> list[np.ndarray]:
    """The distinct values of each mask of ``dataset`` (read once); refuses masks whose size differs
    from their image's and values that are not whole numbers."""
    def facts(image: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return tf.shape(image)[:2], tf.shape(mask)[:2], tf.unique(tf.reshape(tf.cast(mask, tf.float64), [-1]))[0]

    values, wrong = [], []
    for i, (image_hw, mask_hw, distinct) in enumerate(dataset.map(facts).as_numpy_iterator()):
        if tuple(image_hw) != tuple(mask_hw):
            wrong.append(f"element {i}: mask {mask_hw[1]}x{mask_hw[0]} but image {image_hw[1]}x{image_hw[0]}")
        if not np.all(distinct == np.round(distinct)):
            wrong.append(f"element {i}: mask values are not whole numbers (class indices)")
        values.append(np.sort(distinct).astype("int64"))
    if wrong:
        raise BadMaskError(f"`{argument}`: {len(wrong)} mask(s) cannot be used:\n"
                           + "\n".join(f"  {w}" for w in wrong[:data_lib.SHOWN_PATHS]))
    if not values:
        raise BadMaskError(f"`{argument}`: the dataset is empty.")
    return values


def from_mask_dataset(dataset: tf.data.Dataset, *, image_size: tuple[int, int], argument: str = "train",
                      crop: bool = True) -> MaskSource:
    """Standardize a ``tf.data.Dataset`` of ``(image, mask)`` (batched or not) into a :class:`MaskSource`.

    Images: RGB, grayscale or RGBA pixels in [0, 255]; masks: ``(h, w)`` or ``(h, w, 1)``
    class indices (or 0/255), the image's size. The dataset is read once to check them.
    """
    spec = dataset.element_spec
    if not _is_mask_spec(spec):
        raise BadMaskError(f"`{argument}` must be a tf.data.Dataset of (image, mask) pairs with a mask per pixel. "
                           f"Received: {argument} with element_spec={spec}")
    if spec[0].shape.rank == 4:
        dataset = dataset.unbatch()
        spec = dataset.element_spec
    image_spec, mask_spec = spec
    channels = image_spec.shape[-1]
    if image_spec.shape.rank != 3 or channels not in (1, 2, 3, 4):
        raise BadMaskError(f"`{argument}`: images must be (height, width, channels) with 1, 3 or 4 channels. "
                           f"Received: image spec {image_spec}")
    if mask_spec.shape.rank == 3 and mask_spec.shape[-1] != 1:
        raise BadMaskError(f"`{argument}`: masks must be (height, width) or (height, width, 1) class indices, not "
                           f"colours. Received: mask spec {mask_spec}")
    dataset = dataset.map(lambda x, m: (x, m if m.shape.rank == 2 else m[..., 0]))
    values = _dataset_facts(dataset, argument)
    source = MaskSource([], len(values), tuple(image_size), crop=crop, binary=binary_values(values), values=values,
                        owners=[f"element {i} of `{argument}`" for i in range(len(values))])
    size = tuple(image_size)

    def standardize(image: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = data_lib.as_rgb(image, channels)
        image = tf.ensure_shape(image_io.fit_image(image, size, crop=crop), [size[0], size[1], 3])
        mask = source.fit_mask(tf.cast(tf.round(tf.cast(mask, tf.float32)), tf.int32))
        return image, tf.ensure_shape(mask, list(size))

    source.dataset = dataset.map(standardize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if channels != 3:
        source.notes.append(f"`{argument}`: {channels}-channel images are converted to RGB.")
    if source.binary:
        source.notes.append(f"`{argument}`: masks are 0/255 binary; 255 is read as class 1")
    return source


# -- the data of a run ----------------------------------------------------------------------------


def _load(data: Any, argument: str, split: data_lib.DataSplit, image_size: tuple[int, int], on_bad_file: str,
          crop: bool) -> MaskSource:
    if isinstance(data, tf.data.Dataset):
        source = from_mask_dataset(data, image_size=image_size, argument=argument, crop=crop)
    elif isinstance(data, (str, os.PathLike)):
        folder = scan_mask_folder(data, argument=argument, on_bad_file=on_bad_file)
        split.skipped.extend(folder.skipped)
        source = from_mask_folder(folder, image_size, crop)
    else:
        raise BadMaskError(f"`{argument}` must be a folder with images/ and masks/ sub-folders or a tf.data.Dataset "
                           f"of (image, mask). Received: {argument}={data!r}")
    split.notes.extend(source.notes)
    return source


def _split(source: MaskSource, fraction: float, seed: int) -> tuple[MaskSource, MaskSource, str]:
    """Hold out ``fraction`` of the pairs: a seeded draw from a folder, the first elements of a dataset."""
    n_val = max(1, int(round(source.size * fraction)))
    if n_val >= source.size:
        raise ValueError(f"`validation_split`={fraction} leaves no training data ({source.size} images).")
    if source.is_files:
        order = np.random.default_rng([seed, 7919]).permutation(source.size)
        val, train = source.subset(np.sort(order[:n_val])), source.subset(np.sort(order[n_val:]))
        return train, val, f"validation: {n_val} image(s) ({fraction:.0%} of `train`, seed {seed}) held out"
    val = dataclasses.replace(source, size=n_val, dataset=source.dataset.take(n_val), values=source.values[:n_val],
                              owners=source.owners[:n_val], notes=[])
    train = dataclasses.replace(source, size=source.size - n_val, dataset=source.dataset.skip(n_val),
                                values=source.values[n_val:], owners=source.owners[n_val:], notes=[])
    return train, val, (f"validation: the first {n_val} elements of the `train` dataset ({fraction:.0%}) are held out "
                        "(the dataset must iterate in a fixed order)")


def prepare_masks(train: Any, validation: Any, validation_split: Any, image_size: tuple[int, int], *,
                  on_bad_file: str = "skip", seed: int | None = None, crop: bool = True) -> data_lib.DataSplit:
    """The sources of a segmentation run, with the split policy of :func:`kapps.finetune.data.prepare_data`
    (``"auto"``: 0.2 of a folder's pairs, none of a dataset's)."""
    split = data_lib.DataSplit(None, None)  # type: ignore[arg-type]
    split.train = _load(train, "train", split, image_size, on_bad_file, crop)
    fraction = data_lib.held_out_fraction(validation is not None, validation_split, split.train.is_files)
    if validation is not None:
        split.validation = _load(validation, "validation", split, image_size, on_bad_file, crop)
    if fraction is None:
        return split
    split.train, split.validation, note = _split(split.train, fraction, 0 if seed is None else seed)
    split.notes.append(note)
    return split


def check_classes(split: data_lib.DataSplit, classes: int) -> None:
    """Refuse masks with values outside ``range(classes)`` (after 0/255 -> 0/1), naming each file."""
    bad = []
    for source in (split.train, split.validation):
        if source is None:
            continue
        for values, owner in zip(source.values, source.owners):
            values = np.where(values == 255, 1, values) if source.binary else values
            outside = [int(v) for v in values if not 0 <= v < classes]
            if outside:
                bad.append((owner, f"class value(s) {outside[:10]} outside 0..{classes - 1}"))
    if bad:
        raise BadMaskError(
            f"{len(bad)} mask(s) hold values that are not classes of the model (it has {classes} classes; binary "
            f"masks may be 0/1 or 0/255, other masks must hold class indices):\n" + data_lib.bad_listing(bad))


def check_augmentation(layers: Sequence[keras.layers.Layer]) -> None:
    """Each augmentation layer must move a mask with its image (Keras' image preprocessing layers do)."""
    for layer in layers:
        if not all(hasattr(layer, name) for name in
                   ("get_random_transformation", "transform_images", "transform_segmentation_masks")):
            raise ValueError(
                "`augmentation` for segmentation must be Keras image preprocessing layers (RandomFlip, "
                "RandomRotation, RandomZoom, RandomTranslation, RandomContrast, ...), which transform a mask with "
                f"its image. Received: layer {layer.name!r} of type {type(layer).__name__}")


def take_pairs(source: MaskSource, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images (float32, [0, 255]) and their class maps."""
    if source.is_files:
        element = source.element_fn()
        pairs = [element(tf.constant(i, tf.int64)) for i in range(min(count, source.size))]
        return np.stack([p[0].numpy() for p in pairs]), np.stack([p[1].numpy() for p in pairs])
    images, masks = zip(*source.dataset.take(count).as_numpy_iterator())
    return np.stack(images), np.stack(masks)
