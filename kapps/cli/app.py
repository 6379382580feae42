"""The ``kapps`` command line: one module per command, registered here explicitly.

Exit codes (:mod:`kapps.cli.common`): 0 success, 1 failure while running, 2 bad usage or
arguments, 3 weights unavailable or failing their integrity check, 130 interrupted.
``--help``, ``list`` and ``info`` import neither Keras nor TensorFlow; a command imports
what it needs when it runs.

>>> main(["info", "no_such_model"])  # prints the error on stderr
2
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from kapps.cli import bench, convert, export, fine_tune, info, list_models, predict, validate, weights
from kapps.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, EXIT_WEIGHTS, error

__all__ = ["COMMANDS", "build_parser", "main"]

#: The command modules, in ``kapps --help`` order; each has ``add_parser(subparsers)``.
COMMANDS = (list_models, info, predict, validate, weights, convert, fine_tune, bench, export)


def build_parser() -> argparse.ArgumentParser:
    """The ``kapps`` parser with every command of ``COMMANDS``."""
    from kapps import __version__

    parser = argparse.ArgumentParser(prog="kapps", description="The kapps model zoo on the command line.")
    parser.add_argument("--version", action="version", version=f"kapps {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kapps`` console script; returns the exit status.

    Usage errors, ``--help`` and ``--version`` return argparse's status instead of raising
    ``SystemExit``; kapps' own errors print one ``kapps: error:`` line, never a traceback.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help/--version (0) or bad usage (2, message printed)
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    from kapps.errors import DownloadError, KappsError, WeightsIntegrityError, WeightsNotFoundError

    try:
        return int(args.func(args) or 0)
    except (WeightsNotFoundError, WeightsIntegrityError, DownloadError) as e:
        error(e)
        return EXIT_WEIGHTS
    except (KappsError, ValueError) as e:
        error(e)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kapps: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
