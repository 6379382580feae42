"""Shared fixtures (the ../shared folder, real photos, isolated caches) and the suite's layout.

Layout: ``-m fast`` selects the edit-test subset (tests marked ``@pytest.mark.fast``,
plus the quick modules listed in ``FAST_MODULES``). Under ``pytest-xdist`` with
``make test``'s ``-n 3`` each module runs on one worker, so its
module-scoped fixtures are built once; the modules in ``SPREAD_MODULES`` (independent,
heavy tests) are spread over the workers test by test.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# TensorFlow runs channels_first (NCHW) convolutions on the CPU only through oneDNN, which it turns on by
# default only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX: on others (an AMD EPYC without AVX-512, seen
# here on 2026-12-06) Conv2D refuses NCHW. Set before TensorFlow is imported (subprocesses inherit it).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Three workers share two cores: one compute thread per process (and per subprocess, which
    # inherits this) instead of TensorFlow's and PyTorch's pools of one thread a core fighting over
    # them (three workers running the same model builds: 7% less wall time, 6% less CPU).
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

#: Quick modules that belong to the ``fast`` subset as a whole: validation, registry tables, CLI, helpers.
FAST_MODULES = frozenset({
    "test_validation.py", "test_cli.py", "test_files.py", "test_keras_compat.py", "test_weights_io.py",
    "test_manifest.py", "test_include_top_file.py",
})
#: Modules whose tests share no fixtures and are heavy: xdist balances them test by test.
SPREAD_MODULES = frozenset({
    "test_parity.py", "test_foundation_parity.py", "test_notebooks.py", "test_registry.py", "test_keras_suite.py",
    "test_tf_keras_families.py", "test_segmentation_models.py", "test_transformers.py",
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


#: Seconds each heavy scope took in the last measured ``make test`` (three workers, 2-core machine);
#: the rest count ``DEFAULT_TEST_SECONDS`` a test. Only the order matters: the heaviest scopes start
#: first, so no long one is left to run alone at the end (longest-processing-time-first scheduling).
SCOPE_SECONDS = {
    "tests/test_backends.py::jax": 80, "tests/test_backends.py::torch": 60,
    "tests/test_saving.py": 90,
    # the sweeps, one scope a part: estimates; make test with them took 33 min 52 s (2026-12-05), the parts
    # measured there jax 356/340/321 s, torch 202/175 s, saving 265/156 s, jax main 187 s, torch main 70 s
    **{f"tests/test_saving.py::part{part}": 450 for part in range(2)},
    # the backends' parts, whole families each (the parity models among them): measured in make test
    # (2026-12-05) jax 309/396/396 s, torch 226/372 s, saving 418/201 s
    **{f"tests/test_backends.py::jax-part{part}": 400 for part in range(3)},
    **{f"tests/test_backends.py::torch-part{part}": 300 for part in range(2)},
    # measured in make test (2026-12-05) 338 s with ConvNeXt and RegNet, which left after it
    "tests/test_runtimes.py": 200,
    "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[01_pretrained_inference.ipynb]": 60,
    "tests/test_export.py": 200, "tests/test_finetune_real.py": 110, "tests/test_validate.py": 150,
    "tests/test_finetune_resume.py": 120, "tests/test_optimize.py": 120,
    "tests/test_finetune_segmentation.py": 95,  # measured alone, one thread (2026-12-05)
    "tests/test_torchvision_families.py": 92, "tests/test_torch_checkpoint.py": 20,  # measured (2026-12-05)
    "tests/test_torchvision_classics.py": 45,
    "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[06_segmentation_unet.ipynb]": 30,
    "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[04_training_at_scale.ipynb]": 140,
    "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[03_fine_tune_your_images.ipynb]": 91,
    "tests/test_notebooks.py::test_notebook_runs_top_to_bottom[02_sequential_vs_functional.ipynb]": 88,
    "tests/test_notebooks.py::test_fine_tune_notebook_without_the_shared_folder": 79,
    "tests/test_parity.py::test_parity_default_size[nasnet_mobile]": 100,
    "tests/test_parity.py::test_parity_smallest_size[nasnet_large]": 98,
    # measured alone, one process (tests/test_tf_keras_families.py, 2026-12-05)
    "tests/test_tf_keras_families.py::test_parity_smallest_size[resnet_rs420]": 43,
    "tests/test_tf_keras_families.py::test_parity_smallest_size[resnet_rs350]": 36,
    "tests/test_tf_keras_families.py::test_parity_smallest_size[resnet_rs270]": 25,
    # measured in make test (2026-12-06, both builders then)
    "tests/test_transformers.py::test_both_builders_equal_torchvision_at_a_small_size[vit_l_16]": 57,
    "tests/test_transformers.py::test_both_builders_equal_torchvision_at_a_small_size[vit_l_32]": 49,
    "tests/test_transformers.py::test_both_builders_equal_torchvision_at_a_small_size[swin_b]": 26,
    "tests/test_transformers.py::test_vit_b_32_equals_torchvision_at_224_and_at_another_size_from_the_same_file": 25,
    "tests/test_inception_v4_family.py": 86,
}
DEFAULT_TEST_SECONDS = 0.5


#: Modules whose module-scoped fixture is parametrized into parts, each part a batch of work in
#: subprocesses of its own (a backend, a slice of the registered models): each part is a scope, so
#: the parts run on different workers. The value matches the part's tokens in a test id.
PARTED_MODULES = {
    "test_backends.py": re.compile(r"(?<=[\[-])(?:jax|torch|part\d+)(?=[\]-])"),
    "test_saving.py": re.compile(r"(?<=[\[-])part\d+(?=[\]-])"),
}


def scope_of(nodeid: str) -> str:
    """The unit one xdist worker runs: a module, a single test of a ``SPREAD_MODULES`` module,
    or one part of a ``PARTED_MODULES`` module (``tests/test_backends.py::jax-part1``).

    >>> scope_of("tests/test_backends.py::test_sweep[jax-part1]")
    'tests/test_backends.py::jax-part1'
    >>> scope_of("tests/test_saving.py::test_legacy_h5_full_model_reloads")
    'tests/test_saving.py'
    """
    module = nodeid.split("::", 1)[0]
    name = module.rsplit("/", 1)[-1]
    if name in SPREAD_MODULES:
        return nodeid
    if name in PARTED_MODULES:
        tokens = PARTED_MODULES[name].findall(nodeid.partition("::")[2])
        return f"{module}::{'-'.join(tokens)}" if tokens else module
    return module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the ``fast`` modules; order the scopes heaviest first (see ``SCOPE_SECONDS``)."""
    for item in items:
        if item.path.name in FAST_MODULES:
            item.add_marker(pytest.mark.fast)
    counts: dict[str, int] = {}
    for item in items:
        counts[scope_of(item.nodeid)] = counts.get(scope_of(item.nodeid), 0) + 1
    first_seen = {scope: index for index, scope in enumerate(counts)}

    def cost(item: pytest.Item) -> tuple:
        scope = scope_of(item.nodeid)
        return -SCOPE_SECONDS.get(scope, DEFAULT_TEST_SECONDS * counts[scope]), first_seen[scope]

    items.sort(key=cost)  # stable: a scope's tests stay together, in their own order


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under ``make test`` (``-n 3 --dist loadscope``): one worker per scope (:func:`scope_of`), so
    that module fixtures are built once, handed out in the collection's order (heaviest first).

    xdist's own loadscope re-sorts scopes by their number of tests and queues up to three on a
    worker; here a worker holds the scope it runs and at most one more (a worker needs the next
    test in hand to finish the current one).
    (``--dist loadgroup`` with ``xdist_group`` marks does not group under pytest 9 here:
    checked with a two-test module, the tests ran on both workers.)
    """
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False

    class HeaviestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) >= 2:
                return
            self._assign_work_unit(node)

    return HeaviestFirst(config, log)
