"""The benchmark results as text tables: absolute figures, kapps/keras ratios, optimization."""

from __future__ import annotations

from typing import Any

__all__ = ["format_table"]

SIDES = ("keras", "functional", "sequential")


def _fmt(value: Any, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _pair(r: dict, a: str, b: str) -> str:
    return f"{_fmt(r.get(a), '.2f')}/{_fmt(r.get(b), '.2f')}"


def _absolute_table(results: dict) -> list[str]:
    """Each side's own figures, one row per model and side."""
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
    return lines


def _ratio_table(results: dict) -> list[str]:
    """kapps / keras.applications ratios, measured apart and in turns."""
    lines = ["", "kapps / keras.applications, wall/CPU time. build, load, peak MB: <= 1.00 is no worse; "
                  "img/s: >= 1.00 is no worse.", "'sep': each side in its own process; 'alt': one process, "
                  "alternating batches. CPU time is the process's own, much less disturbed by other load."]
    head = f"{'model':16} {'builder':11} {'build sep':>10} {'build alt':>10} {'load sep':>10} {'load alt':>10} " \
           f"{'b1 sep':>10} {'b32 sep':>10} {'b1 alt':>10} {'b32 alt':>10} {'peak MB':>8}"
    lines += [head, "-" * len(head)]
    for name, entry in results["models"].items():
        for i, (builder, r) in enumerate(entry.get("ratios", {}).items()):
            lines.append(
                f"{name if i == 0 else '':16} {builder:11} {_pair(r, 'build_s', 'build_cpu_s'):>10} "
                f"{_pair(r, 'build_alt', 'build_alt_cpu'):>10} {_pair(r, 'load_s', 'load_cpu_s'):>10} "
                f"{_pair(r, 'load_alt', 'load_alt_cpu'):>10} {_pair(r, 'ips_b1', 'ips_b1_cpu'):>10} "
                f"{_pair(r, 'ips_b32', 'ips_b32_cpu'):>10} {_pair(r, 'ips_b1_alt', 'ips_b1_alt_cpu'):>10} "
                f"{_pair(r, 'ips_b32_alt', 'ips_b32_alt_cpu'):>10} {_fmt(r['peak_rss_mb'], '.2f'):>8}"
            )
    return lines


def _optimization_table(results: dict) -> list[str]:
    """optimize_for_inference's speedups on the Functional model (empty without them)."""
    rows = [(n, e["functional"]["alternating"]) for n, e in results["models"].items()
            if "bn_folded" in e.get("functional", {}).get("alternating", {})]
    if not rows:
        return []
    lines = ["", "optimize_for_inference on the kapps Functional model (same process, alternating batches)"]
    head = f"{'model':16} {'BN folded':>9} {'layers':>11} {'b1 img/s':>17} {'b1 x wall/CPU':>14} " \
           f"{'b32 img/s':>17} {'b32 x wall/CPU':>15}"
    lines += [head, "-" * len(head)]
    for name, o in rows:
        b1, b32 = o["ips_b1"], o["ips_b32"]
        lines.append(
            f"{name:16} {o['bn_folded']:>9} {o['layers_before']:>5}->{o['layers_after']:<5} "
            f"{_fmt(b1['kapps'], '.1f'):>8}->{_fmt(b1['optimized'], '.1f'):<8} "
            f"{_pair(o, 'optimized_speedup_b1', 'optimized_speedup_cpu_b1'):>14} "
            f"{_fmt(b32['kapps'], '.1f'):>8}->{_fmt(b32['optimized'], '.1f'):<8} "
            f"{_pair(o, 'optimized_speedup_b32', 'optimized_speedup_cpu_b32'):>15}"
        )
        if "optimized_xla_speedup_b32" in o:
            lines.append(f"{'':16} with XLA: b1 x{_fmt(o['optimized_xla_speedup_b1'], '.2f')}, "
                         f"b32 x{_fmt(o['optimized_xla_speedup_b32'], '.2f')} "
                         f"(compile {o['xla_compile_s']:.1f} s)")
    return lines


def format_table(results: dict) -> str:
    """The results as text tables: absolute figures, kapps/keras ratios, optimization."""
    lines = _absolute_table(results) + _ratio_table(results) + _optimization_table(results)
    errors = [(n, e[b]["alternating"]["error"]) for n, e in results["models"].items()
              for b in ("functional", "sequential") if "error" in e.get(b, {}).get("alternating", {})]
    lines += [f"{n}: same-process measurement failed: {err}" for n, err in errors]
    m = results["machine"]
    lines += ["", f"{m['cpu_count']} CPUs ({m['processor']}), TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
                  f"load average before {m['loadavg_before']} after {m.get('loadavg_after')}"]
    return "\n".join(lines)
