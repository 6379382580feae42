"""``kapps info NAME [--json]``: one model's metadata, from the model index (no Keras import).

>>> import argparse
>>> parser = argparse.ArgumentParser(prog="kapps")
>>> _ = add_parser(parser.add_subparsers())
>>> run(parser.parse_args(["info", "LeNet5"]))  # doctest: +ELLIPSIS
name              lenet5
keras_name        LeNet5
...
weight_files      0
0
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kapps.cli import model_index
from kapps.cli.common import EXIT_OK, add_model_options, parse_option

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps info`` on ``subparsers``."""
    p = subparsers.add_parser("info", help="show a model's metadata", description="Show a model's metadata.")
    p.add_argument("name", help="registry name (mobilenet_v2) or Keras name (MobileNetV2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Print ``model_info(args.name)``; an unknown name is a ``ValueError`` naming the argument."""
    info = model_index.find(args.name)
    if args.option:
        info = {**info, "weight_files": _matching_files(info, args.option)}
    if args.json:
        print(json.dumps(info, indent=1))
        return EXIT_OK
    for key, value in info.items():
        if key != "weight_files":
            print(f"{key:17} {value}")
    print(f"{'weight_files':17} {len(info['weight_files'])}")
    for f in info["weight_files"]:
        variant = ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("file", "url", "hash", "eval_transform"))
        print(f"  {f['file']}  ({variant})")
        if "eval_transform" in f:
            t = f["eval_transform"]
            print(f"    eval transform: {t['resize']}, crop_pct {t['crop_pct']}, {t['interpolation']}, "
                  f"{t['size'][0]}x{t['size'][1]}, preprocessing {t['preprocessing']!r} ({t['source']})")
    return EXIT_OK


def _matching_files(info: dict[str, Any], pairs: list[str]) -> list[dict[str, Any]]:
    """The weight files whose variant has the ``--option`` values (``alpha=0.25``); the keys are
    checked against the variant keys of the model's files (answered without importing Keras)."""
    files = info["weight_files"]
    keys = sorted({k for f in files for k in f} - {"file", "include_top", "url", "hash", "eval_transform"})
    for pair in pairs:
        key, value = parse_option(pair)
        if key not in keys:
            raise ValueError(f"`--option` for `kapps info` must be KEY=VALUE with a key that chooses {info['name']}'s "
                             f"weight files ({', '.join(keys) or 'it has none'}). Received: --option {pair}")
        files = [f for f in files if f.get(key) == value]
    return files
