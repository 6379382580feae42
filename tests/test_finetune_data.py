"""Bad data is listed, handled or refused with a clear message; the input pipelines are deterministic.

Every image here is a real encoded file (tf.io.encode_png / encode_jpeg) in a temporary folder.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

import kapps
from kapps.finetune import BadImageError, BadImageWarning
from kapps.finetune import data as data_lib
from test_finetune_support import colour_image, make_image_folder, tiny_base, write_image


def _rgb(h=24, w=24, seed=0):
    return colour_image(0, np.random.default_rng(seed), h, w)


def _two_classes(root):
    make_image_folder(root, per_class=3, size=24, vary_sizes=False)
    return root


def _scan(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadImageWarning)  # a warning here would be a surprise
        return data_lib.scan_folder(root, **kwargs)


# -- each bad-data case, asserted by message ------------------------------------------------------


def test_grayscale_images_are_converted_to_rgb_with_a_note(tmp_path):
    root = _two_classes(tmp_path / "data")
    gray = write_image(root / "red" / "gray.png", _rgb()[..., :1])
    folder = _scan(root)
    assert gray in folder.paths
    assert any("1 grayscale image(s) converted to RGB" in n and gray in n for n in folder.notes), folder.notes
    image = data_lib.load_image(tf.constant(gray), (16, 16))
    assert image.shape == (16, 16, 3)
    assert np.allclose(image[..., 0], image[..., 1]) and np.allclose(image[..., 1], image[..., 2])


def test_rgba_images_are_converted_to_rgb_with_a_note(tmp_path):
    root = _two_classes(tmp_path / "data")
    pixels = np.concatenate([_rgb(), np.full((24, 24, 1), 128, "uint8")], axis=-1)
    rgba = write_image(root / "blue" / "rgba.png", pixels)
    folder = _scan(root)
    assert rgba in folder.paths
    assert any("1 RGBA image(s) converted to RGB (alpha channel dropped)" in n and rgba in n for n in folder.notes)
    image = data_lib.load_image(tf.constant(rgba), (24, 24))
    np.testing.assert_allclose(image.numpy(), pixels[..., :3].astype("float32"), atol=1e-3)


def test_images_of_different_sizes_are_resized_with_a_note(tmp_path):
    root = _two_classes(tmp_path / "data")
    write_image(root / "red" / "wide.png", _rgb(20, 50))
    write_image(root / "blue" / "tall.jpg", _rgb(60, 30))
    folder = _scan(root)
    assert any("images have 3 different sizes (from 24x24 to 30x60); each is resized" in n for n in folder.notes), \
        folder.notes
    cropped = data_lib.from_folder(folder, (32, 32), crop=True)
    assert any(n.endswith("resized to the model's input size after a center crop to its aspect ratio.")
               for n in cropped.notes), cropped.notes
    wide = data_lib.load_image(tf.constant(str(root / "red" / "wide.png")), (20, 20), crop=True).numpy()
    np.testing.assert_allclose(wide, _rgb(20, 50)[:, 15:35].astype("float32"), atol=1e-3)  # the centre, unscaled
    source = data_lib.from_folder(folder, (32, 32), crop=False)
    batch = next(iter(data_lib.evaluation_dataset(source, 16)))
    assert batch[0].shape == (8, 32, 32, 3)


def test_text_file_named_jpg_is_skipped_with_a_warning_listing_its_path(tmp_path):
    root = _two_classes(tmp_path / "data")
    fake = root / "red" / "notes.jpg"
    fake.write_text("this is not a photo")
    with pytest.warns(BadImageWarning, match=r"1 file\(s\) in `train`=.* are not usable images and are skipped") as w:
        folder = data_lib.scan_folder(root)
    text = str(w[0].message)
    assert f"{fake}: not an image: named like an image, but its content is not JPEG, PNG or BMP" in text
    assert str(fake) not in folder.paths and folder.skipped == [(str(fake), folder.skipped[0][1])]


def test_bad_files_are_an_error_on_request(tmp_path):
    root = _two_classes(tmp_path / "data")
    fake = root / "blue" / "broken.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, then garbage
    empty = root / "blue" / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(BadImageError, match=r"2 file\(s\) in `train`=.*\(on_bad_file='error'\)") as e:
        data_lib.scan_folder(root, on_bad_file="error")
    assert f"{fake}: corrupt or truncated PNG" in str(e.value)
    assert f"{empty}: empty file (0 bytes)" in str(e.value)


def test_gif_from_the_real_dataset_is_listed(shared):
    gif = shared / "data" / "hymenoptera" / "train" / "ants" / "imageNotFound.gif"
    shape, reason = data_lib.inspect_file(str(gif))
    assert shape is None and reason.startswith("a GIF (graphics/animation format, not accepted as a training photo")


def test_empty_class_folder_is_refused(tmp_path):
    root = _two_classes(tmp_path / "data")
    (root / "green").mkdir()
    with pytest.raises(ValueError, match=r"`train`: class folder '.*green' is empty. Every class sub-folder must hold"):
        data_lib.scan_folder(root)


def test_class_folder_with_only_bad_files_is_refused(tmp_path):
    root = _two_classes(tmp_path / "data")
    (root / "green").mkdir()
    (root / "green" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"class folder '.*green' holds no usable image \(1 file\(s\)"):
        data_lib.scan_folder(root)


def test_single_class_is_refused(tmp_path):
    root = tmp_path / "data"
    write_image(root / "ants" / "a.png", _rgb())
    with pytest.raises(ValueError, match=r"`train` must hold at least 2 class sub-folders .* single class "
                                         r"sub-folder: 'ants'"):
        data_lib.scan_folder(root)


def test_empty_or_flat_or_missing_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"must be a directory of class sub-folders. .*: it is empty"):
        data_lib.scan_folder(tmp_path / "empty")
    write_image(tmp_path / "flat" / "a.png", _rgb())
    with pytest.raises(ValueError, match=r"holds 1 file\(s\) but no class sub-folders"):
        data_lib.scan_folder(tmp_path / "flat")
    with pytest.raises(ValueError, match=r"Received: train='.*nowhere' \(no such directory\)"):
        data_lib.scan_folder(tmp_path / "nowhere")


def test_validation_classes_must_match(tmp_path):
    make_image_folder(tmp_path / "train", classes=("red", "blue"), per_class=2)
    make_image_folder(tmp_path / "val", classes=("red", "green"), per_class=2)
    with pytest.raises(ValueError, match=r"`validation` must have the same class sub-folders .* missing \['blue'\]; "
                                         r"unexpected \['green'\]"):
        kapps.fine_tune(tiny_base(32), tmp_path / "train", tmp_path / "val", preprocessing="tf", verbose=0)


def test_fine_tune_refuses_bad_files_before_training_on_request(tmp_path):
    root = _two_classes(tmp_path / "data")
    (root / "red" / "fake.jpeg").write_text("not a jpeg")
    with pytest.raises(BadImageError, match=r"fake.jpeg: not an image"):
        kapps.fine_tune(tiny_base(32), root, preprocessing="tf", on_bad_file="error", verbose=0)


def test_arguments_are_checked_by_name(tmp_path):
    root = _two_classes(tmp_path / "data")
    cases = [
        (dict(batch_size=0), r"`batch_size` must be an integer > 0. Received: batch_size=0"),
        (dict(epochs=0, fine_tune_epochs=0), r"`epochs` and `fine_tune_epochs` are both 0"),
        (dict(dropout=1.5), r"`dropout` must be a number in \[0, 1\). Received: dropout=1.5"),
        (dict(on_bad_file="ignore"), r"`on_bad_file` must be 'skip' or 'error'. Received: on_bad_file='ignore'"),
        (dict(augmentation="lots"), r"`augmentation` must be False/None, True .* Received: augmentation='lots'"),
        (dict(batch_size=64), r"`batch_size` must leave at least one full batch: 4 training images"),
        (dict(class_weight="inverse"), r"`class_weight` must be None, 'balanced' or a dict"),
        (dict(unfreeze=2.0), r"`unfreeze` as a fraction must be in \(0, 1\]. Received: unfreeze=2.0"),
        (dict(unfreeze="block_99"), r"`unfreeze` names no layer or block of 'tiny_base'. Received: unfreeze='block_99'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            kapps.fine_tune(tiny_base(32), root, preprocessing="tf", verbose=0,
                            **{"epochs": 1, "fine_tune_epochs": 1, "batch_size": 2, **kwargs})
    with pytest.raises(ValueError, match=r"`preprocessing`='auto' cannot tell which preprocessing model 'tiny_base'"):
        kapps.fine_tune(tiny_base(32), root, verbose=0)
    full = kapps.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    with pytest.raises(ValueError, match=r"`model` must be a base without its classifier"):
        kapps.fine_tune(full, root, verbose=0)


# -- datasets as input ----------------------------------------------------------------------------


def test_datasets_of_grayscale_or_rgba_images_and_one_hot_labels_are_standardized():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (6, 20, 30, 1)).astype("uint8")
    labels = np.eye(3)[[0, 1, 2, 0, 1, 2]].astype("float32")
    source = data_lib.from_dataset(tf.data.Dataset.from_tensor_slices((gray, labels)).batch(4), image_size=(16, 16))
    assert source.size == 6 and source.class_names == ["0", "1", "2"]
    assert source.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert any("1-channel images are converted to RGB" in n for n in source.notes)
    image, label = next(iter(source.dataset))
    assert image.shape == (16, 16, 3) and image.dtype == tf.float32 and int(label) == 0
    rgba = rng.integers(0, 255, (4, 8, 8, 4)).astype("uint8")
    source = data_lib.from_dataset(tf.data.Dataset.from_tensor_slices((rgba, [0, 1, 0, 1])), image_size=(8, 8),
                                   class_names=["a", "b"])
    np.testing.assert_allclose(next(iter(source.dataset))[0].numpy(), rgba[0, ..., :3])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\] for 2 classes"):
        data_lib.from_dataset(tf.data.Dataset.from_tensor_slices((rgba, [0, 1, 2, 1])), image_size=(8, 8),
                              class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"must be a tf.data.Dataset of \(image, label\) pairs"):
        data_lib.from_dataset(tf.data.Dataset.from_tensor_slices(rgba), image_size=(8, 8))


def test_images_scaled_to_0_1_get_a_warning():
    images = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    with pytest.warns(UserWarning, match=r"pixel values look scaled to \[0, 1\]"):
        data_lib.from_dataset(tf.data.Dataset.from_tensor_slices((images, [0, 1, 0, 1])), image_size=(8, 8))


# -- pipelines ------------------------------------------------------------------------------------


def _epochs(source, first, last, shard=(0, 8), per_replica=8, seed=1, augmentation=()):
    ds = data_lib.training_dataset(source, seed=seed, phase=1, first_epoch=first, last_epoch=last, global_batch=8,
                                   per_replica_batch=per_replica, shard=shard, augmentation=augmentation)
    return [tuple(t.numpy() for t in batch) for batch in ds]


def test_training_batches_are_a_function_of_seed_and_epoch(tmp_path):
    folder = data_lib.scan_folder(make_image_folder(tmp_path / "data", per_class=10, size=16))
    source = data_lib.from_folder(folder, (16, 16))
    layers = data_lib.make_augmentation(True)
    run = _epochs(source, 0, 3, augmentation=layers)
    assert len(run) == 3 * (20 // 8)
    resumed = _epochs(source, 2, 3, augmentation=layers)  # epoch 2 alone, as a resumed run makes it
    for a, b in zip(run[4:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(run[0][0], run[2][0])  # another epoch, another order
    other_seed = _epochs(source, 0, 1, seed=2, augmentation=layers)
    assert not np.array_equal(run[0][0], other_seed[0][0])  # another seed, other batches


def test_input_pipelines_of_several_workers_make_up_the_same_global_batches(tmp_path):
    folder = data_lib.scan_folder(make_image_folder(tmp_path / "data", per_class=10, size=16))
    source = data_lib.from_folder(folder, (16, 16))
    layers = data_lib.make_augmentation(True)
    whole = _epochs(source, 0, 2, augmentation=layers)
    first = _epochs(source, 0, 2, shard=(0, 4), per_replica=4, augmentation=layers)
    second = _epochs(source, 0, 2, shard=(4, 8), per_replica=4, augmentation=layers)
    for global_batch, a, b in zip(whole, first, second):
        np.testing.assert_allclose(global_batch[0], np.concatenate([a[0], b[0]]), atol=1e-5)
        np.testing.assert_array_equal(global_batch[1], np.concatenate([a[1], b[1]]))


def test_validation_split_is_stratified_and_seeded(tmp_path):
    folder = data_lib.scan_folder(make_image_folder(tmp_path / "data", per_class=10, size=16))
    source = data_lib.from_folder(folder, (16, 16))
    train, val = data_lib.split_folder(source, 0.2, seed=0)
    assert np.bincount(val.labels).tolist() == [2, 2] and np.bincount(train.labels).tolist() == [8, 8]
    assert not set(train.paths) & set(val.paths)
    assert data_lib.split_folder(source, 0.2, seed=0)[1].paths == val.paths
    assert data_lib.split_folder(source, 0.2, seed=1)[1].paths != val.paths


def test_tpu_shaped_evaluation_batches_are_padded_with_zero_weight(tmp_path):
    folder = data_lib.scan_folder(make_image_folder(tmp_path / "data", per_class=5, size=16))
    source = data_lib.from_folder(folder, (16, 16))
    batches = list(data_lib.evaluation_dataset(source, 4, pad_to_batch=True))
    assert [b[0].shape[0] for b in batches] == [4, 4, 4]  # 10 images + 2 blanks, static shapes
    weights = np.concatenate([b[2].numpy() for b in batches])
    assert weights.tolist() == [1.0] * 10 + [0.0] * 2
    assert os.path.basename(source.paths[0]).endswith(".png")
