"""``kapps bench``: benchmark kapps against keras.applications (see :mod:`kapps.tools.bench`)."""

from __future__ import annotations

import argparse
from typing import Any

from kapps.cli.common import EXIT_FAILURE, EXIT_OK, add_model_options, model_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps bench`` on the ``kapps`` command line."""
    from kapps.tools import RUNTIMES

    p = subparsers.add_parser(
        "bench", help="benchmark kapps against keras.applications",
        description="Build time, weight-load time, inference images/s (batch 1 and 32), achieved GFLOP/s and "
                    "peak memory of kapps (both builders) and keras.applications, measured in the same run, "
                    "each side in its own process; plus the speedup of optimize_for_inference. Prints tables "
                    "of kapps/keras ratios and writes JSON.",
    )
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="registry names (default: a representative set of the registered models)")
    p.add_argument("--all", dest="all_models", action="store_true",
                   help="every registered model that keras.applications also has (slow)")
    p.add_argument("--quick", action="store_true", help="fewer repeats and iterations (noisier)")
    p.add_argument("--builders", nargs="+", choices=("functional", "sequential"),
                   default=["functional", "sequential"], help="kapps builders to measure (default: both)")
    p.add_argument("--no-optimize", dest="optimize", action="store_false",
                   help="skip the optimize_for_inference measurement")
    p.add_argument("--xla", action="store_true", help="also measure the optimized model compiled with XLA")
    p.add_argument("--out", default="bench_results.json", help="JSON file to write (default: %(default)s)")
    runtimes = p.add_argument_group(
        "runtimes", "With --runtime: every runtime side by side against keras.applications in one process, timed "
                    "in turns (kapps.tools.bench.runtimes); a CSV with timm's columns, JSON (--out) and a plot.")
    runtimes.add_argument("--runtime", nargs="+", choices=(*RUNTIMES, "all"), metavar="RUNTIME",
                          help=f"runtimes to time: {', '.join(RUNTIMES)} (or 'all')")
    runtimes.add_argument("--batch", nargs="+", type=int, default=[1, 32], help="batch sizes (default: 1 32)")
    runtimes.add_argument("--csv", default="bench_runtimes.csv", help="CSV to write (default: %(default)s)")
    runtimes.add_argument("--plot", help="PNG of the speed-ups to write")
    runtimes.add_argument("--keep-float", type=int, default=0, metavar="N",
                          help="litert-int8: layers left in float32 (default: %(default)s)")
    runtimes.add_argument("--size", type=int, help="input size (default: each model's)")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit 1 when any side of any model failed."""
    from kapps.tools import bench

    names = args.models or None
    options = {}
    if args.option:
        if not names:
            raise ValueError(f"`--option` needs the MODEL names it applies to. Received: --option {args.option[0]}")
        checked = [model_options(name, args.option) for name in names]  # against every model's constructor
        options = checked[0]  # the same pairs, so the same values for each
    if args.runtime:
        from kapps.tools import RUNTIMES
        from kapps.tools.bench.runtimes import run_runtimes

        chosen = RUNTIMES if "all" in args.runtime else tuple(dict.fromkeys(args.runtime))
        run_runtimes(names, runtimes=chosen, batches=args.batch, quick=args.quick, keep_float=args.keep_float,
                     size=args.size, model_options=options, csv_path=args.csv, json_path=args.out,
                     plot_path=args.plot)
        return EXIT_OK
    results = bench.run(names, all_models=args.all_models, quick=args.quick, builders=tuple(args.builders),
                        optimize=args.optimize, xla=args.xla, out=args.out, model_options=options)
    failed = [f"{name}/{side}" for name, entry in results["models"].items()
              for side in ("keras", *args.builders) if "error" in entry.get(side, {})]
    return EXIT_FAILURE if failed else EXIT_OK
