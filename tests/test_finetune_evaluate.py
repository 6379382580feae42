"""kapps.evaluate's numbers against scikit-learn's on the same predictions; plots are valid PNG files."""

from __future__ import annotations

import json

import keras
import matplotlib.image
import numpy as np
import pytest
import sklearn.metrics as skm
import tensorflow as tf

import kapps
from kapps.finetune import plots
from kapps.finetune.evaluate import EvaluationReport
from test_finetune_support import make_image_folder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path) -> np.ndarray:
    """The file starts with the PNG signature and decodes (twice: TensorFlow and matplotlib)."""
    data = open(path, "rb").read()
    assert data[:8] == PNG_SIGNATURE, path
    image = tf.io.decode_png(data).numpy()
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50 and image.std() > 0
    assert matplotlib.image.imread(path).shape[:2] == image.shape[:2]
    return image


def check_against_sklearn(report: EvaluationReport) -> None:
    y_true, y_pred, scores = report.y_true, report.y_pred, report.probabilities
    labels = list(range(len(report.class_names)))
    np.testing.assert_array_equal(y_pred, scores.argmax(axis=1))
    assert report.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    if len(labels) > 2:
        assert report.top_k_accuracy == pytest.approx(
            skm.top_k_accuracy_score(y_true, scores, k=report.top_k, labels=labels), abs=1e-12)
    np.testing.assert_array_equal(report.confusion_matrix, skm.confusion_matrix(y_true, y_pred, labels=labels))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(report.class_names):
        row = report.per_class[name]
        assert row["precision"] == pytest.approx(precision[i], abs=1e-12)
        assert row["recall"] == pytest.approx(recall[i], abs=1e-12)
        assert row["f1"] == pytest.approx(f1[i], abs=1e-12)
        assert row["support"] == support[i]
    for average, mine in (("macro", report.macro), ("weighted", report.weighted)):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                         zero_division=0)
        assert (mine["precision"], mine["recall"], mine["f1"]) == pytest.approx((p, r, f), abs=1e-12)


def test_metrics_equal_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(0)
    names = ["ants", "bees", "wasps", "flies", "moths"]
    y_true = rng.integers(0, 5, 200)
    scores = rng.random((200, 5))
    scores[np.arange(200), y_true] += rng.random(200) * 0.8  # better than chance, not perfect
    scores[:, 4] *= 0.1  # class 4 is (almost) never predicted: precision 0/0 -> 0
    report = EvaluationReport.from_predictions(y_true, scores, names, top_k=3)
    assert report.top_k == 3 and 0.3 < report.accuracy < 0.9
    check_against_sklearn(report)


def test_evaluate_a_model_on_a_folder_equals_scikit_learn(tmp_path):
    root = make_image_folder(tmp_path / "data", classes=("red", "green", "blue"), per_class=6, size=16)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(seed=1))(x)
    model = keras.Model(inputs, outputs)
    report = kapps.evaluate(model, root, top_k=2, batch_size=5, crop_to_aspect_ratio=False)  # stretch, as below
    assert report.class_names == ["blue", "green", "red"] and report.num_samples == 18
    check_against_sklearn(report)
    # the same predictions come back from arrays and from a dataset
    images = np.stack([tf.image.resize(tf.io.decode_png(tf.io.read_file(p), channels=3), (16, 16), antialias=True)
                       for p in sorted(str(p) for p in root.glob("*/*.png"))])
    labels = np.repeat([0, 1, 2], 6)
    from_arrays = kapps.evaluate(model, (images, labels), report.class_names, top_k=2)
    np.testing.assert_allclose(from_arrays.probabilities, report.probabilities, atol=1e-5)
    from_dataset = kapps.evaluate(model, tf.data.Dataset.from_tensor_slices((images, labels)), report.class_names)
    assert from_dataset.accuracy == report.accuracy
    with pytest.raises(ValueError, match=r"`class_names` must have one name per model output \(3\)"):
        kapps.evaluate(model, (images, labels), ["a", "b"])


def test_report_table_and_json(tmp_path):
    report = EvaluationReport.from_predictions([0, 1, 1, 0], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]],
                                               ["ants", "bees"], dataset="validation")
    table = report.table()
    assert "accuracy 0.5000" in table and "top-2 accuracy 1.0000" in table
    assert "ants" in table.splitlines()[4] and "confusion matrix (rows: true class" in table
    saved = json.loads(open(report.save_json(tmp_path / "out" / "report.json")).read())
    assert saved["accuracy"] == 0.5 and saved["confusion_matrix"] == [[1, 1], [1, 1]]
    assert saved["per_class"]["bees"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert not list((tmp_path / "out").glob(".tmp-*"))  # the temporary file was renamed away


def test_plots_are_valid_png_files(tmp_path):
    history = {"phase": [1, 1, 1, 2, 2], "epoch": [1, 2, 3, 1, 2], "loss": [0.9, 0.6, 0.5, 0.4, 0.3],
               "accuracy": [0.5, 0.7, 0.8, 0.85, 0.9], "val_loss": [0.7, 0.5, 0.45, 0.4, 0.35],
               "val_accuracy": [0.6, 0.75, 0.8, 0.86, 0.88]}
    curves = assert_valid_png(plots.plot_history(history, tmp_path / "curves.png"))
    rng = np.random.default_rng(0)
    report = EvaluationReport.from_predictions(rng.integers(0, 3, 30), rng.random((30, 3)), ["a", "b", "c"])
    assert_valid_png(plots.plot_confusion_matrix(report, tmp_path / "cm.png"))
    images = rng.integers(0, 255, (6, 32, 32, 3)).astype("float32")
    assert_valid_png(plots.plot_predictions(images, [0, 1, 2, 0, 1, 2], rng.random((6, 3)), ["a", "b", "c"],
                                            tmp_path / "grid.png", columns=3))
    assert curves.shape[1] > curves.shape[0]  # two panels side by side
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "curves.png", "grid.png"]  # no temporary files
    with pytest.raises(ValueError, match="no epochs to plot"):
        plots.plot_history({"phase": []}, tmp_path / "none.png")
