"""The ``kapps`` command line (``kapps --help``); :mod:`kapps.cli.app` lists the commands.

Importing this package imports no command, so ``python -m kapps.cli.fine_tune`` and
``python -m kapps.cli.model_index`` run their module once, as ``__main__``.

>>> main(["--version"])  # doctest: +ELLIPSIS
kapps ...
0
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kapps`` console script: :func:`kapps.cli.app.main`."""
    from kapps.cli.app import main as run

    return run(argv)
