"""The ``kapps`` command line (``kapps --help``); :mod:`kapps.cli.main` lists the commands."""

from kapps.cli.main import main

__all__ = ["main"]
