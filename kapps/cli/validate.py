"""``kapps validate MODEL DATA``: top-1/top-5 of an ImageNet classifier on labelled photos.

DATA is a folder of WordNet-id sub-folders, or a flat folder with ``labels.csv``,
``val.txt`` or ``LOC_val_solution.csv`` (or ``--labels FILE``). The weight file's
evaluation transform applies unless ``--size``/``--crop-pct``/``--interpolation``/``--resize``
override it; ``--results CSV`` appends a timm-style row. ``--runtime`` runs the model on a
runtime of ``kapps.compile`` (``litert-int8`` calibrated on ``--calibration`` images, which
must not be among DATA's); ``--compare`` adds the top-1 agreement with the Keras model. Keras is imported only when it runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kapps.cli.common import EXIT_OK, add_model_options, add_runtime_options, model_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps validate`` on ``subparsers``."""
    from kapps.transforms import INTERPOLATIONS, RESIZE_MODES

    p = subparsers.add_parser("validate", help="measure ImageNet top-1/top-5 on labelled photos",
                              description="Measure top-1/top-5 of an ImageNet classifier on a labelled image folder.")
    p.add_argument("model", metavar="MODEL", help="registry name (mobilenet, resnet50, ...)")
    p.add_argument("data", metavar="DATA", help="image folder (wnid sub-folders, or labels.csv/val.txt inside)")
    p.add_argument("--weights", default="imagenet", help="classifier weights file (default: the official file)")
    p.add_argument("--labels", help="labels file (CSV with file and class_index/wnid, val.txt or LOC_val_solution.csv)")
    p.add_argument("--limit", type=int, help="use the first N images")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    p.add_argument("--size", type=int, help="input size (overrides the transform)")
    p.add_argument("--crop-pct", type=float, help="centre-crop fraction in (0, 1] (overrides the transform)")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, help="resize interpolation (overrides the transform)")
    p.add_argument("--resize", choices=RESIZE_MODES, help="resize mode (overrides the transform)")
    p.add_argument("--results", metavar="CSV", help="append the result to this CSV (timm's columns)")
    p.add_argument("--builder", choices=("functional", "sequential"), default="functional")
    add_runtime_options(p)
    p.add_argument("--compare", action="store_true",
                   help="also run the Keras model and report how often the runtime's top-1 agrees with it")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Validate and print the summary (or ``--json``)."""
    from kapps.tools.accuracy import validate

    options = model_options(args.model, args.option)
    result = validate(
        args.model, args.data, weights=args.weights, labels=args.labels, size=args.size, crop_pct=args.crop_pct,
        interpolation=args.interpolation, resize=args.resize, limit=args.limit, batch_size=args.batch_size,
        results_csv=args.results, progress=not (args.quiet or args.json), builder=args.builder,
        runtime=args.runtime, calibration=args.calibration, calibration_samples=args.calibration_samples,
        keep_float=args.keep_float, compare=args.compare, **options)
    if args.json:
        print(json.dumps({**result.row(), "top1_correct": result.top1_correct, "top5_correct": result.top5_correct,
                          "transform": result.transform.to_dict(), "runtime_details": result.runtime_details,
                          "top1_agreement": result.top1_agreement, "unreadable": result.unreadable,
                          "unlabelled": result.unlabelled, "missing": result.missing}, indent=1))
    else:
        print(result.summary())
    return EXIT_OK
