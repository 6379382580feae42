"""fine_tune on tf.distribute: MirroredStrategy over two logical CPUs equals one device, for a
classifier and for a segmentation model; MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1 ends with identical weights.

Both need fresh processes (logical devices and collective ops are set up before TensorFlow
starts), so they run in subprocesses. The base is the small CNN of test_finetune_support
(the point here is distribution, not accuracy); augmentation is on (it runs in the input
pipeline, seeded per image, so every strategy sees the same pixels).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from test_finetune_support import free_port, make_image_folder, python_env, read_json, run_python, script

MIRRORED = """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    import kapps
    from test_finetune_support import tiny_base

    data, out = sys.argv[1], sys.argv[2]
    summary = {}
    for label, strategy, per_replica in (
        ("one", tf.distribute.OneDeviceStrategy("/cpu:0"), 8),
        ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 4),
    ):
        result = kapps.fine_tune(
            lambda: tiny_base(32), data, preprocessing="tf", image_size=32, batch_size=per_replica, epochs=2,
            fine_tune_epochs=2, unfreeze="all", dropout=0.0, augmentation=True, learning_rate=1e-2,
            patience=None, seed=7, strategy=strategy, deterministic=True, verbose=0)
        np.savez(f"{out}/{label}.npz", *[v.numpy() for v in result.model.variables])
        summary[label] = {"strategy": result.strategy, "global_batch": result.global_batch_size,
                          "loss": result.history["loss"], "val_accuracy": result.history["val_accuracy"],
                          "names": [v.path for v in result.model.variables]}
    json.dump(summary, open(f"{out}/summary.json", "w"))
"""


def test_mirrored_two_logical_cpus_equals_one_device(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=20, size=32)
    run_python(script(tmp_path, "mirrored.py", MIRRORED), str(data), str(tmp_path), timeout=600)
    summary = read_json(tmp_path / "summary.json")
    assert summary["one"]["strategy"] == "OneDeviceStrategy, 1 replica(s)"
    assert summary["mirrored"]["strategy"] == "MirroredStrategy, 2 replica(s)"
    assert summary["one"]["global_batch"] == summary["mirrored"]["global_batch"] == 8
    assert summary["one"]["names"] == summary["mirrored"]["names"]
    one, mirrored = np.load(tmp_path / "one.npz"), np.load(tmp_path / "mirrored.npz")
    diffs = {name: float(np.max(np.abs(one[k] - mirrored[k]))) for k, name in zip(one.files, summary["one"]["names"])}
    assert max(diffs.values()) <= 1e-5, sorted(diffs.items(), key=lambda kv: -kv[1])[:5]
    np.testing.assert_allclose(summary["one"]["loss"], summary["mirrored"]["loss"], rtol=1e-5)
    assert summary["one"]["loss"][-1] < summary["one"]["loss"][0]  # it did train


MIRRORED_SEGMENTATION = """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    import kapps
    from test_finetune_segmentation import tiny_segmenter

    data, out = sys.argv[1], sys.argv[2]
    summary = {}
    for label, strategy, per_replica in (
        ("one", tf.distribute.OneDeviceStrategy("/cpu:0"), 4),
        ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 2),
    ):
        keras.utils.set_random_seed(1)  # the same initial weights for both strategies
        result = kapps.fine_tune(lambda: tiny_segmenter(32), data, preprocessing="tf", image_size=32, batch_size=per_replica,
                                 epochs=2, fine_tune_epochs=1, unfreeze="all", augmentation=True, seed=7,
                                 strategy=strategy, deterministic=True, verbose=0)
        np.savez(f"{out}/{label}.npz", *[v.numpy() for v in result.model.variables])
        summary[label] = {"strategy": result.strategy, "global_batch": result.global_batch_size,
                          "loss": result.history["loss"], "mean_iou": result.report.mean_iou,
                          "names": [v.path for v in result.model.variables]}
    json.dump(summary, open(f"{out}/summary.json", "w"))
"""


def test_segmentation_on_mirrored_two_logical_cpus_equals_one_device(tmp_path):
    """fine_tune of a segmentation model (images and masks, augmentation moving both) on MirroredStrategy
    equals OneDeviceStrategy at the same global batch. (The decoder of this model has no BatchNorm:
    Keras' BatchNormalization normalises each replica's batch on its own, so a trained BatchNorm
    would differ by design.)"""
    from test_finetune_segmentation import _pairs

    data = _pairs(tmp_path / "data", count=16, size=(32, 32))
    run_python(script(tmp_path, "mirrored_segmentation.py", MIRRORED_SEGMENTATION), str(data), str(tmp_path),
               timeout=600)
    summary = read_json(tmp_path / "summary.json")
    assert summary["mirrored"]["strategy"] == "MirroredStrategy, 2 replica(s)"
    assert summary["one"]["global_batch"] == summary["mirrored"]["global_batch"] == 4
    one, mirrored = np.load(tmp_path / "one.npz"), np.load(tmp_path / "mirrored.npz")
    diffs = {name: float(np.max(np.abs(one[k] - mirrored[k]))) for k, name in zip(one.files, summary["one"]["names"])}
    assert max(diffs.values()) <= 1e-5, sorted(diffs.items(), key=lambda kv: -kv[1])[:5]
    np.testing.assert_allclose(summary["one"]["loss"], summary["mirrored"]["loss"], rtol=1e-5)
    assert abs(summary["one"]["mean_iou"] - summary["mirrored"]["mean_iou"]) <= 1e-6


WORKER = """
    import json, os, sys
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # from TF_CONFIG, before anything else
    import numpy as np
    import kapps
    from test_finetune_support import tiny_base

    data, out, checkpoints = sys.argv[1], sys.argv[2], sys.argv[3]
    result = kapps.fine_tune(
        lambda: tiny_base(32), data, preprocessing="tf", image_size=32, batch_size=4, epochs=2, fine_tune_epochs=1,
        augmentation=True, learning_rate=1e-2, seed=3, strategy=strategy, checkpoint_dir=checkpoints, verbose=2)
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(f"{out}/worker{task}.npz", *[v.numpy() for v in result.model.variables])
    json.dump({"strategy": result.strategy, "global_batch": result.global_batch_size, "chief": result.chief,
               "loss": result.history["loss"], "accuracy": result.report.accuracy},
              open(f"{out}/worker{task}.json", "w"))
"""


def test_multi_worker_mirrored_two_processes_end_with_identical_weights(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=20, size=32)
    path = script(tmp_path, "worker.py", WORKER)
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    workers = [
        subprocess.Popen(
            [sys.executable, str(path), str(data), str(tmp_path), str(tmp_path / "checkpoints")],
            env=python_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=600)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-6000:]
    first, second = read_json(tmp_path / "worker0.json"), read_json(tmp_path / "worker1.json")
    assert first["strategy"] == second["strategy"] == "MultiWorkerMirroredStrategy, 2 replica(s)"
    assert first["global_batch"] == 8 and (first["chief"], second["chief"]) == (True, False)
    assert first["loss"] == second["loss"]
    a, b = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert len(a.files) == len(b.files) > 10
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    state = read_json(tmp_path / "checkpoints" / "state.json")  # written by the chief only
    assert state["done"] and state["phase_epochs"] == [2, 1]
