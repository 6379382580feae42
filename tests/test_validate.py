"""Evaluation transforms, ``kapps.validate`` / ``kapps validate`` and real labels end to end.

The real material (``../shared``): the official Keras MobileNet alpha 0.25 classifier with
its top, 1000 ImageNet photos (one per class) with ``labels.csv``, and an elephant photo.
Small layouts are written here from copies of those photos; the corrupt JPEG is a real
JPEG cut in half.
"""

from __future__ import annotations

import csv
import json
import shutil

import keras
import numpy as np
import pytest

import kapps
from kapps.cli import main
from kapps.registry import get_spec
from kapps.transforms import INTERPOLATIONS, EvalTransform, from_dict

CLASSIFIER = "weights/mobilenet_2_5_224_tf.converted.h5"
SAMPLES = "data/imagenet_samples"
#: What the standard transform (shorter side 256, centre crop 224) gives on the 1000 photos (issue 14).
EXPECTED_TOP1, EXPECTED_TOP5 = 57.1, 80.6


@pytest.fixture(scope="module")
def classifier(shared):
    return str(shared / CLASSIFIER)


# -- transforms ----------------------------------------------------------------------------


def _image(rows: int = 300, cols: int = 400) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (rows, cols, 3)).astype("float32")


def test_shorter_side_resize_then_centre_crop_as_computed_by_hand():
    import tensorflow as tf

    transform = EvalTransform(224, crop_pct=0.875, interpolation="bilinear", preprocessing="none")
    assert transform.resize_size == (256, 256)
    # 300 x 400: the shorter side becomes 256, the other round(400 * 256 / 300) = 341; crop at (16, 58).
    expected = tf.image.resize(_image(), (256, 341), method="bilinear", antialias=True)[16:240, 58:282]
    np.testing.assert_allclose(transform(_image())[0], np.clip(expected, 0, 255), atol=1e-4)


def test_squash_and_every_interpolation_and_size():
    import tensorflow as tf

    for interpolation in INTERPOLATIONS:
        transform = EvalTransform((96, 128), crop_pct=1.0, interpolation=interpolation, resize="squash",
                                  preprocessing="none")
        expected = tf.image.resize(_image(), (96, 128), method=interpolation, antialias=True)
        np.testing.assert_allclose(transform(_image())[0], np.clip(expected, 0, 255), atol=1e-3,
                                   err_msg=interpolation)
    bilinear, bicubic = (EvalTransform(64, interpolation=i, preprocessing="none")(_image()) for i in
                         ("bilinear", "bicubic"))
    assert np.abs(bilinear - bicubic).max() > 1  # the option changes the pixels
    batch = EvalTransform(32, preprocessing="tf")([_image(50, 80), _image(90, 40)])
    assert batch.shape == (2, 32, 32, 3) and -1 <= batch.min() and batch.max() <= 1


@pytest.mark.parametrize("change, message", [
    (dict(crop_pct=0), "`crop_pct` must be a number in (0, 1]. Received: crop_pct=0"),
    (dict(crop_pct=1.5), "Received: crop_pct=1.5"),
    (dict(crop_pct=True), "Received: crop_pct=True"),
    (dict(interpolation="cubic"), "`interpolation` must be one of 'bilinear', 'bicubic'"),
    (dict(resize="fit"), "`resize` must be one of 'shorter_side', 'squash'. Received: resize='fit'"),
    (dict(size=0), "`size` must be a positive integer or a (height, width) pair. Received: size=0"),
    (dict(size=(224, -1)), "Received: size=(224, -1)"),
    (dict(preprocessing="imagenet"), "`preprocessing` must be one of 'tf', 'caffe', 'torch', 'none'"),
])
def test_bad_transform_values_name_the_argument(change, message):
    with pytest.raises(ValueError) as error:
        EvalTransform(**{"size": 224, **change})
    assert message in str(error.value)


def test_every_classifier_file_states_its_transform():
    from kapps.weights import manifest

    for entry in manifest.all_files():
        if not entry.include_top:
            assert entry.eval_transform is None, entry.file
            continue
        transform = from_dict(entry.eval_transform)
        spec = get_spec(entry.model)
        size = entry.variant_dict.get("resolution") or spec.default_size_for(  # AlexNet's torchvision variant: 224
            spec.options_of({k: v for k, v in entry.variant_dict.items() if k == "variant"}, weights="imagenet"), None)
        assert transform.size == (size, size), entry.file
        assert transform.preprocessing == get_spec(entry.model).preprocessing, entry.file
        assert transform.source, entry.file
    b3 = kapps.eval_transform("efficientnet_b3")
    assert (b3.size, b3.crop_pct, b3.interpolation) == ((300, 300), round(300 / 332, 6), "bicubic")
    assert kapps.eval_transform("VGG16").interpolation == "bicubic"
    assert kapps.eval_transform("mobilenet_v2", alpha=0.35).size == (224, 224)
    assert kapps.eval_transform("mobilenet", alpha=0.5, crop_pct=1.0, size=160).resize_size == (160, 160)
    info = kapps.model_info("resnet50")["weight_files"]
    assert [f["eval_transform"]["crop_pct"] for f in info if f["include_top"]] == [0.875]


def test_eval_transform_errors_name_the_argument():
    with pytest.raises(ValueError, match="`weights` must be 'imagenet'"):
        kapps.eval_transform("mobilenet", weights="my.h5")
    with pytest.raises(ValueError, match="has no official ImageNet weights"):
        kapps.eval_transform("lenet5")
    with pytest.raises(ValueError, match="No official ImageNet weight file exists for mobilenet with alpha=0.3"):
        kapps.eval_transform("mobilenet", alpha=0.3)
    with pytest.raises(ValueError, match="`load_image` takes exactly one of `size` and `transform`"):
        kapps.images.load_image("x.jpg")


# -- the real classifier -------------------------------------------------------------------


def _counts(scores: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    best = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    return int(np.sum(best[:, 0] == labels)), int(np.sum(np.any(best == labels[:, None], axis=1)))


def test_validate_cli_equals_keras_applications_on_the_real_photos(shared, classifier, tmp_path, capsys):
    """Top-1/top-5 of kapps (CLI, MobileNet 0.25 file) = keras.applications' on the same arrays."""
    results = tmp_path / "results.csv"
    code = main(["validate", "mobilenet", str(shared / SAMPLES), "--option", "alpha=0.25", "--weights",
                 classifier, "--results", str(results), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1000 and not report["unreadable"] and not report["unlabelled"]

    transform = kapps.eval_transform("mobilenet", alpha=0.25)
    rows = list(csv.DictReader(open(shared / SAMPLES / "labels.csv")))
    arrays = np.stack([np.asarray(transform.geometry(kapps.images.read_image(shared / SAMPLES / r["file"])))
                       for r in rows])
    reference = keras.applications.MobileNet(alpha=0.25, weights=classifier)
    scores = reference.predict(keras.applications.mobilenet.preprocess_input(arrays), batch_size=100, verbose=0)
    top1, top5 = _counts(scores, np.array([int(r["class_index"]) for r in rows]))
    assert (report["top1_correct"], report["top5_correct"]) == (top1, top5)
    assert abs(top1 / 10 - EXPECTED_TOP1) <= 1.5 and abs(top5 / 10 - EXPECTED_TOP5) <= 1.5, (top1, top5)
    with open(results) as f:
        row = next(csv.DictReader(f))
    assert row == {"model": "mobilenet", "weights": classifier, "img_size": "224", "crop_pct": "0.875",
                   "interpolation": "bilinear", "top1": f"{top1 / 10:.3f}", "top5": f"{top5 / 10:.3f}",
                   "n": "1000", "param_count": str(reference.count_params()), "runtime": "keras"}


def test_official_file_name_in_kapps_weights_dir_predicts_identically(shared, classifier, tmp_path, monkeypatch):
    shutil.copy(classifier, tmp_path / "mobilenet_2_5_224_tf.h5")
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(tmp_path))
    transform = kapps.eval_transform("mobilenet", alpha=0.25)
    paths = sorted((shared / SAMPLES).glob("*.JPEG"))[:16]
    batch = np.stack([kapps.images.load_image(p, transform=transform) for p in paths])
    by_path = kapps.MobileNet(alpha=0.25, weights=classifier).predict(batch, verbose=0)
    for builder in ("functional", "sequential"):
        by_name = kapps.MobileNet(alpha=0.25, weights="imagenet", builder=builder).predict(batch, verbose=0)
        np.testing.assert_array_equal(by_name.argmax(-1), by_path.argmax(-1))
        np.testing.assert_allclose(by_name, by_path, atol=1e-6, rtol=0)


def test_predict_prints_real_labels_with_the_model_option(shared, classifier, capsys):
    elephant = str(shared / "data" / "elephant" / "creative_commons_elephant.jpg")
    assert main(["predict", elephant, "--model", "mobilenet", "-o", "alpha=0.25", "--weights", classifier,
                 "--top", "3", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert "African_elephant" in [row["label"] for row in top], top


def test_a_file_of_another_width_names_the_alpha_that_fits(classifier):
    with pytest.raises(kapps.WeightsMismatchError) as error:
        kapps.MobileNet(alpha=0.5, weights=classifier)
    assert "the file fits alpha=0.25 (the model was built with alpha=0.5): pass alpha=0.25" in str(error.value)


def test_bad_model_options_on_the_command_line(shared, capsys):
    assert main(["validate", "mobilenet", str(shared / SAMPLES), "-o", "width=2"]) == 2
    assert "`--option`: mobilenet has no option 'width'; its options: alpha, depth_multiplier, dropout" \
        in capsys.readouterr().err
    assert main(["predict", "--model", "mobilenet", "-o", "alpha"]) == 2
    assert "`--option` must be KEY=VALUE. Received: --option alpha" in capsys.readouterr().err
    assert main(["validate", "mobilenet", str(shared / SAMPLES), "-o", "alpha=0.3"]) == 2
    assert "No official ImageNet weight file exists for mobilenet with alpha=0.3" in capsys.readouterr().err


# -- data layouts --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(shared) -> list[dict]:
    """Six real sample photos (file, wnid, class_index rows of labels.csv)."""
    rows = list(csv.DictReader(open(shared / SAMPLES / "labels.csv")))
    return rows[::167][:6]


def _copy(shared, rows, folder, by_wnid=False):
    for row in rows:
        target = folder / row["wnid"] if by_wnid else folder
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared / SAMPLES / row["file"], target / row["file"])


def _expected(classifier, shared, rows) -> tuple[int, int]:
    transform = kapps.eval_transform("mobilenet", alpha=0.25)
    batch = np.stack([kapps.images.load_image(shared / SAMPLES / r["file"], transform=transform) for r in rows])
    scores = kapps.MobileNet(alpha=0.25, weights=classifier).predict(batch, verbose=0)
    return _counts(scores, np.array([int(r["class_index"]) for r in rows]))


def _validate(data, classifier, **kwargs):
    return kapps.validate("mobilenet", data, alpha=0.25, weights=classifier, progress=False, **kwargs)


def test_every_layout_gives_the_same_counts(shared, classifier, photos, tmp_path):
    expected = _expected(classifier, shared, photos)
    layouts = {}
    folders = tmp_path / "folders"
    _copy(shared, photos, folders, by_wnid=True)
    layouts["wnid folders"] = (folders, {})
    for name, header, line in [
        ("labels.csv", "file,wnid\n", lambda r: f"{r['file']},{r['wnid']}\n"),
        ("val.txt", "", lambda r: f"{r['file']} {r['class_index']}\n"),
        ("LOC_val_solution.csv", "ImageId,PredictionString\n",
         lambda r: f"{r['file'][:-5]},{r['wnid']} 1 2 3 4\n"),
        ("my_labels.csv", "file,class_index\n", lambda r: f"{r['file']},{r['class_index']}\n"),
    ]:
        folder = tmp_path / name.replace(".", "_")
        _copy(shared, photos, folder)
        labels = folder / name
        labels.write_text(header + "".join(line(r) for r in photos))
        layouts[name] = (folder, {"labels": labels} if name == "my_labels.csv" else {})
    for name, (folder, kwargs) in layouts.items():
        result = _validate(folder, classifier, **kwargs)
        assert (result.n, result.top1_correct, result.top5_correct) == (len(photos), *expected), name
    limited = _validate(folders, classifier, limit=2, batch_size=1)
    assert limited.n == 2


def test_unreadable_unlabelled_and_missing_images_are_listed_not_counted(shared, classifier, photos, tmp_path):
    _copy(shared, photos, tmp_path)
    corrupt = tmp_path / "broken.JPEG"
    data = (shared / SAMPLES / photos[0]["file"]).read_bytes()
    corrupt.write_bytes(data[: len(data) // 3])
    shutil.copy(shared / SAMPLES / photos[1]["file"], tmp_path / "stray.JPEG")  # on disk, not in labels
    lines = "".join(f"{r['file']},{r['class_index']}\n" for r in photos)
    (tmp_path / "labels.csv").write_text(f"file,class_index\n{lines}broken.JPEG,3\ngone.JPEG,4\n")
    result = _validate(tmp_path, classifier)
    assert result.n == len(photos)
    assert result.unreadable == [str(corrupt)]
    assert result.unlabelled == [str(tmp_path / "stray.JPEG")]
    assert result.missing == [str(tmp_path / "gone.JPEG")]
    summary = result.summary()
    assert f"1 unreadable, not counted: {corrupt}" in summary and "1 unlabelled" in summary
    assert (result.top1_correct, result.top5_correct) == _expected(classifier, shared, photos)


def test_results_csv_appends_atomically(shared, classifier, photos, tmp_path):
    _copy(shared, photos[:2], tmp_path / "data", by_wnid=True)
    results = tmp_path / "out" / "results.csv"
    for crop in (0.875, 1.0):
        _validate(tmp_path / "data", classifier, results_csv=results, crop_pct=crop, interpolation="bicubic")
    rows = list(csv.DictReader(open(results)))
    assert [(r["crop_pct"], r["interpolation"], r["n"]) for r in rows] == [("0.875", "bicubic", "2"),
                                                                          ("1.0", "bicubic", "2")]
    assert sorted(p.name for p in results.parent.iterdir()) == ["results.csv"]  # no temp file left
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="is not a kapps results file"):
        _validate(tmp_path / "data", classifier, results_csv=other)
    assert other.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "`data` must be a folder of images. Received: data="),
    (lambda d: d.mkdir(), "`data`: no labelled images (JPEG, PNG, GIF, BMP) found in"),
    (lambda d: (d / "n99999999").mkdir(parents=True), "the sub-folder"),
    (lambda d: (d.mkdir(), (d / "a.jpg").write_bytes(b"x")), "holds images but no labels: add labels.csv"),
    (lambda d: (d.mkdir(), (d / "labels.csv").write_text("file,wnid\na.jpg,n00000001\n")),
     "labels.csv line 2 names 'n00000001', which is not one of the 1000 ImageNet WordNet ids"),
    (lambda d: (d.mkdir(), (d / "labels.csv").write_text("name,label\na.jpg,1\n")),
     "must have a 'file' column and a 'class_index' or 'wnid' column"),
    (lambda d: (d.mkdir(), (d / "val.txt").write_text("a.jpg 1000\n")),
     "val.txt line 1 must be 'FILE CLASS_INDEX' with an index in [0, 999]. Received: 'a.jpg 1000'"),
])
def test_bad_data_is_refused_by_message(tmp_path, classifier, make, message):
    data = tmp_path / "data"
    make(data)
    with pytest.raises(ValueError) as error:
        _validate(data, classifier)
    assert message in str(error.value)


def test_missing_labels_file_and_bad_arguments(shared, classifier, tmp_path):
    with pytest.raises(ValueError, match="`labels` must be an existing labels file"):
        _validate(shared / SAMPLES, classifier, labels=tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="`limit` must be a positive integer. Received: limit=0"):
        _validate(shared / SAMPLES, classifier, limit=0)
    with pytest.raises(ValueError, match="`transform` must be given for a built model"):
        kapps.validate(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1000)]), shared / SAMPLES)


def test_info_and_bench_take_model_options(capsys, tmp_path):
    assert main(["info", "mobilenet", "-o", "alpha=0.25", "-o", "resolution=224", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["weight_files"]
    assert [f["file"] for f in files] == ["mobilenet_2_5_224_tf_no_top.h5", "mobilenet_2_5_224_tf.h5"]
    assert files[1]["eval_transform"]["crop_pct"] == 0.875
    assert main(["info", "mobilenet", "-o", "width=2"]) == 2
    assert "chooses mobilenet's weight files (alpha, resolution). Received: --option width=2" in capsys.readouterr().err
    assert main(["bench", "-o", "alpha=0.5"]) == 2
    assert "`--option` needs the MODEL names it applies to" in capsys.readouterr().err
    assert main(["bench", "mobilenet", "-o", "depth=2"]) == 2
    assert "mobilenet has no option 'depth'" in capsys.readouterr().err
    from kapps.tools.bench.runner import _write_weight_file

    params, flops = _write_weight_file("MobileNet", str(tmp_path / "m.h5"), {"alpha": 0.25})
    assert params == kapps.MobileNet(alpha=0.25, weights=None).count_params() < kapps.model_info("mobilenet")["params"]
    assert 0 < flops < kapps.model_info("mobilenet")["flops"]
    assert kapps.MobileNet(alpha=0.25, weights=str(tmp_path / "m.h5")).count_params() == params
