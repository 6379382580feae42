"""``kapps.validate``: measure a classifier's ImageNet top-1/top-5 on labelled photos.

Images are streamed with ``tf.data`` (read, decoded and transformed in parallel, never
all in memory), through the weight file's evaluation transform (:mod:`kapps.transforms`)
unless overridden. Unreadable images are listed by path and not counted, like the
unlabelled and missing ones (:mod:`kapps.tools.labelled_images`).

>>> result = validate("mobilenet", "../shared/data/imagenet_samples", alpha=0.25,
...                   weights="../shared/weights/mobilenet_2_5_224_tf.converted.h5")  # doctest: +SKIP
>>> print(result.summary())  # doctest: +SKIP
mobilenet: top-1 56.70% (567/1000, 95% CI 53.6-59.7), top-5 ...
"""

from __future__ import annotations

__all__ = ["RESULTS_COLUMNS", "ValidationResult", "validate", "wilson_interval"]

import csv
import dataclasses
import io
import math
import os
from typing import Any

import numpy as np

from kapps.tools.labelled_images import LabelledImages, find_labelled_images
from kapps.transforms import EvalTransform
from kapps.utils.files import write_text_atomic

#: The results CSV's columns (timm's ``validate.py`` results, plus the weights).
RESULTS_COLUMNS = ("model", "weights", "img_size", "crop_pct", "interpolation", "top1", "top5", "n", "param_count",
                   "runtime")


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion, in percent.

    >>> [round(v, 1) for v in wilson_interval(570, 1000)]
    [53.9, 60.0]
    """
    if n == 0:
        return (0.0, 100.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """Top-1/top-5 counts on the images that were read, and the images that were not."""

    model: str
    weights: str
    transform: EvalTransform
    n: int
    top1_correct: int
    top5_correct: int
    param_count: int
    layout: str
    unreadable: list[str]
    unlabelled: list[str]
    missing: list[str]
    runtime: str = "keras"
    runtime_details: str = ""
    agreeing: int | None = None  # images whose top-1 equals the Keras model's (``compare=True``)

    @property
    def top1_agreement(self) -> float | None:
        """The share of images whose top-1 class equals the Keras model's, with ``compare=True``."""
        return None if self.agreeing is None else self.agreeing / self.n

    @property
    def top1(self) -> float:
        return 100.0 * self.top1_correct / self.n

    @property
    def top5(self) -> float:
        return 100.0 * self.top5_correct / self.n

    def summary(self) -> str:
        def part(label: str, correct: int) -> str:
            lo, hi = wilson_interval(correct, self.n)
            return f"{label} {100.0 * correct / self.n:.2f}% ({correct}/{self.n}, 95% CI {lo:.1f}-{hi:.1f})"

        lines = [f"{self.model}: {part('top-1', self.top1_correct)}, {part('top-5', self.top5_correct)}",
                 f"  weights {self.weights}; {self.transform.describe()}; data: {self.layout}"]
        if self.runtime_details:
            lines.append(f"  runtime {self.runtime_details}")
        if self.agreeing is not None:
            lines.append(f"  top-1 agrees with the Keras model on {self.agreeing}/{self.n} images "
                         f"({100 * self.agreeing / self.n:.1f}%)")
        for label, paths in (("unreadable", self.unreadable), ("unlabelled", self.unlabelled),
                             ("missing (labelled, not on disk)", self.missing)):
            if paths:
                shown = ", ".join(paths[:5]) + (f", ... ({len(paths) - 5} more)" if len(paths) > 5 else "")
                lines.append(f"  {len(paths)} {label}, not counted: {shown}")
        return "\n".join(lines)

    def row(self) -> dict[str, Any]:
        """This result as a row of the results CSV (:data:`RESULTS_COLUMNS`)."""
        return {"model": self.model, "weights": self.weights, "img_size": self.transform.size[0],
                "crop_pct": self.transform.crop_pct, "interpolation": self.transform.interpolation,
                "top1": f"{self.top1:.3f}", "top5": f"{self.top5:.3f}", "n": self.n, "param_count": self.param_count,
                "runtime": self.runtime}


def append_result(path: str | os.PathLike, result: ValidationResult) -> None:
    """Append ``result`` to the results CSV at ``path`` (created with a header), atomically."""
    path = os.fspath(path)
    old = ""
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as f:
            old = f.read()
        header = next(csv.reader(io.StringIO(old)), [])
        if tuple(header) != RESULTS_COLUMNS:
            raise ValueError(f"`results_csv`: {path!r} is not a kapps results file (its header is {header}; "
                             f"expected {list(RESULTS_COLUMNS)}).")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RESULTS_COLUMNS, lineterminator="\n")
    if not old:
        writer.writeheader()
    writer.writerow(result.row())
    write_text_atomic(path, (old if old.endswith("\n") or not old else old + "\n") + out.getvalue())


def _stream(found: LabelledImages, transform: EvalTransform, batch_size: int) -> Any:
    """Batches of (images in [0, 255], labels, positions); unreadable images are dropped."""
    import tensorflow as tf

    from kapps.images import decode_image

    def load(path: tf.Tensor, label: tf.Tensor, position: tf.Tensor):
        return transform.geometry(decode_image(tf.io.read_file(path))), label, position

    dataset = tf.data.Dataset.from_tensor_slices((found.paths, np.asarray(found.labels, "int32"),
                                                  np.arange(len(found.paths), dtype="int64")))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _resolve_model(model: Any, weights: Any, builder: str, options: dict) -> tuple[Any, str]:
    import keras

    if isinstance(model, keras.Model):
        if options:
            raise ValueError(f"Model options ({', '.join(options)}) are for a model given by name, not a built model.")
        return model, model.name
    from kapps.registry import get_model, get_spec

    built = get_model(model, weights=weights, builder=builder, **options)
    return built, get_spec(model).name


def _calibration_images(calibration: Any, transform: EvalTransform, found: LabelledImages,
                        limit: int) -> np.ndarray | None:
    """Calibration files read through ``transform``'s geometry ([0, 255]); refused when evaluated too."""
    if calibration is None:
        return None
    from kapps.tools.export import image_files

    sources = [calibration] if isinstance(calibration, (str, os.PathLike)) else list(calibration)
    files = image_files(sources)
    evaluated = {os.path.realpath(p) for p in found.paths}
    shared = [f for f in files if os.path.realpath(f) in evaluated]
    if shared:
        raise ValueError(f"`calibration` must be disjoint from the evaluated images; {len(shared)} are both, "
                         f"e.g. {shared[0]!r}.")
    from kapps.images import read_image

    images = []
    for f in files:
        try:
            images.append(np.asarray(transform.geometry(read_image(f))))
        except ValueError:
            continue  # unreadable: skipped, as the evaluated images are
        if len(images) == limit:
            break
    if not images:
        raise ValueError(f"`calibration` must contain readable images. Received: {calibration!r}")
    return np.stack(images)


def _runtime(net: Any, runtime: str, transform: EvalTransform, found: LabelledImages, calibration: Any,
             limit: int, keep_float: int) -> tuple[Any, str]:
    """The function that scores a preprocessed batch on ``runtime``, and a line about it."""
    if runtime == "keras":
        if calibration is not None or keep_float:
            raise ValueError("`calibration` is for a compiled runtime (litert, litert-int8, onnxruntime); the "
                             f"Keras model needs none. Received: calibration={calibration!r}, keep_float={keep_float!r} with runtime='keras'")
        return (lambda batch: np.asarray(net.predict_on_batch(batch))), ""
    from kapps.tools.runtimes import compile as compile_model

    images = _calibration_images(calibration, transform, found, limit)
    predictor = compile_model(net, runtime, calibration=images, calibration_samples=limit,
                              preprocessing=transform.preprocess, keep_float=keep_float)
    return (lambda batch: predictor.predict(batch, batch_size=len(batch))), predictor.describe()


def validate(
    model: Any,
    data: str | os.PathLike,
    *,
    weights: str | os.PathLike = "imagenet",
    labels: str | os.PathLike | None = None,
    transform: EvalTransform | None = None,
    size: int | None = None,
    crop_pct: float | None = None,
    interpolation: str | None = None,
    resize: str | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    results_csv: str | os.PathLike | None = None,
    progress: bool = True,
    builder: str = "functional",
    runtime: str = "keras",
    calibration: Any = None,
    calibration_samples: int = 128,
    keep_float: int = 0,
    compare: bool = False,
    **options: Any,
) -> ValidationResult:
    """Top-1/top-5 of an ImageNet classifier on a labelled image folder.

    Args:
        model: a registry name (built here with ``weights``, ``builder`` and ``**options``
            such as ``alpha=0.25``) or a built 1000-class Keras model (then give ``transform``).
        data: a folder in one of the layouts of :mod:`kapps.tools.labelled_images`.
        weights: ``"imagenet"`` or a classifier weights file (its model's transform applies).
        labels: the labels file, when it is not inside ``data`` under a standard name.
        transform: the evaluation transform (default: the weight file's, ``kapps.eval_transform``).
        size, crop_pct, interpolation, resize: override fields of the transform.
        limit: use the first ``limit`` images (sorted order).
        batch_size: images per forward pass.
        results_csv: append the result to this timm-style CSV (written atomically).
        progress: show a progress bar.
        runtime: run the model on this runtime of :func:`kapps.compile` (``"keras"``: the Keras
            model as built, not compiled; ``"litert"``, ``"litert-int8"``, ``"onnxruntime"``).
        calibration: for a compiled runtime: image files and/or folders for its check and int8
            calibration, read through the same transform (default: scikit-image's sample photos).
            They must not be among the evaluated images.
        calibration_samples: at most this many calibration images.
        keep_float: for ``"litert-int8"``: layers left in float32 (see :func:`kapps.compile`).
        compare: also run the Keras model on every batch and count the images whose top-1
            class the runtime's agrees with (``result.top1_agreement``).

    Returns:
        A :class:`ValidationResult`; ``print(result.summary())`` shows it.
    """
    import keras

    from kapps.tools import RUNTIMES
    from kapps.transforms import eval_transform
    from kapps.validation import check_choice, check_positive_int

    check_positive_int("batch_size", batch_size)
    check_positive_int("calibration_samples", calibration_samples)
    check_choice("runtime", runtime, RUNTIMES)
    if limit is not None:
        check_positive_int("limit", limit)
    found = find_labelled_images(data, labels=labels).head(limit)
    if transform is None:
        if isinstance(model, keras.Model):
            raise ValueError("`transform` must be given for a built model: pass kapps.eval_transform(name) or an "
                             "EvalTransform. Received: transform=None")
        transform = eval_transform(model, **options)
    transform = transform.replace(size=size, crop_pct=crop_pct, interpolation=interpolation, resize=resize)
    net, name = _resolve_model(model, weights, builder, options)
    if tuple(net.output_shape[1:]) != (1000,):
        raise ValueError(f"`model` must output 1000 ImageNet classes. Received: a model with output shape "
                         f"{net.output_shape}")
    run, details = _runtime(net, runtime, transform, found, calibration, calibration_samples, keep_float)
    bar = keras.utils.Progbar(len(found.paths), unit_name="image") if progress else None
    top1 = top5 = agreeing = 0
    seen: list[np.ndarray] = []
    for images, truth, positions in _stream(found, transform, batch_size):
        batch = np.asarray(transform.preprocess(images.numpy()), "float32")
        scores = run(batch)
        if compare:
            agreeing += int(np.sum(np.argmax(scores, axis=1) == np.argmax(net.predict_on_batch(batch), axis=1)))
        best5 = np.argsort(-scores, axis=1, kind="stable")[:, :5]
        truth = truth.numpy()[:, None]
        top1 += int(np.sum(best5[:, :1] == truth))
        top5 += int(np.sum(np.any(best5 == truth, axis=1)))
        seen.append(positions.numpy())
        if bar is not None:
            bar.add(len(truth))
    read = set(np.concatenate(seen).tolist()) if seen else set()
    unreadable = [p for i, p in enumerate(found.paths) if i not in read]
    if not read:
        raise ValueError(f"`data`: none of the {len(found.paths)} images could be read, e.g. {found.paths[0]!r}.")
    result = ValidationResult(
        model=name, weights=os.fspath(weights), transform=transform, n=len(read), top1_correct=top1,
        top5_correct=top5, param_count=int(net.count_params()), layout=found.layout, unreadable=unreadable,
        unlabelled=found.unlabelled, missing=found.missing, runtime=runtime, runtime_details=details,
        agreeing=agreeing if compare else None)
    if results_csv is not None:
        append_result(results_csv, result)
    return result
