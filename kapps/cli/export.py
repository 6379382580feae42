"""``kapps export``: SavedModel, TFLite float32 or full-integer int8 (see :mod:`kapps.tools.export`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from kapps.cli.common import EXIT_OK, add_model_options, model_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps export`` on the ``kapps`` command line."""
    from kapps.tools import EXPORT_FORMATS as FORMATS

    p = subparsers.add_parser(
        "export", help="export a model as SavedModel, TFLite or int8 TFLite",
        description="Export a registered model (ImageNet weights by default) or a .keras file. BatchNorm is "
                    "folded first. tflite-int8 is full-integer, calibrated on --images (files or folders) or, by "
                    "default, crops of scikit-image's sample photos, preprocessed the family's way.",
    )
    p.add_argument("model", metavar="NAME_OR_PATH", help="registry name (mobilenet_v2) or a .keras file")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (a directory for savedmodel)")
    p.add_argument("--weights", default="imagenet",
                   help="for a registry name: 'imagenet' (default), a weights file, or 'none' (random)")
    p.add_argument("--no-top", dest="include_top", action="store_false", help="without the classifier")
    p.add_argument("--pooling", choices=("avg", "max"), help="with --no-top: global pooling")
    p.add_argument("--input-size", type=int, help="square input size (default: the model's)")
    p.add_argument("--images", nargs="+", metavar="PATH", help="calibration images or folders for tflite-int8")
    p.add_argument("--preprocessing", help="calibration preprocessing for a .keras file: tf, caffe, torch, none, "
                                           "or a registry name (default for a registry name: its family's)")
    p.add_argument("--calibration-samples", type=int, default=64, help="at most this many (default: %(default)s)")
    p.add_argument("--float-io", dest="int8_io", action="store_false",
                   help="tflite-int8 with float32 input/output tensors (default: int8)")
    p.add_argument("--no-optimize", dest="optimize", action="store_false", help="do not fold BatchNorm first")
    p.add_argument("--builder", choices=("functional", "sequential"), default="functional")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export the model and print the written path, its size and format."""
    import kapps.models  # noqa: F401  (registers every family for the name lookup)
    from kapps.tools.export import export

    if args.pooling and args.include_top:
        raise ValueError(f"`--pooling` needs --no-top. Received: --pooling {args.pooling}")
    path = export(
        args.model, args.format, args.out, representative_images=args.images, weights=args.weights,
        include_top=args.include_top, pooling=args.pooling, input_size=args.input_size,
        preprocessing=args.preprocessing, calibration_samples=args.calibration_samples, int8_io=args.int8_io,
        optimize=args.optimize, builder=args.builder,
        model_options=model_options(args.model, args.option) if args.option else None,
    )
    print(f"{path} ({_size(path) / 2**20:.2f} MiB, {args.format})")
    return EXIT_OK


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
