"""Whole-model saving: ``.keras`` (both builders, every family), legacy ``.h5`` and ``export``.

Models are built here (``weights=None``, small inputs, random BatchNorm statistics) and
saved into a folder; one fresh Python process then reloads the whole folder and
writes the outputs back, so the sweep pays the TensorFlow import once. A second fresh
process never imports kapps: there, the Functional model of every family that
keras.applications has must reload, as keras.applications' own models do. One model per family (the smallest)
stands for the family; ``KAPPS_FULL_SWEEPS=1`` runs every registered model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kapps
from kapps.registry import get_spec
from parity import randomize_batch_norm

REPO = Path(__file__).resolve().parents[1]
CLASSES = 7

#: A fresh process: load every ``*.keras`` / ``*.h5`` of a folder, run it on its ``.npy``
#: input, save the output (``.out.npy``) or the error (``errors.json``).
RELOAD = r"""
import json, sys
from pathlib import Path
import numpy as np
folder, with_kapps = Path(sys.argv[1]), sys.argv[2] == "1"
if with_kapps:
    import kapps  # noqa: F401  (kapps' layers are registered once Keras is imported)
import keras
errors = {}
for path in sorted(p for p in folder.iterdir() if p.suffix in (".keras", ".h5")):
    try:
        model = keras.saving.load_model(path)
        x = np.load(folder / (path.stem + ".npy"))
        np.save(folder / (path.name + ".out.npy"), np.asarray(model(x, training=False)))
    except Exception as error:  # reported per model, asserted by the test
        errors[path.name] = f"{type(error).__name__}: {error}"[:2000]
    keras.backend.clear_session()
errors["__kapps_imported__"] = "kapps" in sys.modules
(folder / "errors.json").write_text(json.dumps(errors))
"""


def one_per_family() -> list[str]:
    """The smallest registered model of every family (fewest parameters)."""
    smallest: dict[str, str] = {}
    for name in kapps.list_models():
        family = get_spec(name).family
        if family not in smallest or get_spec(name).params < get_spec(smallest[family]).params:
            smallest[family] = name
    return sorted(smallest.values())


#: One model per family in ``make test``; every registered model with ``KAPPS_FULL_SWEEPS=1``
#: (about 1.7 billion parameters saved and reloaded twice: too slow for the suite's budget).
MODELS = kapps.list_models() if os.environ.get("KAPPS_FULL_SWEEPS") == "1" else one_per_family()
KERAS_TWINS = [n for n in MODELS if hasattr(keras.applications, get_spec(n).keras_name)]


def small_kwargs(name: str) -> dict:
    spec = get_spec(name)
    channels = 1 if name == "lenet5" else 3
    size = max(spec.min_size, 32)
    return dict(weights=None, input_shape=(size, size, channels), classes=CLASSES, classifier_activation=None)


def reload_folder(folder: Path, with_kapps: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", RELOAD, str(folder), "1" if with_kapps else "0"], check=True, env=env,
                   cwd=folder, timeout=1500)
    return json.loads((folder / "errors.json").read_text())


def save_with_output(model: keras.Model, folder: Path, stem: str, suffix: str = ".keras") -> np.ndarray:
    """Randomize BatchNorm, save ``model`` and its input; return its output on that input."""
    randomize_batch_norm(model)
    shape = (1, *model.input_shape[1:])
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype("float32")
    np.save(folder / f"{stem}.npy", x)
    model.save(folder / f"{stem}{suffix}")
    return np.asarray(model(x, training=False))


def assert_reloaded(folder: Path, errors: dict, expected: dict) -> None:
    failed = {stem: errors[stem] for stem in expected if stem in errors}
    assert not failed, failed
    for file_name, output in expected.items():
        np.testing.assert_allclose(np.load(folder / f"{file_name}.out.npy"), output, rtol=1e-5, atol=1e-5,
                                   err_msg=file_name)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every family saved once per builder, each file reloaded in one fresh process.

    Functional models of families that keras.applications has go to the folder reloaded
    *without* kapps; everything else to the folder reloaded after ``import kapps``.
    """
    with_kapps, without = tmp_path_factory.mktemp("with_kapps"), tmp_path_factory.mktemp("without_kapps")
    expected: dict[str, dict] = {"with": {}, "without": {}}
    for name in MODELS:
        kwargs = small_kwargs(name)
        for builder in ("functional", "sequential"):
            plain = builder == "functional" and name in KERAS_TWINS
            folder, key = (without, "without") if plain else (with_kapps, "with")
            model = kapps.get_model(name, builder=builder, **kwargs)
            expected[key][f"{name}_{builder}.keras"] = save_with_output(model, folder, f"{name}_{builder}")
            keras.backend.clear_session()
    for builder in ("functional", "sequential"):  # legacy full-model HDF5
        model = kapps.get_model("mobilenet_v2", builder=builder, **small_kwargs("mobilenet_v2"))
        expected["with"][f"legacy_{builder}.h5"] = save_with_output(model, with_kapps, f"legacy_{builder}", ".h5")
    return {
        "with": (with_kapps, expected["with"], reload_folder(with_kapps, with_kapps=True)),
        "without": (without, expected["without"], reload_folder(without, with_kapps=False)),
    }


def test_every_model_file_reloads_with_identical_outputs(saved):
    folder, expected, errors = saved["with"]
    assert errors.pop("__kapps_imported__") is True
    assert_reloaded(folder, errors, {k: v for k, v in expected.items() if k.endswith(".keras")})
    assert len(expected) + len(saved["without"][1]) == 2 * len(MODELS) + 2
    assert {n for n in MODELS} >= set(one_per_family())


def test_legacy_h5_full_model_reloads(saved):
    folder, expected, errors = saved["with"]
    assert_reloaded(folder, errors, {k: v for k, v in expected.items() if k.endswith(".h5")})


def test_functional_models_reload_without_kapps(saved):
    """Plain Keras reloads them: every layer is Keras' own (keras.applications' LayerScale and
    CustomScaleLayer are registered by Keras itself)."""
    folder, expected, errors = saved["without"]
    assert errors.pop("__kapps_imported__") is False
    assert len(expected) == len(KERAS_TWINS) > 10
    assert_reloaded(folder, errors, expected)


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_export_saved_model_serves_the_same_numbers(tmp_path, builder):
    import tensorflow as tf

    model = kapps.get_model("resnet50", builder=builder, **small_kwargs("resnet50"))
    randomize_batch_norm(model)
    x = np.random.default_rng(2).uniform(-1, 1, (1, *model.input_shape[1:])).astype("float32")
    model.export(tmp_path / "served", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(x).numpy(), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-5)


@keras.saving.register_keras_serializable(package="kapps_tests")
class CountingDense(keras.layers.Dense):
    """A Dense layer that counts how often its output shape is worked out (each symbolic call)."""

    calls = 0

    def compute_output_shape(self, input_shape):
        CountingDense.calls += 1
        return super().compute_output_shape(input_shape)


def test_sequential_builder_model_reloads_building_each_block_once():
    """keras.Sequential.from_config rebuilds after every layer (n blocks run n(n+1)/2 times);
    BlockSequential, the Sequential builder's class, runs each block once."""
    from kapps.builders import BlockSequential

    blocks = [CountingDense(3, name=f"d{i}") for i in range(12)]
    model = BlockSequential([keras.Input((3,)), *blocks], name="stack")
    CountingDense.calls = 0
    keras.models.model_from_json(model.to_json())
    assert CountingDense.calls == 12
    CountingDense.calls = 0
    keras.Sequential.from_config(keras.Sequential([keras.Input((3,)), *blocks]).get_config())
    assert CountingDense.calls >= 12 * 13 // 2  # plain keras.Sequential: 1 + 2 + ... + 12 at least
    assert type(kapps.MobileNetV2(weights=None, input_shape=(32, 32, 3), builder="sequential")) is BlockSequential
