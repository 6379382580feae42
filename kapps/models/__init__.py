"""Model families. Every module here is imported and registers its models.

Each module is named like its keras.applications counterpart (``mobilenet_v2``,
``resnet``, ...) and is also reachable as ``kapps.<module>``.
"""

from __future__ import annotations

import importlib
import pkgutil

FAMILY_MODULES = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load_all() -> dict[str, object]:
    """Import every family module; returns ``{module name: module}``."""
    return {name: importlib.import_module(f"{__name__}.{name}") for name in FAMILY_MODULES}
