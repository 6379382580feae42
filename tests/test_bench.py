"""kapps.tools.bench: the worker's entry point, model choice and the tables (no timing run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kapps

from kapps.tools import bench

ROOT = Path(__file__).resolve().parents[1]


def test_worker_is_a_module_entry_point():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "kapps.tools.bench.worker"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 2
    assert "usage: python -m kapps.tools.bench.worker JOB_JSON RESULT_PATH" in done.stderr


def test_models_that_keras_lacks_are_refused():
    assert bench.choose_models(["mobilenet_v2"], False) == ["mobilenet_v2"]
    no_twin = [n for n in kapps.list_models() if n not in bench.keras_models()]
    assert no_twin, "expected models without a keras.applications twin (the classics)"
    with pytest.raises(ValueError, match="`models` must name models that keras.applications also has"):
        bench.choose_models(no_twin[:1], False)


def test_tables_from_saved_results():
    results = json.loads((ROOT / "benchmarks" / "bench_results.json").read_text())
    text = bench.format_table(results)
    for name in results["models"]:
        assert name in text
    assert "optimize_for_inference on the kapps Functional model" in text
    assert f"{results['machine']['cpu_count']} CPUs" in text
