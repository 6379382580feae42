"""Runs kapps checks on one Keras backend, in a process of its own (the backend is fixed at import).

``tests/test_backends.py`` starts it as ``KERAS_BACKEND=jax python tests/backend_worker.py JOB OUT``:
JOB is a JSON file of checks, OUT receives their results as JSON. Each check is caught on its
own, so one failure is reported by name instead of hiding the others. Checks:

* ``parity``: ``[[name, size], ...]``, kapps (both builders) against keras.applications on this
  backend: same weights (copied by name, randomised BatchNorm statistics), the photo of that
  ``size`` from ``photos`` (a .npz file, one array per size); the result is the relative max difference per builder.
* ``file_parity``: ``[[name, size, weights, expected], ...]``, kapps loading a keras.applications
  ``.weights.h5`` file against that model's outputs (``expected``, .npy), both made by the caller.
* ``sweep``: ``[[name, size, builders], ...]``, build and predict (each builder given), output shape and finiteness.
* ``official_weights``: a legacy .h5 file loaded by kapps and by keras.applications (MobileNet 0.25).
* ``user_weights``: a Keras 3 ``.weights.h5`` saved from keras.applications, loaded by kapps.
* ``optimize``: ``[[name, size], ...]``, ``kapps.optimize_for_inference`` against the original model,
  and its ``.keras`` file reloaded.
* ``roundtrip``: ``[[name, size, builder], ...]``, ``model.save`` to .keras, ``keras.saving.load_model``.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import traceback
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kapps  # noqa: E402
from kapps.registry import get_spec  # noqa: E402
from kapps.utils.layers import leaf_layers  # noqa: E402
from kapps.weights.h5io import copy_weights_by_name  # noqa: E402
from parity import family_preprocess, keras_reference, randomize_batch_norm  # noqa: E402

BUILDERS = ("functional", "sequential")


def relative_diff(actual, expected) -> float:
    """``max |actual - expected| / max |expected|``."""
    actual, expected = np.asarray(actual, "float64"), np.asarray(expected, "float64")
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-12))


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Inference outputs of one batch, run eagerly. On JAX, ``model.predict`` compiles each model
    whole (ResNetRS420: 101 s in the sweep, eager 15 s); eager JAX compiles each operation once per
    shape and reuses it for the next model with those shapes (the reference and both builders, a
    family's next model)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def images(photos, size: int) -> np.ndarray:
    """The photo at ``size`` x ``size`` (the test wrote one array per size, ``s<size>``)."""
    return np.asarray(photos[f"s{size}"], "float32")


def free() -> None:
    keras.backend.clear_session()
    gc.collect()


def check_parity(name: str, size: int, photo: np.ndarray) -> dict:
    ref = keras_reference(name, weights=None, input_shape=(size, size, 3))
    randomize_batch_norm(ref)
    x = family_preprocess(name, images(photo, size))
    expected = predict(ref, x)
    out = {}
    for builder in BUILDERS:
        model = kapps.get_model(name, weights=None, input_shape=(size, size, 3), builder=builder)
        copy_weights_by_name(ref, model)
        out[builder] = relative_diff(predict(model, x), expected)
        del model
    del ref
    free()
    return out


def check_file_parity(name: str, size: int, weights: str, expected: str, photo: np.ndarray) -> dict:
    """kapps loading a keras.applications ``.weights.h5`` against that model's outputs, both made elsewhere."""
    x = family_preprocess(name, images(photo, size))
    reference = np.load(expected)
    out = {}
    for builder in BUILDERS:
        model = kapps.get_model(name, weights=weights, input_shape=(size, size, 3), builder=builder)
        out[builder] = relative_diff(predict(model, x), reference)
        del model
        free()
    return out


def check_sweep(name: str, size: int, builders: list[str]) -> dict:
    """Build each builder's model and run it on one batch."""
    channels = get_spec(name).input_channels
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, channels)).astype("float32")
    out = {}
    for builder in builders:
        model = kapps.get_model(name, weights=None, input_shape=(size, size, channels), builder=builder)
        y = predict(model, x)
        out[builder] = {"shape": list(y.shape), "finite": bool(np.isfinite(y).all())}
        del model
        free()
    return out


def check_official_weights(path: str, size: int, photo: np.ndarray) -> dict:
    x = kapps.mobilenet.preprocess_input(images(photo, size))
    ref = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=path, input_shape=(size, size, 3))
    expected = predict(ref, x)
    out = {"mean_abs": float(np.mean(np.abs(expected)))}
    for builder in BUILDERS:
        model = kapps.MobileNet(alpha=0.25, include_top=False, weights=path, input_shape=(size, size, 3),
                                builder=builder)
        out[builder] = relative_diff(predict(model, x), expected)
    free()
    return out


def check_user_weights(tmp: Path, size: int, photo: np.ndarray) -> dict:
    ref = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(size, size, 3))
    randomize_batch_norm(ref, seed=1)
    path = tmp / f"user_{keras.backend.backend()}.weights.h5"
    ref.save_weights(path)
    x = kapps.mobilenet_v2.preprocess_input(images(photo, size))
    expected = predict(ref, x)
    out = {}
    for builder in BUILDERS:
        model = kapps.MobileNetV2(alpha=0.35, weights=str(path), input_shape=(size, size, 3), builder=builder)
        out[builder] = relative_diff(predict(model, x), expected)
    free()
    return out


def check_roundtrip(tmp: Path, name: str, size: int, builder: str) -> dict:
    model = kapps.get_model(name, weights=None, input_shape=(size, size, 3), builder=builder)
    randomize_batch_norm(model, seed=2)
    x = np.random.default_rng(3).uniform(0, 255, (1, size, size, 3)).astype("float32")
    expected = predict(model, x)
    path = tmp / f"{name}_{builder}_{keras.backend.backend()}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    out = {"class": type(loaded).__name__, "diff": relative_diff(predict(loaded, x), expected)}
    free()
    return out


def check_optimize(tmp: Path, name: str, size: int, photo: np.ndarray) -> dict:
    """``kapps.optimize_for_inference`` (BatchNorm folded) against the model it came from, and the
    optimized model reloaded from ``.keras`` against itself."""
    x = family_preprocess(name, images(photo, size))
    out = {}
    for builder in BUILDERS:
        model = kapps.get_model(name, weights=None, input_shape=(size, size, 3), builder=builder)
        randomize_batch_norm(model, seed=4)
        optimized = kapps.optimize_for_inference(model)
        fast = predict(optimized, x)
        path = tmp / f"{name}_{builder}_optimized_{keras.backend.backend()}.keras"
        optimized.save(path)
        reloaded = keras.saving.load_model(path)
        out[builder] = {"diff": relative_diff(fast, predict(model, x)),
                        "reload_diff": relative_diff(predict(reloaded, x), fast),
                        "layers": [len(model.layers), len(optimized.layers)],
                        "batch_norm_left": sum(isinstance(layer, keras.layers.BatchNormalization)
                                               for layer in leaf_layers(reloaded))}
        free()
    return out


def run_checks(job: dict) -> dict:
    kapps.list_models()  # registers every family: kapps.registry.get_spec alone does not import them
    tmp = Path(job["tmp"])
    photo = dict(np.load(job["photos"]))
    checks = [(f"parity/{n}", check_parity, (n, s, photo)) for n, s in job.get("parity", [])]
    checks += [(f"file_parity/{a[0]}", check_file_parity, (*a, photo)) for a in job.get("file_parity", [])]
    checks += [(f"sweep/{n}", check_sweep, (n, s, b)) for n, s, b in job.get("sweep", [])]
    if "official_weights" in job:
        checks.append(("official_weights", check_official_weights, (*job["official_weights"], photo)))
    if "user_weights" in job:
        checks.append(("user_weights", check_user_weights, (tmp, job["user_weights"], photo)))
    checks += [(f"roundtrip/{n}/{b}", check_roundtrip, (tmp, n, s, b)) for n, s, b in job.get("roundtrip", [])]
    checks += [(f"optimize/{n}", check_optimize, (tmp, n, s, photo)) for n, s in job.get("optimize", [])]
    results, errors, seconds = {}, {}, {}
    for key, fn, args in checks:
        start = time.perf_counter()
        try:
            results[key] = fn(*args)
        except Exception:  # noqa: BLE001  (reported by name to the test)
            errors[key] = traceback.format_exc(limit=6)
            free()
        seconds[key] = round(time.perf_counter() - start, 2)
        print(f"{key}: {seconds[key]} s{' FAILED' if key in errors else ''}", file=sys.stderr, flush=True)
    return {"backend": keras.backend.backend(), "results": results, "errors": errors, "seconds": seconds,
            "imports_tensorflow": "tensorflow" in sys.modules}


if __name__ == "__main__":
    job_path, out_path = sys.argv[1:3]
    report = run_checks(json.loads(Path(job_path).read_text()))
    Path(out_path).write_text(json.dumps(report, indent=1))
