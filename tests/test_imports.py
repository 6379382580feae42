"""The package surface: explicit public names, lazy imports, no TensorFlow unless asked for."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys

import pytest

import kapps
import kapps.blocks
import kapps.models
from conftest import REPO
from kapps.registry import list_models, model_function

ERRORS = ["KappsError", "WeightsNotFoundError", "WeightsIntegrityError", "WeightsMismatchError", "DownloadError",
          "BackendError", "CheckpointError"]
#: Keras backends to prove TensorFlow-free: numpy always, jax/torch when installed in this environment.
BACKENDS = ["numpy"] + [name for name in ("jax", "torch") if importlib.util.find_spec(name)]


def _type_checking_names() -> set[str]:
    """Names imported under ``if TYPE_CHECKING:`` in kapps/__init__.py (what type checkers see)."""
    tree = ast.parse((REPO / "kapps" / "__init__.py").read_text(encoding="utf-8"))
    block = next(node for node in tree.body
                 if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING")
    return {alias.asname or alias.name for node in block.body for alias in node.names}


def _run(code: str, **env: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_type_checking_imports_lazy_names_and_all_agree():
    lazy = set(kapps._LAZY) | set(kapps._FAMILIES)
    assert _type_checking_names() == lazy
    assert sorted(kapps.__all__) == sorted([*ERRORS, *lazy]) and len(kapps.__all__) == len(set(kapps.__all__))
    for name in kapps.__all__:
        assert getattr(kapps, name) is not None, name


def test_constructors_are_the_registry():
    registered = {model_function(name) for name in list_models()}
    assert {getattr(kapps, name) for name in kapps._CONSTRUCTORS} == registered
    assert len(kapps._CONSTRUCTORS) == len(list_models())
    assert all(getattr(kapps, name).__name__ == name for name in kapps._CONSTRUCTORS)


def test_every_family_module_is_listed_and_is_kapps_family():
    on_disk = sorted(m.name for m in pkgutil.iter_modules(kapps.models.__path__) if not m.name.startswith("_"))
    assert sorted(kapps.models.FAMILY_MODULES) == on_disk == sorted(kapps._FAMILIES)
    for name in on_disk:
        assert getattr(kapps, name) is importlib.import_module(f"kapps.models.{name}") is kapps.models.FAMILIES[name]
    assert kapps.resnet50.ResNet50 is kapps.resnet.ResNet50 is kapps.ResNet50
    assert kapps.resnet.DEPTHS and kapps.vgg16.CONFIGS  # module tables, not only __all__


def test_blocks_exports_every_module_all():
    expected = []
    for info in sorted(pkgutil.iter_modules(kapps.blocks.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"kapps.blocks.{info.name}")
        expected += [(name, getattr(module, name)) for name in module.__all__]
    assert kapps.blocks.__all__ == [name for name, _ in expected]
    for name, value in expected:
        assert getattr(kapps.blocks, name) is value, name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'kapps' has no attribute 'MobileNetV9'"):
        kapps.MobileNetV9  # noqa: B018
    with pytest.raises(ModuleNotFoundError, match="No module named 'kapps.mobilenet_v9'"):
        importlib.import_module("kapps.mobilenet_v9")


def test_import_kapps_is_light_and_family_paths_import():
    out = _run(
        "import json, sys\n"
        "import kapps\n"
        "light = [m for m in ('keras', 'tensorflow', 'kapps.models', 'kapps.mobilenet_v2') if m in sys.modules]\n"
        "import kapps.mobilenet_v2\n"
        "from kapps.resnet50 import preprocess_input\n"
        "from kapps import vgg16\n"
        "print(json.dumps({'light': light, 'same': kapps.mobilenet_v2 is kapps.models.mobilenet_v2,\n"
        "                  'spec': kapps.mobilenet_v2.__spec__.name, 'vgg16': vgg16.__name__,\n"
        "                  'pre': preprocess_input is kapps.models.resnet.preprocess_input}))\n"
    )
    assert out == {"light": [], "same": True, "spec": "kapps.models.mobilenet_v2", "vgg16": "kapps.models.vgg16",
                   "pre": True}


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_backends_never_import_tensorflow(backend):
    out = _run(
        "import json, sys\n"
        "import kapps\n"
        "after_import = 'tensorflow' in sys.modules\n"
        "model = kapps.MobileNetV2(weights=None, input_shape=(32, 32, 3))\n"
        "import keras\n"
        "print(json.dumps({'after_import': after_import, 'after_build': 'tensorflow' in sys.modules,\n"
        "                  'backend': keras.backend.backend(), 'params': model.count_params()}))\n",
        KERAS_BACKEND=backend,
    )
    assert out == {"after_import": False, "after_build": False, "backend": backend, "params": 3538984}


@pytest.mark.parametrize("order", ["kapps_first", "keras_first"])
def test_keras_with_kapps_allows_deep_graphs_and_never_lowers_a_higher_limit(order):
    """Keras walks a Functional graph recursively, once per layer: ResNetRS270-420 need more than
    Python's default 1000 frames to build and to reload (tests/test_saving.py builds and reloads RS420)."""
    imports = "import kapps\nimport keras\n" if order == "kapps_first" else "import keras\nimport kapps\n"
    out = _run(
        "import json, sys\n"
        f"default = sys.getrecursionlimit()\n{imports}"
        "raised = sys.getrecursionlimit()\n"
        "sys.setrecursionlimit(9000)\n"
        "from kapps.builders import allow_deep_graphs\n"
        "allow_deep_graphs()\n"
        "print(json.dumps({'default': default, 'raised': raised, 'kept': sys.getrecursionlimit()}))\n",
        KERAS_BACKEND="numpy",
    )
    assert out == {"default": 1000, "raised": 3000, "kept": 9000}


def test_every_module_kapps_registers_with_keras_imports_first():
    """kapps registers its layers during the first ``import keras``, importing kapps.blocks and
    kapps.builders; when that first ``import keras`` comes from one of the modules they need
    (``import kapps.imagenet`` or ``import kapps.builders`` as a script's first line), the module
    must still import and the registration still happen. Each top-level module of that closure
    is imported first in its own process (the processes run side by side)."""
    needed = _run(
        "import json, sys\nimport kapps, keras\n"
        "print(json.dumps(sorted({'.'.join(m.split('.')[:2]) for m in sys.modules if m.startswith('kapps.')})))\n",
        KERAS_BACKEND="numpy")
    assert {"kapps.blocks", "kapps.builders", "kapps.imagenet"} <= set(needed)
    code = ("import importlib, json, sys\nimportlib.import_module(sys.argv[1])\nimport keras\n"
            "print(json.dumps([keras.saving.get_registered_object('kapps>BlockSequential') is not None,\n"
            "                  keras.saving.get_registered_object('kapps>ConvBNAct') is not None,\n"
            "                  sys.getrecursionlimit()]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "numpy"}
    runs = {name: subprocess.Popen([sys.executable, "-c", code, name], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env) for name in needed}
    for name, process in runs.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (name, err[-2000:])
        assert json.loads(out.strip().splitlines()[-1]) == [True, True, 3000], name
