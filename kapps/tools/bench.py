"""Benchmarks of kapps against keras.applications, measured in the same run.

For each model, three worker processes are started one after another (keras.applications,
kapps Functional, kapps Sequential), so that each one's peak resident memory is its own.
Each worker measures, after the same warm-up:

* build time: ``weights=None`` construction at the default input size, with the top;
* weight-load time from one legacy-layout HDF5 file that the parent writes from the
  keras.applications model (``kapps.weights.write_legacy_h5``): Keras'
  ``model.load_weights(file)`` against kapps' ``load_weights_by_name`` (what
  ``weights=PATH`` runs), for each builder;
* inference images/s with ``model.predict_on_batch`` at batch 1 and batch 32, and the
  GFLOP/s this achieves with the registry's FLOPs (one multiply-add = 2 FLOPs);
* peak resident memory (``ru_maxrss``) of the whole process, and its growth after imports.

Then, once its memory figures are taken, each kapps worker also builds the
keras.applications twin (loading the same file) and times the two models in turns,
batch after batch, in the same process: a second inference ratio that a changing
machine load cannot bias. The Functional worker adds :func:`kapps.optimize_for_inference`
to these turns; its speedup is the ratio of median batch times.

Times are the minimum over repeats (builds, loads) or the median over iterations
(inference). The machine's load average is recorded before and after: other
processes on the same cores make every number noisy.

>>> import kapps.tools.bench
>>> results = kapps.tools.bench.run(["mobilenet_v2"], quick=True, out=None)  # doctest: +SKIP
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a worker script: do not shadow top-level modules
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

__all__ = ["run", "DEFAULT_MODELS", "format_table"]

#: The representative default set (those registered are used): a mobile net, a ResNet,
#: a compound-scaled net with squeeze-excitation and a densely connected net.
DEFAULT_MODELS = ("mobilenet_v2", "resnet50", "efficientnet_b0", "densenet121")
SIDES = ("keras", "functional", "sequential")

#: Repeats and iterations: quick (a first look) and default.
SETTINGS = {
    "quick": dict(build_repeats=1, load_repeats=2, iters_b1=8, iters_b32=2, warmup=1),
    "default": dict(build_repeats=2, load_repeats=3, iters_b1=20, iters_b32=3, warmup=1),
}
WORKER_TIMEOUT_S = 3600


# ======================================================================================
# The parent: choose models, write the weight files, start workers, collect and print.
# ======================================================================================


def keras_models() -> list[str]:
    """Registered models that keras.applications also has (what ``--all`` runs)."""
    import keras

    import kapps
    from kapps.registry import get_spec

    return [n for n in kapps.list_models() if hasattr(keras.applications, get_spec(n).keras_name)]


def choose_models(models: Sequence[str] | None, all_models: bool) -> list[str]:
    """The model names to run; unknown names and names keras.applications lacks are refused."""
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
        if spec.name not in available:
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
            results["models"][name] = _bench_model(name, tmp, settings, builders)
            if out is not None:
                _write_json(results, out)
    results["machine"]["loadavg_after"] = _loadavg()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    if out is not None:
        _write_json(results, out)
    say(format_table(results))
    if out is not None:
        say(f"results written to {os.fspath(out)}")
    return results


def _bench_model(name: str, tmp: str, settings: dict, builders: Sequence[str]) -> dict[str, Any]:
    import kapps
    from kapps.registry import get_spec

    spec = get_spec(name)
    info = kapps.model_info(name)
    weights_path = os.path.join(tmp, f"{name}.h5")
    _write_weight_file(spec.keras_name, weights_path)
    entry: dict[str, Any] = {
        "keras_name": spec.keras_name, "input_size": spec.default_size, "flops": info["flops"],
        "params": info["params"], "weights_file_mb": round(os.path.getsize(weights_path) / 2**20, 1),
    }
    job = dict(name=name, keras_name=spec.keras_name, size=spec.default_size, flops=info["flops"],
               weights=weights_path, **settings)
    for side in ("keras", *builders):
        entry[side] = _start_worker(dict(job, side=side, optimize=settings["optimize"] and side == "functional"))
    os.remove(weights_path)
    entry["ratios"] = {b: _ratios(entry["keras"], entry[b]) for b in builders}
    return entry


def _write_weight_file(keras_name: str, path: str) -> None:
    """One legacy-layout HDF5 file from the keras.applications model (random weights)."""
    import gc

    import keras

    from kapps.weights import write_legacy_h5

    model = getattr(keras.applications, keras_name)(weights=None)
    write_legacy_h5(model, path)
    del model
    keras.backend.clear_session()
    gc.collect()


def _start_worker(job: dict) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as f:
        result_path = f.name
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job), result_path]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
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
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg_before": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - platforms without it
        return None


def _write_json(data: dict, path: str | os.PathLike) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".json.part", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# -- printing ----------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def format_table(results: dict) -> str:
    """The results as text tables: absolute figures, kapps/keras ratios, optimization."""
    lines = ["", "Absolute figures, each side in its own process (build/load: min over repeats; "
                 "img/s: median batch time; GFLOP/s at batch 32 from the registry's FLOPs)"]
    head = f"{'model':16} {'side':11} {'build s':>8} {'load s':>8} {'img/s b1':>9} {'img/s b32':>10} " \
           f"{'GFLOP/s':>8} {'peak MB':>8} {'+MB':>7}"
    lines += [head, "-" * len(head)]
    for name, entry in results["models"].items():
        for side in SIDES:
            if side not in entry:
                continue
            r = entry[side]
            label = name if side == "keras" else ""
            if "error" in r:
                lines.append(f"{label:16} {side:11} ERROR {r['error'].splitlines()[-1][:70]}")
                continue
            lines.append(
                f"{label:16} {side:11} {_fmt(r['build_s'], '.3f'):>8} {_fmt(r['load_s'], '.3f'):>8} "
                f"{_fmt(r['ips_b1'], '.1f'):>9} {_fmt(r['ips_b32'], '.1f'):>10} "
                f"{_fmt(r.get('gflops_b32'), '.1f'):>8} {_fmt(r['peak_rss_mb'], '.0f'):>8} "
                f"{_fmt(r['rss_growth_mb'], '.0f'):>7}"
            )
    lines += ["", "kapps / keras.applications, wall/CPU time. build, load, peak MB: <= 1.00 is no worse; "
                  "img/s: >= 1.00 is no worse.", "'sep': each side in its own process; 'alt': one process, "
                  "alternating batches. CPU time is the process's own, much less disturbed by other load."]
    head = f"{'model':16} {'builder':11} {'build sep':>10} {'build alt':>10} {'load sep':>10} {'load alt':>10} " \
           f"{'b1 sep':>10} {'b32 sep':>10} {'b1 alt':>10} {'b32 alt':>10} {'peak MB':>8}"
    lines += [head, "-" * len(head)]
    pair = lambda r, a, b: f"{_fmt(r.get(a), '.2f')}/{_fmt(r.get(b), '.2f')}"  # noqa: E731
    for name, entry in results["models"].items():
        for i, (builder, r) in enumerate(entry.get("ratios", {}).items()):
            lines.append(
                f"{name if i == 0 else '':16} {builder:11} {pair(r, 'build_s', 'build_cpu_s'):>10} "
                f"{pair(r, 'build_alt', 'build_alt_cpu'):>10} {pair(r, 'load_s', 'load_cpu_s'):>10} "
                f"{pair(r, 'load_alt', 'load_alt_cpu'):>10} {pair(r, 'ips_b1', 'ips_b1_cpu'):>10} "
                f"{pair(r, 'ips_b32', 'ips_b32_cpu'):>10} {pair(r, 'ips_b1_alt', 'ips_b1_alt_cpu'):>10} "
                f"{pair(r, 'ips_b32_alt', 'ips_b32_alt_cpu'):>10} {_fmt(r['peak_rss_mb'], '.2f'):>8}"
            )
    rows = [(n, e["functional"]["alternating"]) for n, e in results["models"].items()
            if "bn_folded" in e.get("functional", {}).get("alternating", {})]
    if rows:
        lines += ["", "optimize_for_inference on the kapps Functional model (same process, alternating batches)"]
        head = f"{'model':16} {'BN folded':>9} {'layers':>11} {'b1 img/s':>17} {'b1 x wall/CPU':>14} " \
               f"{'b32 img/s':>17} {'b32 x wall/CPU':>15}"
        lines += [head, "-" * len(head)]
        for name, o in rows:
            b1, b32 = o["ips_b1"], o["ips_b32"]
            lines.append(
                f"{name:16} {o['bn_folded']:>9} {o['layers_before']:>5}->{o['layers_after']:<5} "
                f"{_fmt(b1['kapps'], '.1f'):>8}->{_fmt(b1['optimized'], '.1f'):<8} "
                f"{pair(o, 'optimized_speedup_b1', 'optimized_speedup_cpu_b1'):>14} "
                f"{_fmt(b32['kapps'], '.1f'):>8}->{_fmt(b32['optimized'], '.1f'):<8} "
                f"{pair(o, 'optimized_speedup_b32', 'optimized_speedup_cpu_b32'):>15}"
            )
            if "optimized_xla_speedup_b32" in o:
                lines.append(f"{'':16} with XLA: b1 x{_fmt(o['optimized_xla_speedup_b1'], '.2f')}, "
                             f"b32 x{_fmt(o['optimized_xla_speedup_b32'], '.2f')} "
                             f"(compile {o['xla_compile_s']:.1f} s)")
    errors = [(n, e[b]["alternating"]["error"]) for n, e in results["models"].items()
              for b in ("functional", "sequential") if "error" in e.get(b, {}).get("alternating", {})]
    lines += [f"{n}: same-process measurement failed: {err}" for n, err in errors]
    m = results["machine"]
    lines += ["", f"{m['cpu_count']} CPUs ({m['processor']}), TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
                  f"load average before {m['loadavg_before']} after {m.get('loadavg_after')}"]
    return "\n".join(lines)


# ======================================================================================
# The worker: one side (keras, functional or sequential) of one model, in its own process.
# ======================================================================================


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    current = peak
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover
        pass
    return current, peak


def _clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds) of one call."""
    w0, c0 = _clock()
    value = fn()
    w1, c1 = _clock()
    return value, w1 - w0, c1 - c0


def _median_batch_time(fn: Callable[[], Any], iterations: int, warmup: int) -> tuple[float, float, float]:
    """(first-call wall s, median wall s, median CPU s) of ``iterations`` calls after ``warmup``."""
    _, first, _ = _timed(fn)
    for _ in range(max(0, warmup - 1)):
        fn()
    walls, cpus = [], []
    for _ in range(iterations):
        _, wall, cpu = _timed(fn)
        walls.append(wall)
        cpus.append(cpu)
    return first, statistics.median(walls), statistics.median(cpus)


def _alternating(fns: Sequence[Callable[[], Any]], iterations: int, warmup: int) -> list[tuple[float, float]]:
    """(median wall s, median CPU s) of each function, timed in turns (fair under a changing load)."""
    for fn in fns:
        for _ in range(max(1, warmup)):
            fn()
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for i in range(iterations):
        order = range(len(fns)) if i % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            _, wall, cpu = _timed(fns[k])
            walls[k].append(wall)
            cpus[k].append(cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus)]


def _warm_up_runtime(keras: Any, np: Any) -> None:
    """Initialise the runtime the same way on every side (first variables, first graph)."""
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2),
    ])
    model.predict_on_batch(np.zeros((1, 8, 8, 3), "float32"))
    del model
    keras.backend.clear_session()


def worker(job: dict) -> dict[str, Any]:
    """Measure one side of one model (see the module docstring)."""
    import gc

    import numpy as np

    side = job["side"]
    if side == "keras":
        import keras
        import tensorflow  # noqa: F401  (imported on both sides before measuring)

        constructor = getattr(keras.applications, job["keras_name"])

        def build():
            return constructor(weights=None)

        def load(model):
            model.load_weights(job["weights"])
    else:
        import keras
        import tensorflow  # noqa: F401

        import kapps
        from kapps.weights import load_weights_by_name

        def build():
            return kapps.get_model(job["name"], weights=None, builder=side)

        def load(model):
            load_weights_by_name(model, job["weights"])

    rss_imports, _ = _rss_mb()
    _warm_up_runtime(keras, np)
    result: dict[str, Any] = {"side": side}

    builds = []
    for i in range(job["build_repeats"]):
        if i:
            del model
            keras.backend.clear_session()
            gc.collect()
        model, wall, cpu = _timed(build)
        builds.append((wall, cpu))
    result["build_first_s"] = round(builds[0][0], 4)
    result["build_s"] = round(min(w for w, _ in builds), 4)
    result["build_cpu_s"] = round(min(c for _, c in builds), 4)
    result["params"] = int(model.count_params())

    loads = [_timed(lambda: load(model))[1:] for _ in range(job["load_repeats"])]
    result["load_first_s"] = round(loads[0][0], 4)
    result["load_s"] = round(min(w for w, _ in loads), 4)
    result["load_cpu_s"] = round(min(c for _, c in loads), 4)

    rng = np.random.default_rng(0)
    size = job["size"]
    batches = {b: rng.uniform(-1, 1, (b, size, size, 3)).astype("float32") for b in (1, 32)}
    for b, iters in ((1, job["iters_b1"]), (32, job["iters_b32"])):
        first, wall, cpu = _median_batch_time(lambda: model.predict_on_batch(batches[b]), iters, job["warmup"])
        result[f"first_call_b{b}_s"] = round(first, 4)
        result[f"ips_b{b}"] = round(b / wall, 2)
        result[f"cpu_ms_per_image_b{b}"] = round(1000 * cpu / b, 2)
        if job.get("flops"):
            result[f"gflops_b{b}"] = round(job["flops"] * b / wall / 1e9, 2)

    current, peak = _rss_mb()
    result.update(rss_after_imports_mb=round(rss_imports, 1), peak_rss_mb=round(peak, 1),
                  rss_growth_mb=round(peak - rss_imports, 1), rss_end_mb=round(current, 1))

    if side != "keras":
        try:
            result["alternating"] = _measure_alternating(model, batches, job, build, load)
        except Exception as e:  # reported, not hidden: the table shows it
            result["alternating"] = {"error": f"{type(e).__name__}: {e}"}
    return result


def _measure_alternating(model: Any, batches: dict, job: dict, build: Callable, load: Callable) -> dict[str, Any]:
    """After the memory figures: keras.applications and kapps timed in turns in this one
    process (builds, weight loads from the same file, inference; for the Functional worker
    also its optimize_for_inference version), so that a changing load affects them alike."""
    import gc

    import keras
    import numpy as np

    constructor = getattr(keras.applications, job["keras_name"])
    out: dict[str, Any] = {}
    builds: dict[str, list] = {"keras": [], "kapps": []}
    for i in range(max(2, job["build_repeats"])):
        for name in (("keras", "kapps") if i % 2 == 0 else ("kapps", "keras")):
            built, wall, cpu = _timed(lambda: constructor(weights=None) if name == "keras" else build())
            builds[name].append((wall, cpu))
            del built
            gc.collect()
    twin = constructor(weights=None)
    loads: dict[str, list] = {"keras": [], "kapps": []}
    for i in range(max(2, job["load_repeats"])):
        for name in (("keras", "kapps") if i % 2 == 0 else ("kapps", "keras")):
            loads[name].append(_timed(lambda: twin.load_weights(job["weights"]) if name == "keras"
                                      else load(model))[1:])
    for what, times in (("build", builds), ("load", loads)):
        best = {n: (min(w for w, _ in t), min(c for _, c in t)) for n, t in times.items()}
        out[f"{what}_s"] = {n: round(b[0], 4) for n, b in best.items()}
        out[f"{what}_kapps_vs_keras"] = round(best["kapps"][0] / best["keras"][0], 3)
        out[f"{what}_kapps_vs_keras_cpu"] = round(best["kapps"][1] / best["keras"][1], 3)
    candidates = {"keras": twin, "kapps": model}
    diff = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))  # noqa: E731
    out["max_abs_diff_vs_keras"] = diff(model.predict_on_batch(batches[1]), twin.predict_on_batch(batches[1]))
    if job.get("optimize"):
        from kapps.tools.optimize import optimize_for_inference

        t0 = time.perf_counter()
        fast = optimize_for_inference(model)
        out["optimize_s"] = round(time.perf_counter() - t0, 3)
        bn = lambda m: sum(type(l).__name__ == "BatchNormalization" for l in m.layers)  # noqa: E731
        out.update(layers_before=len(model.layers), layers_after=len(fast.layers), bn_folded=bn(model) - bn(fast),
                   optimized_max_abs_diff=diff(fast.predict_on_batch(batches[1]), model.predict_on_batch(batches[1])))
        candidates["optimized"] = fast
        if job.get("xla"):
            xla = optimize_for_inference(model, xla=True)
            t0 = time.perf_counter()
            xla.predict_on_batch(batches[1])
            xla.predict_on_batch(batches[32])
            out["xla_compile_s"] = round(time.perf_counter() - t0, 2)
            candidates["optimized_xla"] = xla
    names = list(candidates)
    for b, iters in ((1, job["iters_b1"]), (32, job["iters_b32"])):
        times = _alternating([lambda m=candidates[n]: m.predict_on_batch(batches[b]) for n in names],
                             iters, job["warmup"])
        wall = {n: t[0] for n, t in zip(names, times)}
        cpu = {n: t[1] for n, t in zip(names, times)}
        out[f"ips_b{b}"] = {n: round(b / t, 2) for n, t in wall.items()}
        out[f"cpu_ms_per_image_b{b}"] = {n: round(1000 * t / b, 2) for n, t in cpu.items()}
        out[f"kapps_vs_keras_b{b}"] = round(wall["keras"] / wall["kapps"], 3)
        out[f"kapps_vs_keras_cpu_b{b}"] = round(cpu["keras"] / cpu["kapps"], 3)
        for n in names[2:]:
            out[f"{n}_speedup_b{b}"] = round(wall["kapps"] / wall[n], 3)
            out[f"{n}_speedup_cpu_b{b}"] = round(cpu["kapps"] / cpu[n], 3)
    return out


def _worker_main(argv: Sequence[str]) -> int:
    job, result_path = json.loads(argv[0]), argv[1]
    result = worker(job)
    with open(result_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2:]))
    sys.exit("usage: python -m kapps.cli bench ... (this file is run as a worker by kapps.tools.bench.run)")
