"""kapps on the JAX and PyTorch backends: parity, every model, weight files, .keras round trips.

The Keras backend is fixed when Keras is imported, so each backend's checks run in
subprocesses (``tests/backend_worker.py`` with ``KERAS_BACKEND`` set), batched to pay the
imports once; the tests below read their JSON reports. One process per backend runs the
weight-file, round-trip and optimize checks; the build-and-predict sweep of every
registered model is dealt into parts (``SWEEP_PARTS``), whole families together (JAX compiles each
eager operation once per shape, and a family's models share shapes), one process each, which
pytest-xdist runs on different workers. A part also compares the parity models of its families with
keras.applications, at the sweep's size. This process (TensorFlow) writes the inputs: the
real photo at each size, and, for NASNetMobile on torch, where keras.applications refuses
to build it, a keras.applications weight file and its outputs made here.
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

from conftest import REPO, photo, shared_dir
from parity import families_part, family_preprocess, randomize_batch_norm, smallest_of_each_family

BACKENDS = ("jax", "torch")
TOLERANCE = 1e-4
#: Models compared with keras.applications on each backend (at their sweep size).
PARITY = ("mobilenet_v2", "resnet50", "efficientnet_b0", "convnext_tiny", "densenet121", "inception_v3",
          "nasnet_mobile")
#: keras.applications refuses these on a backend; kapps is compared with its TensorFlow outputs instead.
REFUSED = {"torch": {"nasnet_mobile"}}
#: Both builders; NASNet's Sequential blocks pass (previous, current) pairs between cells.
ROUNDTRIP = [("mobilenet_v2", 64, "functional"), ("mobilenet_v2", 64, "sequential"), ("nasnet_mobile", 64, "sequential")]
SIZES = (32, 64, 75, 96)
#: The size of the model keras.applications refuses (NASNetMobile on torch), compared through TensorFlow's outputs.
REFUSED_SIZE = 64
WORKER_TIMEOUT = 1800
#: JAX compiles each initializer shape: 1.8 s each with XLA's defaults, 0.26 s at its lowest optimisation,
#: 0.12 s without the fusion emitters too (30 shapes of ``jax.random.uniform``, measured on the 2-core machine).
#: Optimisation level 1 compiles as fast (0.17 s a shape) but generates large initial weights 4x faster
#: than level 0 (16.7M uniform floats: 0.39 s against 1.64 s): the sweep initializes every model.
JAX_FLAGS = ("--xla_backend_optimization_level=1 --xla_llvm_disable_expensive_passes=true"
             " --xla_cpu_use_fusion_emitters=false")


def sweep_size(name: str) -> int:
    from kapps.registry import get_spec

    return max(get_spec(name).min_size, 32)


#: The sweep's parts per backend (each part one worker process, one xdist scope).
SWEEP_PARTS = {"jax": 3, "torch": 2}
SWEEPS = [(backend, part) for backend in BACKENDS for part in range(SWEEP_PARTS[backend])]


def swept_models(backend: str, part: int) -> list[str]:
    """The registered models of one part of the backend's sweep: whole families.

    >>> names = sum((swept_models("jax", p) for p in range(SWEEP_PARTS["jax"])), [])
    >>> sorted(names) == __import__("kapps").list_models()
    True
    """
    import kapps

    return families_part(kapps.list_models(), part, SWEEP_PARTS[backend])


def swept_builders(name: str) -> list[str]:
    """The builders the sweep runs ``name`` with: both for the smallest model of each family (and for
    every model with ``KAPPS_FULL_SWEEPS=1``), the Functional builder for the others. A family's
    Sequential models are made of the same block layers (the suite's budget: this halves the sweep)."""
    import kapps

    if os.environ.get("KAPPS_FULL_SWEEPS") == "1" or name in smallest_of_each_family(kapps.list_models()):
        return ["functional", "sequential"]
    return ["functional"]


def parity_models(backend: str, part: int) -> list[str]:
    """The parity models a part compares with keras.applications on ``backend`` (not those it refuses)."""
    return [n for n in swept_models(backend, part) if n in PARITY and n not in REFUSED.get(backend, ())]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """The photo at every size, one array per size (``s<size>``)."""
    path = tmp_path_factory.mktemp("backends") / "photos.npz"
    np.savez(path, **{f"s{s}": photo(s) for s in SIZES})
    return path


def reference_files(tmp: Path, backend: str) -> list[list]:
    """TensorFlow-made keras.applications weight files and outputs for the models refused on ``backend``."""
    files = []
    for name in sorted(REFUSED.get(backend, ())):
        size = REFUSED_SIZE
        ref = keras.applications.NASNetMobile(weights=None, input_shape=(size, size, 3))
        randomize_batch_norm(ref)
        weights, expected = tmp / f"{name}.weights.h5", tmp / f"{name}_expected.npy"
        ref.save_weights(weights)
        np.save(expected, np.asarray(ref(family_preprocess(name, photo(size)), training=False)))
        files.append([name, size, str(weights), str(expected)])
        keras.backend.clear_session()
    return files


def run_worker(backend: str, job: dict, tmp: Path) -> dict:
    """``tests/backend_worker.py`` on ``job`` with ``KERAS_BACKEND=backend``; its report."""
    job_path, out = tmp / "job.json", tmp / "report.json"
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")])}
    if backend == "jax":
        env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {JAX_FLAGS}".strip()
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "backend_worker.py"), str(job_path), str(out)],
                          env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == backend
    return result


@pytest.fixture(scope="module", params=BACKENDS)
def report(request, photos, tmp_path_factory) -> dict:
    """The weight-file, round-trip and optimize checks on one backend."""
    backend, tmp = request.param, tmp_path_factory.mktemp(f"report_{request.param}")
    job = {
        "tmp": str(tmp), "photos": str(photos),
        "file_parity": reference_files(tmp, backend),
        "official_weights": [str(shared_dir() / "weights" / "mobilenet_2_5_224_tf_no_top.h5"), 96],
        "user_weights": 64,
        "roundtrip": [list(r) for r in ROUNDTRIP],
        "optimize": [["mobilenet_v2", 64]],
    }
    return run_worker(backend, job, tmp)


@pytest.fixture(scope="module", params=SWEEPS, ids=lambda sweep: f"{sweep[0]}-part{sweep[1]}")
def sweep_report(request, photos, tmp_path_factory) -> dict:
    """Build and predict (both builders for the smallest of each family) for one part of the registered models on one backend, and
    the parity models of its families against keras.applications."""
    (backend, part), tmp = request.param, tmp_path_factory.mktemp(f"sweep_{request.param[0]}")
    compared = parity_models(backend, part)
    job = {"tmp": str(tmp), "photos": str(photos),
           "parity": [[n, sweep_size(n)] for n in compared],
           "sweep": [[n, sweep_size(n), swept_builders(n)] for n in swept_models(backend, part) if n not in compared]}
    return {**run_worker(backend, job, tmp), "part": part}


def result(report: dict, key: str):
    assert key not in report["errors"], f"{report['backend']} {key}:\n{report['errors'][key]}"
    return report["results"][key]


def test_parity_with_keras_applications(sweep_report):
    """The parity models of this part's families, both builders, against keras.applications."""
    for name in parity_models(sweep_report["backend"], sweep_report["part"]):
        diffs = result(sweep_report, f"parity/{name}")
        assert set(diffs) == {"functional", "sequential"}
        assert max(diffs.values()) <= TOLERANCE, (name, diffs)


def test_models_keras_applications_refuses_load_its_files_like_tensorflow_computes(report):
    """NASNetMobile on torch: kapps loads keras.applications' weight file and computes its TensorFlow outputs."""
    for name in REFUSED.get(report["backend"], ()):
        diffs = result(report, f"file_parity/{name}")
        assert set(diffs) == {"functional", "sequential"}
        assert max(diffs.values()) <= TOLERANCE, (name, diffs)


def test_every_registered_model_builds_and_predicts(sweep_report):
    from kapps.registry import get_spec

    swept = [n for n in swept_models(sweep_report["backend"], sweep_report["part"])
             if n not in parity_models(sweep_report["backend"], sweep_report["part"])]
    assert len(swept) >= 10
    failures = {k: v.strip().splitlines()[-1] for k, v in sweep_report["errors"].items() if k.startswith("sweep/")}
    assert not failures, failures
    for name in swept:
        classes = 10 if get_spec(name).input_channels == 1 else 1000
        outputs = result(sweep_report, f"sweep/{name}")
        assert sorted(outputs) == sorted(swept_builders(name)), (name, outputs)
        for builder, out in outputs.items():
            assert out == {"shape": [1, classes], "finite": True}, (name, builder, out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_sweep_and_parity_cover_every_registered_model(backend):
    import kapps

    swept = [n for part in range(SWEEP_PARTS[backend]) for n in swept_models(backend, part)]
    assert len(swept) == len(set(swept))
    assert sorted(swept) == kapps.list_models()
    compared = [n for part in range(SWEEP_PARTS[backend]) for n in parity_models(backend, part)]
    assert sorted(compared + sorted(REFUSED.get(backend, ()))) == sorted(PARITY)


def test_official_weight_file_loads_like_keras_applications(report):
    out = result(report, "official_weights")
    assert out["mean_abs"] > 0.1  # real ImageNet features, not zeros
    assert max(out["functional"], out["sequential"]) <= TOLERANCE, out


def test_user_weights_file_loads_like_keras_applications(report):
    out = result(report, "user_weights")
    assert max(out.values()) <= TOLERANCE, out


@pytest.mark.parametrize("name,size,builder", ROUNDTRIP)
def test_keras_file_round_trip(report, name, size, builder):
    out = result(report, f"roundtrip/{name}/{builder}")
    assert out["class"] == {"functional": "Functional", "sequential": "BlockSequential"}[builder]
    assert out["diff"] <= TOLERANCE, out


def test_optimize_for_inference_computes_the_same(report):
    out = result(report, "optimize/mobilenet_v2")
    assert max(o["diff"] for o in out.values()) <= TOLERANCE, out
    assert max(o["reload_diff"] for o in out.values()) <= 1e-6, out  # the folded model saves and reloads
    before, after = out["functional"]["layers"]
    assert after < before, out  # BatchNorm layers folded away
    assert {o["batch_norm_left"] for o in out.values()} == {0}, out
