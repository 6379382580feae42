"""README stays true: the model table is the registry's, the two commands are there."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO
from kapps.tools import docs


def test_model_table_is_generated_from_the_registry():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert docs.render(readme) == readme, "README model table is stale: run `python -m kapps.tools.docs`"


def test_readme_opens_with_the_two_fresh_machine_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [line.strip() for line in readme.split("```")[1].strip().splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


def test_demo_on_a_fresh_clone(tmp_path, shared):
    """`make demo` in a fresh clone: offline, it explains the missing file (exit 3, no traceback);
    with the file in KAPPS_WEIGHTS_DIR it prints the top-5 of each sample photo."""
    import keras

    import kapps
    from parity import randomize_batch_norm

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    venv = sys.prefix  # the environment running the tests (a venv's prefix, never the base interpreter's)
    assert os.path.isfile(os.path.join(venv, "bin", "kapps")), f"kapps is not installed in {venv}"
    env = {**os.environ, "PYTHONPATH": str(clone), "KAPPS_WEIGHTS_MIRROR": "http://127.0.0.1:9/"}
    offline = subprocess.run(["make", "-s", "demo", f"VENV={venv}"], cwd=clone, env=env, capture_output=True,
                             text=True, timeout=600)
    assert "Error 3" in offline.stderr and "Traceback" not in offline.stderr
    assert "missing file: mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in offline.stderr

    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    reference = keras.applications.MobileNetV2(weights=None)
    randomize_batch_norm(reference)
    kapps.weights.write_legacy_h5(reference, weights_dir / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5")
    online = subprocess.run(["make", "-s", "demo", f"VENV={venv}"], cwd=clone, capture_output=True, text=True,
                            env={**env, "KAPPS_WEIGHTS_DIR": str(weights_dir)}, timeout=600)
    assert online.returncode == 0, online.stderr
    assert online.stdout.count("  5. ") == 3 and "skimage.data.chelsea" in online.stdout
