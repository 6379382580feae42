"""Whole-model saving: ``.keras`` (both builders, every family), legacy ``.h5`` and ``export``.

Models are built here (``weights=None``, small inputs, random BatchNorm statistics) and
saved into a folder; one fresh Python process then reloads the whole folder and
writes the outputs back, so the sweep pays the TensorFlow import once per folder. A second
fresh process never imports kapps: there, the Functional model of every model that
keras.applications has must reload, as keras.applications' own models do. The swept
models (:func:`swept_models`: one per family and the deepest graph; every registered model
with ``KAPPS_FULL_SWEEPS=1``) are dealt into ``PARTS`` parts, each saved and reloaded on its
own, so that the parts run on different pytest-xdist workers (``tests/conftest.py``, ``scope_of``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import keras
import numpy as np
import pytest

import kapps
from kapps.registry import get_spec
from parity import part_of, randomize_batch_norm, smallest_of_each_family

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


#: The sweep's parts (each one xdist scope: its models built, saved and reloaded by two processes).
PARTS = 2
#: The deepest graph: Keras needs more than Python's default recursion limit to build and reload it.
DEEPEST = "resnet_rs420"


def swept_models() -> list[str]:
    """The smallest model of every family and the deepest graph; every registered model with
    ``KAPPS_FULL_SWEEPS=1``. All 74 models, both builders, passed on 2026-12-05 (four parts), but they
    cost 21 CPU minutes, which put ``make test`` at 43 min 24 s, over its 40-minute budget."""
    if os.environ.get("KAPPS_FULL_SWEEPS") == "1":
        return kapps.list_models()
    return sorted({*smallest_of_each_family(kapps.list_models()), DEEPEST})


def models_of_part(part: int) -> list[str]:
    """The swept models, dealt over the parts by parameter count (the largest spread out).

    >>> sorted(sum((models_of_part(p) for p in range(PARTS)), [])) == swept_models()
    True
    """
    return part_of(swept_models(), part, PARTS)


def builders_of(name: str) -> tuple[str, ...]:
    """Both builders, but the Functional one only for the deepest graph (unless ``KAPPS_FULL_SWEEPS=1``): the
    recursion it guards is the Functional graph walk, and ResNetRS420's Sequential model (its family's blocks,
    saved for ResNetRS50 too) cost about 50 s of the suite's CPU time."""
    if name == DEEPEST and os.environ.get("KAPPS_FULL_SWEEPS") != "1":
        return ("functional",)
    return ("functional", "sequential")


def has_keras_twin(name: str) -> bool:
    return hasattr(keras.applications, get_spec(name).keras_name)


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


def save_and_reload(models: list[str], with_kapps: Path, without: Path) -> dict:
    """Save ``models`` (both builders) and reload them in fresh processes.

    Functional models that keras.applications has go to the folder reloaded *without* kapps;
    everything else to the folder reloaded after ``import kapps``.
    """
    expected: dict[str, dict] = {"with": {}, "without": {}}
    for name in models:
        kwargs = small_kwargs(name)
        for builder in builders_of(name):
            plain = builder == "functional" and has_keras_twin(name)
            folder, key = (without, "without") if plain else (with_kapps, "with")
            model = kapps.get_model(name, builder=builder, **kwargs)
            expected[key][f"{name}_{builder}.keras"] = save_with_output(model, folder, f"{name}_{builder}")
            del model
            keras.backend.clear_session()
    return {
        "with": (with_kapps, expected["with"], reload_folder(with_kapps, with_kapps=True)),
        "without": (without, expected["without"], reload_folder(without, with_kapps=False)),
    }


@pytest.fixture(scope="module", params=range(PARTS), ids=lambda part: f"part{part}")
def saved(request, tmp_path_factory) -> Iterator[dict]:
    """One part of the swept models, each saved with both builders and reloaded in fresh processes."""
    part = request.param
    folders = tmp_path_factory.mktemp(f"with_kapps{part}"), tmp_path_factory.mktemp(f"without_kapps{part}")
    yield {**save_and_reload(models_of_part(part), *folders), "models": models_of_part(part)}
    for folder in folders:  # up to 3 GB a part (every model): not left for pytest's temporary-folder retention
        shutil.rmtree(folder)


def test_every_model_file_reloads_with_identical_outputs(saved):
    folder, expected, errors = saved["with"]
    assert errors.pop("__kapps_imported__") is True
    assert_reloaded(folder, errors, expected)
    assert sorted([*expected, *saved["without"][1]]) == sorted(
        f"{name}_{builder}.keras" for name in saved["models"] for builder in builders_of(name))


def test_functional_models_reload_without_kapps(saved):
    """Plain Keras reloads them: every layer is Keras' own (keras.applications' LayerScale and
    CustomScaleLayer are registered by Keras itself)."""
    folder, expected, errors = saved["without"]
    assert errors.pop("__kapps_imported__") is False
    assert sorted(expected) == sorted(f"{n}_functional.keras" for n in saved["models"] if has_keras_twin(n))
    assert_reloaded(folder, errors, expected)


def test_the_parts_cover_every_family_and_the_deepest_graph():
    parts = [models_of_part(part) for part in range(PARTS)]
    assert sorted(sum(parts, [])) == swept_models()
    assert {get_spec(n).family for n in swept_models()} == {get_spec(n).family for n in kapps.list_models()}
    assert DEEPEST in swept_models() and sum(has_keras_twin(n) for n in swept_models()) >= 10


def test_legacy_h5_full_model_reloads(tmp_path):
    expected = {}
    for builder in ("functional", "sequential"):  # legacy full-model HDF5
        model = kapps.get_model("mobilenet_v2", builder=builder, **small_kwargs("mobilenet_v2"))
        expected[f"legacy_{builder}.h5"] = save_with_output(model, tmp_path, f"legacy_{builder}", ".h5")
    errors = reload_folder(tmp_path, with_kapps=True)
    assert errors.pop("__kapps_imported__") is True
    assert_reloaded(tmp_path, errors, expected)


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
