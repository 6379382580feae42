"""Every runtime side by side against keras.applications, timed in turns in one process.

For each model: the keras.applications model (``weights=None``), kapps' model with the same
weights (copied by name), and the model compiled by :func:`kapps.compile` for each runtime.
At each batch size every side runs once per turn, in alternating order, on the same
preprocessed photos (:func:`kapps.tools.bench.timing.alternating`): a changing machine load
slows every side alike. The ratio is keras.applications' median batch time over the side's
(>= 1 is faster). Each side's outputs are compared with keras.applications' on that batch
(BatchNorm statistics are randomized first, so that the outputs differ from photo to photo).
A model keras.applications does not have (ViT, Swin, the torchvision families) is timed against
kapps' own Keras model as built instead: its rows' reference is the ``kapps`` side.

Rows follow timm's benchmark CSV: model, runtime, batch, img/s, ms per step, ratio, max diff.
The run also records the CPU's model and its instruction-set flags (int8 dot products:
``avx512_vnni``/``avx_vnni``; ``amx_int8``), the load average, and draws the ratios.

>>> from kapps.tools.bench.runtimes import run_runtimes
>>> rows = run_runtimes(["mobilenet_v2"], quick=True, csv_path="runtimes.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import importlib
import io
import os
import platform
import time
from typing import Any, Callable, Sequence

import numpy as np

from kapps.tools import RUNTIMES
from kapps.tools.bench.timing import alternating, load_average
from kapps.utils.files import atomic_path, write_json_atomic, write_text_atomic
from kapps.validation import check_choice, check_positive_int

__all__ = ["run_runtimes", "COLUMNS", "REFERENCE", "UNOPTIMIZED", "DEFAULT_RUNTIME_MODELS", "cpu_flags",
           "plot_ratios"]

#: The CSV's columns (timm's benchmark columns, plus the ratio and the difference from the reference).
COLUMNS = ("model", "runtime", "batch", "img_size", "infer_samples_per_sec", "infer_step_time_ms", "ratio",
           "max_rel_diff", "top1_agreement")
#: The reference side and kapps' model as built (no ``optimize_for_inference``).
REFERENCE, UNOPTIMIZED = "keras.applications", "kapps"
DEFAULT_RUNTIME_MODELS = ("mobilenet_v2", "resnet50", "efficientnet_b0", "densenet121", "inception_v3")
#: CPU flags that decide which kernels run: vector width and int8 dot products.
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
ITERATIONS = {False: {1: 30, 32: 5}, True: {1: 8, 32: 2}}


def cpu_flags() -> dict[str, Any]:
    """The CPU's model name and which of :data:`FLAGS_OF_INTEREST` it has (``/proc/cpuinfo``)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux
        pass
    return {"cpu": model, "flags": {flag: flag in flags for flag in FLAGS_OF_INTEREST},
            "int8_dot_product": bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})}


def _sides(name: str, size: int, runtimes: Sequence[str], calibration: np.ndarray, keep_float: int,
           options: dict[str, Any], log: Callable[[str], None]) -> dict[str, Callable[[np.ndarray], Any]]:
    """``{side: predict(batch)}``: keras.applications, kapps as built, and each runtime."""
    import keras

    from kapps.registry import get_model, get_spec
    from kapps.tools.runtimes import compile as compile_model
    from kapps.weights.h5io import copy_weights_by_name

    spec = get_spec(name)
    shape = (size, size, spec.input_channels)
    model = get_model(name, weights=None, input_shape=shape, **options)
    if hasattr(keras.applications, spec.keras_name):
        reference = getattr(keras.applications, spec.keras_name)(weights=None, input_shape=shape, **options)
        _informative_batch_norm(reference)
        copy_weights_by_name(reference, model)
        sides: dict[str, Callable[[np.ndarray], Any]] = {
            REFERENCE: reference.predict_on_batch, UNOPTIMIZED: model.predict_on_batch}
    else:  # no keras.applications twin (ViT, Swin, ...): kapps' Keras model as built is the reference
        _informative_batch_norm(model)
        sides = {UNOPTIMIZED: model.predict_on_batch}
    for runtime in runtimes:
        start = time.perf_counter()
        predictor = compile_model(model, runtime, calibration=calibration, preprocessing=name,
                                  keep_float=keep_float if runtime == "litert-int8" else 0)
        log(f"  {runtime}: compiled in {time.perf_counter() - start:.1f} s; {predictor.describe()}")
        sides[runtime] = lambda x, p=predictor: p.predict(x, batch_size=len(x))
    return sides


def _informative_batch_norm(model: Any, seed: int = 0) -> None:
    """Random BatchNorm statistics and scales: with ``weights=None`` (zero means, unit variances,
    unit scales) some nets output the same probabilities for every photo, and the runtimes'
    differences and top-1 agreement would say nothing. The scales keep activations bounded."""
    import keras

    from kapps.utils.layers import leaf_layers

    rng = np.random.default_rng(seed)
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.3, 0.8, w.shape) if w.name.endswith("gamma") else
                               rng.uniform(0.5, 1.5, w.shape) if w.name.endswith("moving_variance") else
                               rng.normal(0.0, 0.1, w.shape) for w in layer.weights])


def _photos(size: int, count: int) -> np.ndarray:
    """``count`` views of scikit-image's sample photos at ``size``, RGB in [0, 255]."""
    from kapps.tools.export import representative_batch

    views = representative_batch(None, (size, size))
    return np.resize(views, (count, *views.shape[1:])).astype("float32")


def run_runtimes(
    models: Sequence[str] | None = None,
    *,
    runtimes: Sequence[str] = tuple(r for r in RUNTIMES),
    batches: Sequence[int] = (1, 32),
    quick: bool = False,
    keep_float: int = 0,
    size: int | None = None,
    model_options: dict[str, Any] | None = None,
    csv_path: str | os.PathLike | None = "bench_runtimes.csv",
    json_path: str | os.PathLike | None = None,
    plot_path: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Time every runtime against keras.applications; returns the CSV's rows (see the module docstring).

    Args:
        models: registry names (default :data:`DEFAULT_RUNTIME_MODELS`); for a model keras.applications
            lacks (ViT, Swin, ...), the ratios are against kapps' own Keras model as built.
        runtimes: runtimes of :func:`kapps.compile` to time beside keras.applications and kapps as built.
        batches: batch sizes.
        quick: fewer iterations (noisier).
        keep_float: ``keep_float`` of the int8 runtime.
        size: the input size (default: each model's default size).
        model_options: the models' own arguments (``{"alpha": 0.25}``).
        csv_path, json_path, plot_path: where to write the rows, the rows with the machine, and a plot.
        log: progress lines (None: silent).
    """
    import keras

    from kapps.registry import get_spec
    from kapps.tools.bench.runner import choose_models

    log = log or (lambda _: None)
    for runtime in runtimes:
        check_choice("runtimes", runtime, RUNTIMES)
    for batch in batches:
        check_positive_int("batches", batch)
    names = choose_models(models or DEFAULT_RUNTIME_MODELS, all_models=False, twin_required=False)
    machine = {**cpu_flags(), "cpu_count": os.cpu_count(), "loadavg_before": load_average(),
               "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    log(f"{machine['cpu']}, {machine['cpu_count']} CPUs, int8 dot product instructions: "
        f"{'yes' if machine['int8_dot_product'] else 'no'}; load {machine['loadavg_before']}")
    rows: list[dict[str, Any]] = []
    for name in names:
        spec = get_spec(name)
        side_size = size or spec.default_size
        log(f"{name} at {side_size} px")
        family = importlib.import_module(f"kapps.models.{spec.family}")
        images = np.asarray(family.preprocess_input(_photos(side_size, max(batches))), "float32")
        calibration = _photos(side_size, 32)
        sides = _sides(name, side_size, runtimes, calibration, keep_float, dict(model_options or {}), log)
        for batch in batches:
            x = images[:batch]
            outputs = {side: np.asarray(fn(x), "float64") for side, fn in sides.items()}
            timings = alternating([lambda fn=fn: fn(x) for fn in sides.values()], ITERATIONS[quick].get(
                batch, ITERATIONS[quick][32]), warmup=2)
            reference_time = timings[0][0]  # keras.applications, or kapps as built where Keras has no twin
            expected = next(iter(outputs.values()))
            for (side, output), (wall, _) in zip(outputs.items(), timings):
                diff = float(np.max(np.abs(output - expected)) / max(float(np.max(np.abs(expected))), 1e-12))
                agree = (float(np.mean(output.argmax(-1) == expected.argmax(-1)))
                         if output.ndim == 2 and output.shape[-1] > 1 else None)
                rows.append({"model": name, "runtime": side, "batch": batch, "img_size": side_size,
                             "infer_samples_per_sec": round(batch / wall, 2),
                             "infer_step_time_ms": round(1000 * wall, 3), "ratio": round(reference_time / wall, 3),
                             "max_rel_diff": float(f"{diff:.3g}"), "top1_agreement": agree})
                log(f"  batch {batch:>3} {side:<18} {batch / wall:9.1f} img/s {1000 * wall:9.2f} ms "
                    f"{reference_time / wall:6.2f}x  diff {diff:.2g}")
        keras.backend.clear_session()
    machine["loadavg_after"] = load_average()
    if csv_path is not None:
        write_text_atomic(csv_path, rows_to_csv(rows))
    if json_path is not None:
        write_json_atomic(json_path, {"machine": machine, "keep_float": keep_float, "quick": quick, "rows": rows})
    if plot_path is not None:
        plot_ratios(rows, plot_path)
    return rows


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV text with :data:`COLUMNS`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if row.get(k) is None else row[k]) for k in COLUMNS} for row in rows)
    return out.getvalue()


def plot_ratios(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> str:
    """Bars of each runtime's speed-up over keras.applications, one panel per batch size (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = sorted({r["batch"] for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    sides = [s for s in dict.fromkeys(r["runtime"] for r in rows) if s != REFERENCE]
    fig, axes = plt.subplots(1, len(batches), figsize=(6 * len(batches), 4), squeeze=False)
    width = 0.8 / max(len(sides), 1)
    for ax, batch in zip(axes[0], batches):
        for k, side in enumerate(sides):
            ratios = [next((r["ratio"] for r in rows if (r["model"], r["runtime"], r["batch"]) == (m, side, batch)),
                           0.0) for m in models]
            ax.bar(np.arange(len(models)) + k * width, ratios, width, label=side)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(models)) + width * (len(sides) - 1) / 2, models, rotation=20)
        ax.set_title(f"batch {batch}")
        ax.set_ylabel("speed-up over keras.applications")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return os.fspath(path)
