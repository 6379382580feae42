"""Shared fixtures (the ../shared folder, real photos, isolated caches) and the suite's layout.

Layout: ``-m fast`` selects the edit-test subset (tests marked ``@pytest.mark.fast``,
plus the quick modules listed in ``FAST_MODULES``). Under ``pytest-xdist`` with
``make test``'s ``-n 3`` each module runs on one worker, so its
module-scoped fixtures are built once; the modules in ``SPREAD_MODULES`` (independent,
heavy tests) are spread over the workers test by test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

#: Quick modules that belong to the ``fast`` subset as a whole: validation, registry tables, CLI, helpers.
FAST_MODULES = frozenset({
    "test_validation.py", "test_cli.py", "test_files.py", "test_keras_compat.py", "test_weights_io.py",
    "test_manifest.py", "test_include_top_file.py",
})
#: Modules whose tests share no fixtures and are heavy: xdist balances them test by test.
SPREAD_MODULES = frozenset({
    "test_parity.py", "test_foundation_parity.py", "test_notebooks.py", "test_registry.py", "test_keras_suite.py",
})


def shared_dir() -> Path:
    """The folder of real weights and data (``KAPPS_SHARED_DIR``, default ``../shared``)."""
    path = Path(os.environ.get("KAPPS_SHARED_DIR", REPO.parent / "shared"))
    if not (path / "weights").is_dir():
        pytest.fail(
            f"The shared resources folder {path} is missing (set KAPPS_SHARED_DIR to the folder that holds "
            "weights/ and data/). These tests need real files and do not skip."
        )
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


def photo(size: int = 224, which: str = "chelsea") -> np.ndarray:
    """A real photo from scikit-image, resized to ``size`` x ``size``, as float32 in [0, 255]."""
    import skimage.data
    import tensorflow as tf

    image = getattr(skimage.data, which)()
    resized = tf.image.resize(image[None].astype("float32"), (size, size), antialias=True)
    return np.clip(resized.numpy(), 0, 255).astype("float32")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    """No test reads or writes the user's real caches."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("KAPPS_CACHE_DIR", str(tmp_path / "kapps_cache"))
    monkeypatch.delenv("KAPPS_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("KAPPS_WEIGHTS_MIRROR", raising=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the ``fast`` modules."""
    for item in items:
        if item.path.name in FAST_MODULES:
            item.add_marker(pytest.mark.fast)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``make test`` (``-n 3 --dist loadscope``): one worker per module, so that module
    fixtures are built once, except the ``SPREAD_MODULES``, whose tests go out one by one.

    (``--dist loadgroup`` with ``xdist_group`` marks does not group under pytest 9 here:
    checked with a two-test module, the tests ran on both workers.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module.rsplit("/", 1)[-1] in SPREAD_MODULES else module

    return ModuleScopes(config, log)
