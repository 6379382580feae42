"""kapps.images: the one resize/crop rule, file loading and the sample photos."""

from __future__ import annotations

import numpy as np
import pytest

from kapps import images
from kapps.finetune import data as finetune_data


def _striped(rows: int, cols: int) -> np.ndarray:
    """Red left third, green middle, blue right third."""
    image = np.zeros((rows, cols, 3), "uint8")
    image[:, : cols // 3, 0] = 255
    image[:, cols // 3: 2 * cols // 3, 1] = 255
    image[:, 2 * cols // 3:, 2] = 255
    return image


def test_crop_keeps_the_centre_and_stretch_keeps_everything():
    wide = _striped(30, 90)
    cropped = np.asarray(images.fit_image(wide, 12, crop=True))
    stretched = np.asarray(images.fit_image(wide, 12))
    assert cropped.shape == stretched.shape == (12, 12, 3)
    assert cropped[..., 1].mean() > 250 and cropped[..., 0].max() < 5  # only the green centre
    assert stretched[:, 0, 0].mean() > 250 and stretched[:, -1, 2].mean() > 250
    same = finetune_data.fit_image(wide, (12, 12), crop=True)  # fine_tune uses the same rule
    np.testing.assert_array_equal(np.asarray(same), cropped)


def test_load_image_reads_files_and_names_bad_ones(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.fromarray(_striped(30, 90)).save(path)
    loaded = images.load_image(path, (10, 30))
    assert loaded.shape == (10, 30, 3) and 0 <= loaded.min() and loaded.max() <= 255
    assert loaded[:, 0, 0].mean() > 250
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"`image` must be a JPEG, PNG, GIF or BMP file. Received: .*notes.jpg"):
        images.load_image(tmp_path / "notes.jpg", 10)
    with pytest.raises(ValueError, match="`image` must be an existing image file"):
        images.load_image(tmp_path / "missing.jpg", 10)


def test_one_list_of_sample_photos():
    labels, batch = images.sample_photos(24)
    assert labels == [f"skimage.data.{n}" for n in images.SAMPLE_PHOTOS[:3]]
    views = images.sample_photo_views(24)
    assert views.shape == (6 * len(images.SAMPLE_PHOTOS), 24, 24, 3)
    np.testing.assert_allclose(views[0], batch[0], atol=1e-3)  # chelsea, whole
    assert views.std() > 20
