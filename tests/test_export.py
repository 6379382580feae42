"""kapps.export / `kapps export`: SavedModel, TFLite float32 and full-integer int8.

The TFLite interpreter runs on real photos: float32 outputs must equal Keras' within
1e-4; the int8 file's top-1 agreement with the float model is measured on a real
classifier (the real ImageNet MobileNetV2 features of ../shared/weights plus a linear
ants/bees probe fitted on ../shared/data/hymenoptera/train), on validation photos that
calibration never saw (calibration uses the default: scikit-image's sample photos).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kapps
from kapps.cli import export as cli_export
from kapps.tools.export import _interpreter, export, representative_batch, run_tflite
from kapps.images import load_image
from conftest import photo
from parity import randomize_batch_norm

TOLERANCE = 1e-4
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def _photos(size: int) -> np.ndarray:
    return np.concatenate([photo(size, which) for which in PHOTOS])


def _size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs) / 2**20


@pytest.fixture(scope="module")
def small_model():
    model = kapps.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None)
    randomize_batch_norm(model)
    return model


def test_tflite_float32_and_savedmodel_match_keras(small_model, tmp_path):
    import tensorflow as tf

    x = kapps.mobilenet_v2.preprocess_input(_photos(96))
    expected = np.asarray(small_model(x, training=False))
    flat = export(small_model, "tflite", tmp_path / "small.tflite")
    got = run_tflite(flat, x)
    print(f"\nfloat32 TFLite: max |diff| {np.max(np.abs(got - expected)):.2e}, {_size_mb(flat):.2f} MiB")
    np.testing.assert_allclose(got, expected, atol=TOLERANCE)

    saved = export(small_model, "savedmodel", tmp_path / "small_saved")
    reloaded = tf.saved_model.load(saved)
    np.testing.assert_allclose(reloaded.serve(x).numpy(), expected, atol=TOLERANCE)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".kapps")], "temporary files left behind"


def _probe_model(shared: Path) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """Real MobileNetV2 features + a logistic-regression ants/bees head; val photos and labels."""
    from sklearn.linear_model import LogisticRegression

    base = kapps.MobileNetV2(weights=str(shared / "weights" / "mobilenet_v2_1.0_224_no_top.converted.h5"),
                             include_top=False, pooling="avg", input_shape=(224, 224, 3))
    data = shared / "data" / "hymenoptera"

    def images(split: str, per_class: int):
        files, labels = [], []
        for label, cls in enumerate(("ants", "bees")):
            chosen = sorted(p for p in (data / split / cls).iterdir() if p.suffix.lower() == ".jpg")[:per_class]
            files += chosen
            labels += [label] * len(chosen)
        batch = np.stack([load_image(f, 224) for f in files])
        return kapps.mobilenet_v2.preprocess_input(batch), np.array(labels)

    x_train, y_train = images("train", 24)
    probe = LogisticRegression(max_iter=2000).fit(np.asarray(base.predict(x_train, verbose=0)), y_train)
    head = keras.layers.Dense(2, name="probe")
    model = keras.Model(base.input, head(base.output))
    head.set_weights([probe.coef_.T.astype("float32").repeat(2, axis=1) * np.array([-0.5, 0.5], "float32"),
                      np.array([-0.5, 0.5], "float32") * probe.intercept_.astype("float32")])
    x_val, y_val = images("val", 16)
    return model, x_val, y_val


def test_real_mobilenet_v2_float_and_int8(shared, tmp_path):
    model, x_val, y_val = _probe_model(shared)
    features = keras.Model(model.input, model.get_layer("probe").input)
    keras_logits = np.asarray(model.predict_on_batch(x_val))
    keras_features = np.asarray(features.predict_on_batch(x_val))

    flat = export(features, "tflite", tmp_path / "mnv2.tflite")
    float_features = run_tflite(flat, x_val)
    float_diff = float(np.max(np.abs(float_features - keras_features)))
    assert float_diff <= TOLERANCE, float_diff

    float_file = export(model, "tflite", tmp_path / "mnv2_probe.tflite")
    int8_file = export(model, "tflite-int8", tmp_path / "mnv2_probe_int8.tflite", preprocessing="mobilenet_v2")
    float_logits = run_tflite(float_file, x_val)
    int8_logits = run_tflite(int8_file, x_val)
    agreement = float(np.mean(int8_logits.argmax(1) == float_logits.argmax(1)))
    keras_acc = float(np.mean(keras_logits.argmax(1) == y_val))
    int8_acc = float(np.mean(int8_logits.argmax(1) == y_val))
    print(f"\nMobileNetV2 (real ImageNet features) + ants/bees probe, {len(y_val)} val photos:"
          f"\n  float32 TFLite features max |diff| vs Keras {float_diff:.2e}"
          f"\n  int8 top-1 agreement with float32: {agreement:.3f} ({int(agreement * len(y_val))}/{len(y_val)})"
          f"\n  accuracy: Keras {keras_acc:.3f}, int8 {int8_acc:.3f}"
          f"\n  sizes: float32 {_size_mb(float_file):.2f} MiB, int8 {_size_mb(int8_file):.2f} MiB")
    assert agreement >= 0.9, agreement
    assert _size_mb(int8_file) < 0.4 * _size_mb(float_file)

    details = _interpreter(int8_file).get_input_details()[0]
    assert details["dtype"] == np.int8  # full integer, int8 input


def test_cli_export_keras_file_with_user_images(small_model, tmp_path, shared, capsys):
    import argparse

    keras_file = tmp_path / "small.keras"
    small_model.save(keras_file)
    parser = argparse.ArgumentParser(prog="kapps")
    cli_export.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "small_int8.tflite"
    ants = shared / "data" / "hymenoptera" / "train" / "ants"
    args = parser.parse_args(["export", str(keras_file), "--format", "tflite-int8", "--out", str(out),
                              "--images", str(ants), "--preprocessing", "tf", "--calibration-samples", "8"])
    assert args.func(args) == 0
    assert str(out) in capsys.readouterr().out
    x = kapps.mobilenet_v2.preprocess_input(_photos(96))
    got = run_tflite(out, x)
    assert got.shape == (len(PHOTOS), 1000)

    with pytest.raises(SystemExit):
        parser.parse_args(["export", "mobilenet_v2", "--format", "coreml", "--out", "x"])


def test_errors_name_the_argument(small_model, tmp_path):
    with pytest.raises(ValueError, match="`format` must be one of"):
        export(small_model, "tflite8", tmp_path / "x.tflite")
    with pytest.raises(ValueError, match="`preprocessing` must be given"):
        export(small_model, "tflite-int8", tmp_path / "x.tflite")
    with pytest.raises(ValueError, match="registered model"):
        export("mobilenet_v9", "tflite", tmp_path / "x.tflite")
    with pytest.raises(ValueError, match="`representative_images` must be image files or folders"):
        export(small_model, "tflite-int8", tmp_path / "x.tflite", preprocessing="tf",
               representative_images=[tmp_path / "missing.jpg"])
    no_size = kapps.MobileNetV2(weights=None, alpha=0.35, include_top=False)
    with pytest.raises(ValueError, match="`input_size` must be given"):
        export(no_size, "tflite", tmp_path / "x.tflite")
    assert not os.path.exists(tmp_path / "x.tflite")


def test_default_calibration_images_are_sample_photos():
    batch = representative_batch(None, (48, 48))
    assert batch.shape == (42, 48, 48, 3)
    assert 0 <= batch.min() and batch.max() <= 255 and batch.std() > 20


def test_other_backend_stops_at_once(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "m.tflite"
    code = ("import sys, kapps\n"
            "try:\n    kapps.export('mobilenet_v2', 'tflite', sys.argv[1], weights=None)\n"
            "except kapps.KappsError as e:\n    print(type(e).__name__, e)\n")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BackendError kapps.export needs the TensorFlow backend of Keras" in done.stdout
    assert "the active backend is 'jax'. Set KERAS_BACKEND=tensorflow" in done.stdout
    assert not out.exists()
