"""``kapps list [PATTERN] [--json]``: the registered models, from the model index (no Keras import).

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="kapps")
>>> _ = add_parser(parser.add_subparsers())
>>> run(parser.parse_args(["list", "vgg1*"]))  # doctest: +NORMALIZE_WHITESPACE
name                     keras name                 params   GFLOPs  size  top-1  weights
vgg16                    VGG16                 138,357,544    30.94   224   71.3        2
vgg19                    VGG19                 143,667,240    39.26   224   71.3        2
0
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kapps.cli import model_index
from kapps.cli.common import EXIT_FAILURE, EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps list`` on ``subparsers``."""
    p = subparsers.add_parser("list", help="list registered models", description="List registered models.")
    p.add_argument("pattern", nargs="?", help="glob filter, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print the models matching ``args.pattern`` (a table, or JSON with ``--json``)."""
    names = model_index.names(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return EXIT_FAILURE
    rows = [model_index.find(n) for n in names]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    print(f"{'name':24} {'keras name':20} {'params':>12} {'GFLOPs':>8} {'size':>5} {'top-1':>6} {'weights':>8}")
    for r in rows:
        top1 = "-" if r["top1"] is None else f"{r['top1']:.1f}"
        gflops = "-" if r["gflops"] is None else f"{r['gflops']:.2f}"
        params = "-" if r["params"] is None else f"{r['params']:,}"
        print(f"{r['name']:24} {r['keras_name']:20} {params:>12} {gflops:>8} {r['default_size']:>5} {top1:>6} "
              f"{len(r['weight_files']):>8}")
    return EXIT_OK
