"""What every ``kapps`` command shares: exit codes and the error line users see.

Exit codes: 0 success, 1 failure while running, 2 bad usage or arguments,
3 weights unavailable or failing their integrity check, 130 interrupted.

>>> EXIT_USAGE
2
"""

from __future__ import annotations

import sys

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_WEIGHTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

__all__ = ["EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_WEIGHTS", "EXIT_INTERRUPTED", "error"]


def error(message: object, command: str = "kapps") -> None:
    """Print ``command: error: message`` on stderr (argparse's shape, without a traceback)."""
    print(f"{command}: error: {message}", file=sys.stderr)
