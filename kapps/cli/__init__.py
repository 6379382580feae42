"""The ``kapps`` command line (``kapps --help``)."""

from kapps.cli.main import main

__all__ = ["main"]
