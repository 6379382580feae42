"""The model index: every registered model's ``kapps.model_info`` in one JSON file.

``kapps list`` and ``kapps info`` answer from ``kapps/data/model_index.json`` without
importing Keras or TensorFlow (building the registry imports every family, hence Keras).
``python -m kapps.cli.model_index`` regenerates the file from the live registry;
``tests/test_cli.py`` fails when the committed file and the registry drift apart.

>>> find("MobileNetV2")["name"]
'mobilenet_v2'
>>> names("resnet5*")
['resnet50', 'resnet50_v2']
"""

from __future__ import annotations

import fnmatch
import functools
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["load", "names", "find", "generate", "main", "INDEX_FILE"]

#: Where the index lives inside the package.
INDEX_FILE = Path(__file__).resolve().parents[1] / "data" / "model_index.json"


@functools.lru_cache(maxsize=1)
def load() -> dict[str, dict[str, Any]]:
    """``{registry name: model_info}`` from the committed index, in ``list_models()`` order."""
    text = resources.files("kapps").joinpath("data/model_index.json").read_text(encoding="utf-8")
    return json.loads(text)


def names(pattern: str | None = None) -> list[str]:
    """Registry names, sorted, optionally filtered by a glob ``pattern``, as ``kapps.list_models``."""
    return [n for n in sorted(load()) if not pattern or fnmatch.fnmatch(n, pattern)]


def find(name: str) -> dict[str, Any]:
    """``model_info`` of a registry name (``mobilenet_v2``) or Keras name (``MobileNetV2``).

    Raises the registry's ``ValueError`` (same message) for an unknown name.
    """
    from kapps.utils.names import resolve_model_name

    index = load()
    return index[resolve_model_name(name, {n: info["keras_name"] for n, info in index.items()})]


def generate() -> dict[str, dict[str, Any]]:
    """The index built from the live registry (imports every family, hence Keras)."""
    import kapps

    return {name: kapps.model_info(name) for name in kapps.list_models()}


def main(path: str | None = None) -> int:
    """Write ``generate()`` to ``path`` (default: the package's index file), atomically."""
    from kapps.utils.files import write_json_atomic

    target = path or INDEX_FILE
    index = generate()
    write_json_atomic(target, index, indent=1)
    print(f"{target}: {len(index)} models")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
