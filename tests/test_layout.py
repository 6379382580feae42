"""The package's layers: each part of kapps imports only parts below it (nothing imports upward).

The map (README, "Architecture") in code: a part may import its own modules and any part of
a lower rank. ``kapps/__init__.py`` and ``kapps/__main__.py`` stand above everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kapps"

#: rank of each part; a module of rank r may import parts of rank < r and its own part.
RANKS: dict[str, int] = {
    "errors": 0, "_keras_compat": 0, "data": 0,
    "utils": 1,
    "imagenet": 2, "images": 2, "weights": 2,
    "blocks": 3,
    "builders": 4, "registry": 4,
    "validation": 5, "transforms": 5,
    "features": 6,
    "factory": 7,
    "models": 8,
    "finetune": 9, "tools": 9, "segmentation": 9,
    "": 10,  # the package root: its lazy public names
    "cli": 11,
}


def part_of(module: str) -> str:
    """``kapps.weights.store`` -> ``weights``; ``kapps`` itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_parts(path: Path) -> set[tuple[str, int]]:
    """(part, line) for every ``kapps`` import in ``path``, at any depth (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "kapps" else [f"kapps.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {(part_of(n), node.lineno) for n in names if n == "kapps" or n.startswith("kapps.")}
    return {(part if part in RANKS else "", line) for part, line in found}  # kapps.__version__ and the like


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py") or p.parent != PACKAGE)


def test_every_part_has_a_rank():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert parts <= set(RANKS), sorted(parts - set(RANKS))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_import(path):
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    upward = sorted((part, line) for part, line in imported_parts(path)
                    if part != own and RANKS[part] >= RANKS[own])
    assert not upward, f"{path.relative_to(PACKAGE)} imports upward: {upward}"


def test_private_keras_api_only_in_the_compat_module():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_keras_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
                if any(n and n.startswith("keras.src") for n in names):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders
