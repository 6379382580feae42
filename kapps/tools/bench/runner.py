"""The benchmark's parent process: choose models, write weight files, start workers, collect results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

from kapps.tools.bench.report import SIDES, format_table
from kapps.tools.bench.timing import load_average
from kapps.utils.files import write_json_atomic

__all__ = ["run", "choose_models", "keras_models", "DEFAULT_MODELS", "SIDES", "SETTINGS"]

#: The representative default set (those registered are used): a mobile net, a ResNet,
#: a compound-scaled net with squeeze-excitation and a densely connected net.
DEFAULT_MODELS = ("mobilenet_v2", "resnet50", "efficientnet_b0", "densenet121")

#: Repeats and iterations: quick (a first look) and default.
SETTINGS = {
    "quick": dict(build_repeats=1, load_repeats=2, iters_b1=8, iters_b32=2, warmup=1),
    "default": dict(build_repeats=2, load_repeats=3, iters_b1=20, iters_b32=3, warmup=1),
}
WORKER_TIMEOUT_S = 3600


def keras_models() -> list[str]:
    """Registered models that keras.applications also has (what ``--all`` runs)."""
    import keras

    from kapps.registry import get_spec, list_models

    return [n for n in list_models() if hasattr(keras.applications, get_spec(n).keras_name)]


def choose_models(models: Sequence[str] | None, all_models: bool, *, twin_required: bool = True) -> list[str]:
    """The model names to run; unknown names are refused, and names keras.applications lacks unless
    ``twin_required`` is False (the runtimes' benchmark then compares with kapps' own Keras model)."""
    available = keras_models()
    if all_models:
        return available
    if not models:
        chosen = [n for n in DEFAULT_MODELS if n in available]
        return chosen or available[:2]
    from kapps.registry import get_spec

    names = []
    for name in models:
        spec = get_spec(name)  # raises ValueError naming the unknown model
        if spec.name not in available and twin_required:
            raise ValueError(
                f"`models` must name models that keras.applications also has (the benchmark compares "
                f"with it). Received: {name!r}; accepted: {', '.join(available)}"
            )
        names.append(spec.name)
    return names


def run(
    models: Sequence[str] | None = None,
    *,
    all_models: bool = False,
    quick: bool = False,
    builders: Sequence[str] = ("functional", "sequential"),
    optimize: bool = True,
    xla: bool = False,
    out: str | os.PathLike | None = "bench_results.json",
    workdir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = print,
    model_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Benchmark kapps against keras.applications; print a table and write JSON.

    Args:
        models: registry names (default: :data:`DEFAULT_MODELS` that are registered).
        all_models: every registered model that keras.applications also has (batch 32 at
            the default size: the largest EfficientNets need tens of GB; a worker that fails
            is reported in the table, the others go on).
        quick: fewer repeats and iterations (a first look; noisier).
        builders: kapps builders to measure.
        optimize: also measure :func:`kapps.optimize_for_inference` (Functional worker).
        xla: also measure the optimized model compiled with XLA (slow to compile).
        out: JSON file to write atomically (None: do not write).
        workdir: where the HDF5 weight files go (default: a temporary directory).
        log: where progress and the tables are printed (None: silent).
        model_options: the models' own arguments (``{"alpha": 0.5}``), given to both sides;
            parameters and FLOPs are then counted on the model built with them.

    Returns:
        The results: ``{"machine": ..., "settings": ..., "models": {name: {...}}}``.

    >>> import kapps.tools.bench
    >>> r = kapps.tools.bench.run(["mobilenet_v2"], quick=True, out=None, log=None)  # doctest: +SKIP
    >>> r["models"]["mobilenet_v2"]["ratios"]["functional"]["ips_b32"] > 0  # doctest: +SKIP
    True
    """
    for builder in builders:
        if builder not in ("functional", "sequential"):
            raise ValueError(f"`builders` must contain 'functional' and/or 'sequential'. Received: {builder!r}")
    say = log or (lambda s: None)
    names = choose_models(models, all_models)
    settings = dict(SETTINGS["quick" if quick else "default"])
    settings.update(quick=quick, builders=list(builders), optimize=optimize, xla=xla)
    results: dict[str, Any] = {
        "machine": _machine(), "settings": settings, "command": " ".join(sys.argv), "models": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="kapps_bench_") as tmp:
        for index, name in enumerate(names, 1):
            say(f"[{index}/{len(names)}] {name}: writing the weight file, then workers "
                f"{', '.join(['keras', *builders])}")
            results["models"][name] = _bench_model(name, tmp, settings, builders, dict(model_options or {}))
            if out is not None:
                write_json_atomic(out, results)
    results["machine"]["loadavg_after"] = load_average()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    if out is not None:
        write_json_atomic(out, results)
    say(format_table(results))
    if out is not None:
        say(f"results written to {os.fspath(out)}")
    return results


def _bench_model(name: str, tmp: str, settings: dict, builders: Sequence[str],
                 options: dict[str, Any]) -> dict[str, Any]:
    from kapps.registry import get_spec, model_info

    spec = get_spec(name)
    info = model_info(name)
    weights_path = os.path.join(tmp, f"{name}.h5")
    counted = _write_weight_file(spec.keras_name, weights_path, options)
    params, flops = counted if options else (info["params"], info["flops"])
    entry: dict[str, Any] = {
        "keras_name": spec.keras_name, "input_size": spec.default_size, "flops": flops, "params": params,
        "weights_file_mb": round(os.path.getsize(weights_path) / 2**20, 1), **({"options": options} if options else {}),
    }
    job = dict(name=name, keras_name=spec.keras_name, size=spec.default_size, flops=flops,
               weights=weights_path, options=options, **settings)
    for side in ("keras", *builders):
        entry[side] = _start_worker(dict(job, side=side, optimize=settings["optimize"] and side == "functional"))
    os.remove(weights_path)
    entry["ratios"] = {b: _ratios(entry["keras"], entry[b]) for b in builders}
    return entry


def _write_weight_file(keras_name: str, path: str, options: dict[str, Any]) -> tuple[int, int]:
    """One legacy-layout HDF5 file from the keras.applications model (random weights); returns
    that model's parameters and FLOPs."""
    import gc

    import keras

    from kapps.tools.flops import count_flops
    from kapps.weights import write_legacy_h5

    model = getattr(keras.applications, keras_name)(weights=None, **options)
    write_legacy_h5(model, path)
    counted = (int(model.count_params()), count_flops(model))
    del model
    keras.backend.clear_session()
    gc.collect()
    return counted


def _start_worker(job: dict) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as f:
        result_path = f.name
    command = [sys.executable, "-m", "kapps.tools.bench.worker", json.dumps(job), result_path]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore", PYTHONPATH=_package_root())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env)
        with open(result_path) as f:
            text = f.read()
        if done.returncode != 0 or not text:
            tail = (done.stderr or done.stdout).strip().splitlines()[-12:]
            return {"error": f"worker exited with {done.returncode}: " + "\n".join(tail)}
        return json.loads(text)
    except subprocess.TimeoutExpired:
        return {"error": f"worker ran past {WORKER_TIMEOUT_S} s"}
    finally:
        os.remove(result_path)


def _package_root() -> str:
    """The worker's PYTHONPATH: the folder holding this very kapps package, then the caller's path."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)


def _ratios(keras_side: dict, kapps_side: dict) -> dict[str, float | None]:
    """kapps / keras for each metric, in the direction of the issue's targets.

    Times and memory: kapps / keras (<= 1 is no worse). Inference: kapps images/s over
    keras images/s (>= 1 is no worse); ``*_cpu``: the same from process CPU time, which
    other processes on the machine disturb much less than wall time; ``*_alt``: measured
    in one process with alternating batches.
    """

    def ratio(a: Any, b: Any) -> float | None:
        return None if a is None or not b else round(a / b, 3)

    ratios = {k: ratio(kapps_side.get(k), keras_side.get(k))
              for k in ("build_s", "build_cpu_s", "load_s", "load_cpu_s", "ips_b1", "ips_b32",
                        "peak_rss_mb", "rss_growth_mb")}
    alternating = kapps_side.get("alternating", {})
    for what in ("build", "load"):
        ratios[f"{what}_alt"] = alternating.get(f"{what}_kapps_vs_keras")
        ratios[f"{what}_alt_cpu"] = alternating.get(f"{what}_kapps_vs_keras_cpu")
    for b in (1, 32):
        key = f"cpu_ms_per_image_b{b}"
        ratios[f"ips_b{b}_cpu"] = ratio(keras_side.get(key), kapps_side.get(key))
        ratios[f"ips_b{b}_alt"] = alternating.get(f"kapps_vs_keras_b{b}")
        ratios[f"ips_b{b}_alt_cpu"] = alternating.get(f"kapps_vs_keras_cpu_b{b}")
    return ratios


def _machine() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg_before": load_average(),
    }
