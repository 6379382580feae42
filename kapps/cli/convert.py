"""``kapps convert CHECKPOINT --model NAME --out FILE``: a PyTorch/safetensors checkpoint -> Keras weights
(see :func:`kapps.tools.convert.convert`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from kapps.cli.common import EXIT_OK, add_model_options, model_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps convert`` on the ``kapps`` command line."""
    p = subparsers.add_parser(
        "convert", help="convert a PyTorch or safetensors checkpoint into Keras weights",
        description="Convert a PyTorch checkpoint (.pth/.pt, either torch format; read without torch and without "
                    "running code from the file) or a .safetensors file into a Keras .weights.h5 for a registered "
                    "model, by layer name (torch's layer1.0.conv1 is the Keras layer layer1_0_conv1). Load it "
                    "with weights=FILE, either builder. A checkpoint that does not fit is refused, naming the key.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the .pth, .pt or .safetensors file")
    p.add_argument("--model", required=True, metavar="NAME", help="registry or Keras name (resnet18, ResNet18)")
    p.add_argument("--out", required=True, metavar="FILE", help="the Keras weights file to write (*.weights.h5)")
    p.add_argument("--classes", type=int, default=1000, help="the checkpoint's classifier size (default: %(default)s)")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Convert, then print the written path and its size."""
    import kapps.models  # noqa: F401  (registers every family for the name lookup)
    from kapps.tools.convert import convert

    options = model_options(args.model, args.option) if args.option else {}
    try:
        path = convert(args.checkpoint, args.model, args.out, classes=args.classes, **options)
    except FileNotFoundError as missing:  # a usage error here (exit code 2), not a crash
        raise ValueError(str(missing)) from None
    print(f"{path} ({os.path.getsize(path) / 2**20:.2f} MiB, {args.model})")
    return EXIT_OK
