"""The ``kapps`` command line, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

KAPPS = [sys.executable, "-m", "kapps"]


def run(*args, env=None, check_code=None):
    result = subprocess.run([*KAPPS, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    if check_code is not None:
        assert result.returncode == check_code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["predict"], ["weights"], ["weights", "fetch"]])
def test_help_for_every_command(command):
    result = run(*command, "--help", check_code=0)
    assert "usage: kapps" in result.stdout


def test_list_and_info():
    out = run("list", "mobilenet*", check_code=0).stdout
    assert "mobilenet_v2" in out and "MobileNetV2" in out and "3,538,984" in out
    info = json.loads(run("info", "MobileNetV2", "--json", check_code=0).stdout)
    assert info["name"] == "mobilenet_v2" and info["params"] == 3538984 and info["top1"] == 71.3
    assert any(f["file"] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" for f in info["weight_files"])


def test_user_errors_exit_2_without_traceback():
    result = run("info", "no_such_model", check_code=2)
    assert "`name` must be a registered model" in result.stderr
    result = run("predict", "/nonexistent.jpg", check_code=2)
    assert "/nonexistent.jpg" in result.stderr
    assert run("frobnicate").returncode == 2


def test_predict_offline_explains_missing_weights(tmp_path):
    result = run("predict", env={"KAPPS_WEIGHTS_DIR": str(tmp_path / "offline"),
                                 "KAPPS_WEIGHTS_MIRROR": "http://127.0.0.1:9/"}, check_code=3)
    err = result.stderr
    for fragment in ("missing file: mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                     "tried to download: http://127.0.0.1:9/mobilenet_v2/", "looked in:",
                     str(tmp_path / "offline"), "KAPPS_WEIGHTS_DIR", "kapps weights fetch"):
        assert fragment in err, (fragment, err)


def test_predict_with_weights_file_prints_top_k(tmp_path):
    import keras
    import numpy as np

    import kapps
    from parity import randomize_batch_norm

    reference = keras.applications.MobileNetV2(alpha=0.35, input_shape=(224, 224, 3), weights=None)
    randomize_batch_norm(reference)
    path = tmp_path / "top.h5"
    kapps.weights.write_legacy_h5(reference, path)
    image = tmp_path / "cat.png"
    import skimage.data
    import tensorflow as tf

    tf.io.write_file(str(image), tf.io.encode_png(skimage.data.chelsea()))
    # The CLI builds the default MobileNetV2 (alpha 1.0); a 0.35 file must be refused by name.
    result = run("predict", str(image), "--weights", str(path), check_code=2)
    assert "shape mismatch" in result.stderr
    # With --model and a matching file, it prints the top-3.
    reference_full = keras.applications.MobileNetV2(weights=None)
    randomize_batch_norm(reference_full)
    kapps.weights.write_legacy_h5(reference_full, path)
    result = run("predict", str(image), "--weights", str(path), "--top", "3", "--json", check_code=0)
    rows = json.loads(result.stdout)
    assert rows[0]["image"] == str(image) and len(rows[0]["top"]) == 3
    x = kapps.mobilenet_v2.preprocess_input(kapps.images.load_image(image, 224)[None])
    expected = kapps.decode_predictions(reference_full.predict(x, verbose=0), top=3)[0]
    assert [r["label"] for r in rows[0]["top"]] == [name for _, name, _ in expected]


def test_weights_commands(shared, tmp_path):
    env = {"KAPPS_WEIGHTS_DIR": str(shared / "weights")}
    out = run("weights", "path", "mobilenet", "--no-top", "--variant", "alpha=0.25", env=env, check_code=0).stdout
    assert out.strip() == str(shared / "weights" / "mobilenet_2_5_224_tf_no_top.h5")
    out = run("weights", "verify", "mobilenet_2_5_224_tf_no_top.h5", env=env, check_code=0).stdout
    assert out.startswith("OK") and "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf" in out
    bad = tmp_path / "mobilenet_2_5_224_tf_no_top.h5"
    bad.write_bytes((shared / "weights" / "mobilenet_2_5_224_tf_no_top.h5").read_bytes()[:-10])
    result = run("weights", "verify", str(bad), check_code=3)
    assert "size check failed" in result.stderr and "2108140" in result.stderr
    listing = run("weights", "list", "mobilenet_v2", env=env, check_code=0).stdout
    assert len(listing.strip().splitlines()) == 44
