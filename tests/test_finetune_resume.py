"""Crash-safe checkpoints: kill -9 during phase 2, rerun, same result as an uninterrupted run;
finished runs reload; other arguments are refused; a NaN loss stops the run with a clear message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import kapps
from kapps.finetune import CheckpointMismatchError, TrainingDivergedError
from test_finetune_support import make_image_folder, python_env, read_json, run_python, script, tiny_base

RUN = """
    import json, sys, time
    import numpy as np, tensorflow as tf, keras
    import kapps
    from test_finetune_support import tiny_base

    class Pause(keras.layers.Layer):
        '''An identity that takes 10 ms per image, so that an epoch lasts long enough to be killed in.'''

        def call(self, x):
            def wait(x):
                time.sleep(0.01)
                return x
            y = tf.py_function(wait, [x], tf.float32)
            y.set_shape(x.shape)
            return y

    data, checkpoints, out = sys.argv[1:4]
    result = kapps.fine_tune(
        lambda: tiny_base(48), data, preprocessing="tf", image_size=48, batch_size=8, epochs=2, fine_tune_epochs=4,
        unfreeze=0.5, augmentation=[keras.layers.RandomFlip(), keras.layers.RandomRotation(0.1), Pause()],
        patience=None, learning_rate=3e-3, seed=5, deterministic=True,
        checkpoint_dir=None if checkpoints == "-" else checkpoints, verbose=2)
    np.savez(out, *[v.numpy() for v in result.model.variables])
    json.dump({"resumed_from": result.resumed_from, "history": result.history}, open(out + ".json", "w"))
"""


def _state(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_kill_9_in_phase_2_then_rerun_equals_an_uninterrupted_run(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=100, size=48)
    path = script(tmp_path, "run.py", RUN)
    checkpoints = tmp_path / "checkpoints"
    command = [sys.executable, str(path), str(data)]
    uninterrupted = subprocess.Popen(command + ["-", str(tmp_path / "uninterrupted.npz")], env=python_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(command + [str(checkpoints), str(tmp_path / "killed.npz")], env=python_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 480
        while True:  # kill as soon as phase 2 has a completed epoch: the process is then inside the next one
            state = _state(checkpoints / "state.json")
            if state and state["phase"] == 2 and state["epoch"] >= 1:
                break
            assert victim.poll() is None, victim.stderr.read()[-4000:]
            assert time.monotonic() < deadline, "phase 2 never started"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=60)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    state = read_json(checkpoints / "state.json")  # what the killed run left
    assert state["phase"] == 2 and 1 <= state["epoch"] < 4 and not state["done"]
    assert not (tmp_path / "killed.npz").exists()

    run_python(path, str(data), str(checkpoints), str(tmp_path / "resumed.npz"), timeout=480)
    resumed = read_json(tmp_path / "resumed.npz.json")
    assert resumed["resumed_from"] == [2, state["epoch"]]
    assert resumed["history"]["phase"] == [1, 1, 2, 2, 2, 2]
    assert uninterrupted.wait(timeout=480) == 0, uninterrupted.stderr.read()[-4000:]
    reference = read_json(tmp_path / "uninterrupted.npz.json")
    np.testing.assert_allclose(resumed["history"]["loss"], reference["history"]["loss"], rtol=1e-6)
    np.testing.assert_allclose(resumed["history"]["val_loss"], reference["history"]["val_loss"], rtol=1e-6)
    a, b = np.load(tmp_path / "uninterrupted.npz"), np.load(tmp_path / "resumed.npz")
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6)
    final = read_json(checkpoints / "state.json")
    assert final["done"] and sorted(p.name for p in checkpoints.glob("*.npz")) == ["ckpt-final.npz"]


def _tiny_run(data, checkpoints, **kwargs):
    options = dict(preprocessing="tf", image_size=32, batch_size=4, epochs=1, fine_tune_epochs=1, seed=1,
                   checkpoint_dir=checkpoints, verbose=0)
    options.update(kwargs)
    return kapps.fine_tune(tiny_base(32), data, **options)


def test_a_finished_run_is_reloaded_and_other_arguments_are_refused(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=8, size=32)
    first = _tiny_run(data, tmp_path / "checkpoints")
    assert first.resumed_from is None and first.phase_epochs == (1, 1)
    again = _tiny_run(data, tmp_path / "checkpoints")
    assert again.resumed_from == (2, 1)
    assert again.history == first.history
    for a, b in zip(first.model.variables, again.model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(CheckpointMismatchError, match=r"holds a run made with other arguments \(.*; "
                                                      r"learning_rate: saved 0.001, now 0.002\)"):
        _tiny_run(data, tmp_path / "checkpoints", learning_rate=0.002)
    make_image_folder(data, classes=("red",), per_class=9, size=32, seed=1)  # one more image: other data
    with pytest.raises(CheckpointMismatchError, match=r"train_data: saved"):
        _tiny_run(data, tmp_path / "checkpoints")


def test_nan_loss_stops_the_run_with_a_clear_message(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3)).astype("float32")
    images[5, 3, 3, 0] = np.nan  # one bad pixel in the second batch
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 2))
    with pytest.raises(TrainingDivergedError, match=r"the training loss became nan in phase 1, epoch 1, batch \d\. "
                                                    r"Lower the learning rate .* Kept: no checkpoint yet"):
        kapps.fine_tune(tiny_base(32), dataset, preprocessing="tf", batch_size=4, epochs=2, fine_tune_epochs=1,
                        validation_split=0.25, seed=0, checkpoint_dir=tmp_path / "checkpoints", verbose=0)
    assert not (tmp_path / "checkpoints" / "state.json").exists()  # NaN weights are never checkpointed
