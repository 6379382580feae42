"""One side (keras, functional or sequential) of one model, measured in its own process.

Started by :mod:`kapps.tools.bench.runner` as
``python -m kapps.tools.bench.worker JOB_JSON RESULT_PATH``; writes its results as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, Sequence

from kapps.tools.bench.timing import alternating, median_batch_time, rss_mb, timed
from kapps.utils.files import write_json_atomic

__all__ = ["worker", "main", "side_functions", "measure_alternating"]


def _warm_up_runtime(keras: Any, np: Any) -> None:
    """Initialise the runtime the same way on every side (first variables, first graph)."""
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2),
    ])
    model.predict_on_batch(np.zeros((1, 8, 8, 3), "float32"))
    del model
    keras.backend.clear_session()


def side_functions(job: dict) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    """``(build, load)`` for the job's side: keras.applications or a kapps builder."""
    import keras

    options = job.get("options") or {}
    if job["side"] == "keras":
        constructor = getattr(keras.applications, job["keras_name"])
        return (lambda: constructor(weights=None, **options)), (lambda model: model.load_weights(job["weights"]))
    from kapps.registry import get_model
    from kapps.weights import load_weights_by_name

    return (lambda: get_model(job["name"], weights=None, builder=job["side"], **options)), \
        (lambda model: load_weights_by_name(model, job["weights"]))


def _best(times: Sequence[tuple[float, float]], what: str) -> dict[str, float]:
    """First, minimum wall and minimum CPU seconds of repeated ``(wall, cpu)`` timings."""
    return {f"{what}_first_s": round(times[0][0], 4), f"{what}_s": round(min(w for w, _ in times), 4),
            f"{what}_cpu_s": round(min(c for _, c in times), 4)}


def _measure_build(build: Callable[[], Any], repeats: int) -> tuple[Any, dict[str, float]]:
    import gc

    import keras

    builds, model = [], None
    for i in range(repeats):
        if i:
            del model
            keras.backend.clear_session()
            gc.collect()
        model, wall, cpu = timed(build)
        builds.append((wall, cpu))
    return model, _best(builds, "build")


def _measure_inference(model: Any, batches: dict, job: dict) -> dict[str, float]:
    result: dict[str, float] = {}
    for b, iters in ((1, job["iters_b1"]), (32, job["iters_b32"])):
        first, wall, cpu = median_batch_time(lambda: model.predict_on_batch(batches[b]), iters, job["warmup"])
        result[f"first_call_b{b}_s"] = round(first, 4)
        result[f"ips_b{b}"] = round(b / wall, 2)
        result[f"cpu_ms_per_image_b{b}"] = round(1000 * cpu / b, 2)
        if job.get("flops"):
            result[f"gflops_b{b}"] = round(job["flops"] * b / wall / 1e9, 2)
    return result


def worker(job: dict) -> dict[str, Any]:
    """Measure one side of one model (see :mod:`kapps.tools.bench`)."""
    import keras
    import numpy as np
    import tensorflow  # noqa: F401  (imported on every side before measuring)

    build, load = side_functions(job)
    rss_imports, _ = rss_mb()
    _warm_up_runtime(keras, np)
    result: dict[str, Any] = {"side": job["side"]}
    model, builds = _measure_build(build, job["build_repeats"])
    result.update(builds, params=int(model.count_params()))
    result.update(_best([timed(lambda: load(model))[1:] for _ in range(job["load_repeats"])], "load"))
    rng = np.random.default_rng(0)
    size = job["size"]
    batches = {b: rng.uniform(-1, 1, (b, size, size, 3)).astype("float32") for b in (1, 32)}
    result.update(_measure_inference(model, batches, job))
    current, peak = rss_mb()
    result.update(rss_after_imports_mb=round(rss_imports, 1), peak_rss_mb=round(peak, 1),
                  rss_growth_mb=round(peak - rss_imports, 1), rss_end_mb=round(current, 1))
    if job["side"] != "keras":
        try:
            result["alternating"] = measure_alternating(model, batches, job, build, load)
        except Exception as e:  # reported, not hidden: the table shows it
            result["alternating"] = {"error": f"{type(e).__name__}: {e}"}
    return result


def _in_turns(repeats: int, fns: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each of two functions, run in alternating order."""
    import gc

    times: dict[str, list] = {n: [] for n in fns}
    first, second = list(fns)
    for i in range(max(2, repeats)):
        for name in ((first, second) if i % 2 == 0 else (second, first)):
            value, wall, cpu = timed(fns[name])
            times[name].append((wall, cpu))
            del value
            gc.collect()
    return {n: (min(w for w, _ in t), min(c for _, c in t)) for n, t in times.items()}


def _optimized(model: Any, batches: dict, job: dict, diff: Callable) -> tuple[dict[str, Any], dict[str, Any]]:
    """The optimize_for_inference (and XLA) versions of ``model``, with their figures."""
    from kapps.tools.optimize import optimize_for_inference

    t0 = time.perf_counter()
    fast = optimize_for_inference(model)
    out: dict[str, Any] = {"optimize_s": round(time.perf_counter() - t0, 3)}
    bn = lambda m: sum(type(l).__name__ == "BatchNormalization" for l in m.layers)  # noqa: E731
    out.update(layers_before=len(model.layers), layers_after=len(fast.layers), bn_folded=bn(model) - bn(fast),
               optimized_max_abs_diff=diff(fast.predict_on_batch(batches[1]), model.predict_on_batch(batches[1])))
    candidates = {"optimized": fast}
    if job.get("xla"):
        xla = optimize_for_inference(model, xla=True)
        t0 = time.perf_counter()
        xla.predict_on_batch(batches[1])
        xla.predict_on_batch(batches[32])
        out["xla_compile_s"] = round(time.perf_counter() - t0, 2)
        candidates["optimized_xla"] = xla
    return out, candidates


def _inference_in_turns(candidates: dict[str, Any], batches: dict, job: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = list(candidates)
    for b, iters in ((1, job["iters_b1"]), (32, job["iters_b32"])):
        times = alternating([lambda m=candidates[n]: m.predict_on_batch(batches[b]) for n in names],
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


def measure_alternating(model: Any, batches: dict, job: dict, build: Callable, load: Callable) -> dict[str, Any]:
    """After the memory figures: keras.applications and kapps timed in turns in this one
    process (builds, weight loads from the same file, inference; for the Functional worker
    also its optimize_for_inference version), so that a changing load affects them alike."""
    import keras
    import numpy as np

    constructor = getattr(keras.applications, job["keras_name"])
    options = job.get("options") or {}
    builds = _in_turns(job["build_repeats"], {"keras": lambda: constructor(weights=None, **options), "kapps": build})
    twin = constructor(weights=None, **options)
    loads = _in_turns(job["load_repeats"], {"keras": lambda: twin.load_weights(job["weights"]),
                                            "kapps": lambda: load(model)})
    out: dict[str, Any] = {}
    for what, best in (("build", builds), ("load", loads)):
        out[f"{what}_s"] = {n: round(b[0], 4) for n, b in best.items()}
        out[f"{what}_kapps_vs_keras"] = round(best["kapps"][0] / best["keras"][0], 3)
        out[f"{what}_kapps_vs_keras_cpu"] = round(best["kapps"][1] / best["keras"][1], 3)
    diff = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))  # noqa: E731
    out["max_abs_diff_vs_keras"] = diff(model.predict_on_batch(batches[1]), twin.predict_on_batch(batches[1]))
    candidates = {"keras": twin, "kapps": model}
    if job.get("optimize"):
        figures, optimized = _optimized(model, batches, job, diff)
        out.update(figures)
        candidates.update(optimized)
    out.update(_inference_in_turns(candidates, batches, job))
    return out


def main(argv: Sequence[str]) -> int:
    """``JOB_JSON RESULT_PATH``: measure the job, write the results to RESULT_PATH (atomically)."""
    if len(argv) != 2:
        print("usage: python -m kapps.tools.bench.worker JOB_JSON RESULT_PATH "
              "(started by kapps.tools.bench.run)", file=sys.stderr)
        return 2
    job, result_path = json.loads(argv[0]), argv[1]
    write_json_atomic(result_path, worker(job))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
