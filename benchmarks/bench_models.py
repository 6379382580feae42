"""Benchmark kapps against keras.applications (same run, each side in its own process).

    python benchmarks/bench_models.py                 # representative set, default iterations
    python benchmarks/bench_models.py --quick         # fewer iterations
    python benchmarks/bench_models.py resnet50 --xla  # chosen models, with XLA too
    python benchmarks/bench_models.py --all           # every model keras.applications has

Same options as ``kapps bench`` (see ``kapps bench --help``); results go to
``--out`` (default: ``benchmarks/bench_results.json``).
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_results.json")


def main(argv: list[str] | None = None) -> int:
    from kapps.cli import bench as cli_bench

    parser = argparse.ArgumentParser(prog="bench_models.py")
    sub = parser.add_subparsers(dest="command")
    cli_bench.add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", DEFAULT_OUT]
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
