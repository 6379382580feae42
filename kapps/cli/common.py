"""What every ``kapps`` command shares: exit codes and the error line users see.

Exit codes: 0 success, 1 failure while running, 2 bad usage or arguments,
3 weights unavailable or failing their integrity check, 130 interrupted.

>>> EXIT_USAGE
2
"""

from __future__ import annotations

import argparse
import ast
import sys
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_WEIGHTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_WEIGHTS", "EXIT_INTERRUPTED", "error",
           "add_model_options", "add_runtime_options", "model_options", "parse_option", "parse_value"]


def error(message: object, command: str = "kapps") -> None:
    """Print ``command: error: message`` on stderr (argparse's shape, without a traceback)."""
    print(f"{command}: error: {message}", file=sys.stderr)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``-o/--option KEY=VALUE`` (repeatable): a model's own constructor arguments."""
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a model option, as in Python (alpha=0.25, minimalistic=True); repeatable")


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """``--runtime``, ``--calibration``, ``--calibration-samples``, ``--keep-float`` (``kapps.compile``)."""
    from kapps.tools import RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES, default="keras",
                        help="run the model on this runtime (kapps.compile; default: %(default)s)")
    parser.add_argument("--calibration", nargs="+", metavar="PATH",
                        help="images or folders for the runtime's check and int8 calibration "
                             "(default: scikit-image's sample photos)")
    parser.add_argument("--calibration-samples", type=int, default=64,
                        help="at most this many calibration images (default: %(default)s)")
    parser.add_argument("--keep-float", type=int, default=0, metavar="N",
                        help="litert-int8: leave the N least faithful layers in float32 (default: %(default)s)")


def parse_value(text: str) -> Any:
    """``"0.25"`` -> 0.25, ``"True"`` -> True, a plain word stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a plain word: a string option ("hard_swish")


def parse_option(pair: str) -> tuple[str, Any]:
    """One ``--option`` ``KEY=VALUE`` as ``(key, value)``; a ValueError when it is not one.

    >>> parse_option("alpha=0.25")
    ('alpha', 0.25)
    """
    key, sep, text = pair.partition("=")
    if not sep or not key:
        raise ValueError(f"`--option` must be KEY=VALUE. Received: --option {pair}")
    return key, parse_value(text)


def model_options(model: str, pairs: list[str]) -> dict[str, Any]:
    """``--option`` pairs as keyword arguments of ``model``'s constructor, checked by name.

    >>> model_options("mobilenet", ["alpha=0.25"])
    {'alpha': 0.25}
    """
    from kapps.registry import STANDARD_ARGUMENTS, get_spec

    spec = get_spec(model)
    known = [k for k in spec.constructor_defaults() if k not in STANDARD_ARGUMENTS and k not in spec.fixed]
    options: dict[str, Any] = {}
    for pair in pairs:
        key, value = parse_option(pair)
        if key not in known:
            raise ValueError(f"`--option`: {spec.name} has no option {key!r}; its options: "
                             f"{', '.join(known) or 'none'}. Received: --option {pair}")
        options[key] = value
    return options
