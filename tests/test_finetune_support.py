"""Helpers shared by the fine_tune tests (small real image files, a tiny base, subprocesses),
and the tests of strategy and precision selection.

Image files are real encoded JPEG/PNG files written with tf.io; the tiny base is a
small CNN with BatchNorm, so the tests that are about mechanics (distribution, resume,
bad data) run in seconds on a 2-core CPU. Real transfer learning with real weights is
in test_finetune_real.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kapps.finetune import resolve_precision, resolve_strategy
from kapps.finetune.strategy import choose_kind, input_shard, is_chief

TESTS = Path(__file__).resolve().parent


def write_image(path: str | os.PathLike, pixels: np.ndarray) -> str:
    """Encode ``pixels`` (uint8, HxWxC) as JPEG or PNG, by the file's suffix."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.asarray(pixels, "uint8")
    if path.lower().endswith((".jpg", ".jpeg")):
        data = tf.io.encode_jpeg(pixels, quality=95)
    else:
        data = tf.io.encode_png(pixels)
    tf.io.write_file(path, data)
    return path


def colour_image(label: int, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Noise with a class-dependent tint: class 0 reddish, class 1 bluish, class 2 greenish."""
    pixels = rng.integers(0, 110, (height, width, 3))
    pixels[..., (0, 2, 1)[label % 3]] += 120
    return pixels.astype("uint8")


def make_image_folder(root: str | os.PathLike, classes=("red", "blue"), per_class: int = 24, size: int = 40,
                      seed: int = 0, vary_sizes: bool = True, suffix: str = ".png") -> Path:
    """``root/<class>/NNN.png``: ``per_class`` real PNG files per class, of a few different sizes."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for label, name in enumerate(classes):
        for i in range(per_class):
            width = size + (8 * (i % 3) if vary_sizes else 0)
            write_image(root / name / f"{i:03d}{suffix}", colour_image(label, rng, size, width))
    return root


def tiny_base(size: int = 32) -> keras.Model:
    """A small CNN with BatchNorm (a stand-in base: fast to trace and train)."""
    return keras.Sequential([
        keras.Input((size, size, 3)),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.ReLU(name="relu1"),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv2"),
        keras.layers.BatchNormalization(name="bn2"),
        keras.layers.ReLU(name="relu2"),
        keras.layers.Conv2D(16, 3, padding="same", name="conv3"),
        keras.layers.BatchNormalization(name="bn3"),
        keras.layers.ReLU(name="relu3"),
    ], name="tiny_base")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""})
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def script(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code))
    return path


def run_python(path: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout,
                          env=python_env(**env))
    if done.returncode != 0:
        raise AssertionError(f"{path.name} {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}")
    return done


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# -- strategy and precision selection --------------------------------------------------------------


@pytest.mark.parametrize("tpu, gpus, kind", [
    (True, 0, "tpu"), (True, 4, "tpu"), (False, 8, "mirrored"), (False, 2, "mirrored"),
    (False, 1, "one_device"), (False, 0, "default"),
])
def test_auto_strategy_choice(tpu, gpus, kind):
    assert choose_kind(tpu=tpu, gpus=gpus) == kind


def test_auto_strategy_on_this_cpu_is_the_default_strategy():
    strategy = resolve_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert is_chief(strategy)
    assert resolve_precision("auto", strategy) == "float32"  # float32 on CPU


def test_strategy_passed_in_is_used_and_names_are_checked():
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert resolve_strategy(one) is one
    assert resolve_precision("auto", one) == "float32"
    assert resolve_precision("mixed_bfloat16", one) == "mixed_bfloat16"
    assert resolve_precision(None, one) == "float32"
    with pytest.raises(ValueError, match="`strategy` must be a tf.distribute.Strategy or one of"):
        resolve_strategy("gpu-please")
    with pytest.raises(ValueError, match="`mixed_precision` must be one of"):
        resolve_precision("half", one)


def test_multi_worker_name_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        resolve_strategy("multi_worker")


def test_input_shard_splits_the_global_batch_by_pipeline():
    # 2 workers x 2 local replicas, global batch 16: worker 1 feeds rows 8..16 as two per-replica batches of 4.
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4)
    assert input_shard(context, 16) == ((8, 16), 4)


def test_mixed_precision_keeps_the_classifier_in_float32_and_restores_the_global_policy(tmp_path):
    import kapps

    data = make_image_folder(tmp_path / "data", per_class=6, size=32)
    before = keras.config.dtype_policy().name
    result = kapps.fine_tune(lambda: tiny_base(32), data, preprocessing="tf", image_size=32, batch_size=4,
                             epochs=1, fine_tune_epochs=1, mixed_precision="mixed_bfloat16", seed=0, verbose=0)
    assert result.precision == "mixed_bfloat16"
    assert result.model.get_layer("predictions").dtype_policy.name == "float32"
    assert result.model.get_layer("tiny_base").get_layer("conv1").compute_dtype == "bfloat16"
    assert result.model.output.dtype == "float32"
    assert keras.config.dtype_policy().name == before
    assert np.isfinite(result.history["loss"]).all()
