"""Issue 2: the download path against a real HTTP server on 127.0.0.1.

The server serves the official MobileNet 0.25 no-top file (whose sha256 the manifest
publishes) under the same relative path as Keras' bucket; ``KAPPS_WEIGHTS_MIRROR``
points kapps at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kapps
from conftest import REPO, photo
from httpserver import WeightsServer
from kapps.weights import file_hash, manifest, store

ENTRY = manifest.by_file_name("mobilenet_2_5_224_tf_no_top.h5")
RELATIVE = ENTRY.url[len(manifest.KERAS_BUCKET):]


@pytest.fixture
def served(shared, tmp_path, monkeypatch):
    root = tmp_path / "www"
    (root / RELATIVE).parent.mkdir(parents=True)
    shutil.copy(shared / "weights" / ENTRY.file, root / RELATIVE)
    with WeightsServer(root) as server:
        monkeypatch.setenv("KAPPS_WEIGHTS_MIRROR", server.url)
        yield server


def cache_files() -> list[str]:
    cache = Path(store.kapps_cache_dir())
    return sorted(p.name for p in cache.iterdir() if p.is_file()) if cache.exists() else []


@pytest.mark.fast
def test_download_with_hash_check_then_model_loads(served, shared):
    model = kapps.MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    cached = Path(store.kapps_cache_dir()) / ENTRY.file
    assert cached.is_file() and file_hash(str(cached)) == ENTRY.hash_value
    assert cache_files() == [ENTRY.file]
    assert served.requests == [RELATIVE]
    x = kapps.mobilenet.preprocess_input(photo(224))
    reference = keras.applications.MobileNet(alpha=0.25, include_top=False, weights=str(shared / "weights" / ENTRY.file))
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-5, rtol=0)
    # A second build finds the cached file: no new request.
    kapps.MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    assert served.requests == [RELATIVE]


@pytest.mark.fast
def test_hash_mismatch_leaves_cache_clean(served):
    path = served.root / RELATIVE
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01
    path.write_bytes(bytes(data))
    actual = file_hash(str(path))
    with pytest.raises(kapps.WeightsIntegrityError) as info:
        store.fetch(ENTRY, progress=False)
    message = str(info.value)
    assert ENTRY.file in message and ENTRY.hash_value in message and actual in message
    assert cache_files() == []


@pytest.mark.fast
def test_truncated_transfer_is_an_error_and_leaves_cache_clean(served):
    served.truncate.add(RELATIVE)
    with pytest.raises(kapps.WeightsNotFoundError) as info:
        kapps.MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    message = str(info.value)
    assert ENTRY.file in message and "truncated" in message.lower() or "broke off" in message
    assert cache_files() == []


@pytest.mark.fast
def test_404_names_url_and_status(served):
    (served.root / RELATIVE).unlink()
    with pytest.raises(kapps.WeightsNotFoundError) as info:
        kapps.MobileNet(alpha=0.25, include_top=False, weights="imagenet")
    message = str(info.value)
    assert "HTTP 404" in message and served.url + RELATIVE in message
    assert f"missing file: {ENTRY.file}" in message and store.kapps_cache_dir() in message
    assert cache_files() == []


def test_two_processes_fetching_at_once_make_one_valid_file(shared, tmp_path, monkeypatch):
    root = tmp_path / "www"
    (root / RELATIVE).parent.mkdir(parents=True)
    shutil.copy(shared / "weights" / ENTRY.file, root / RELATIVE)
    with WeightsServer(root, delay_s=0.02) as server:  # ~0.7 s per transfer: the two overlap
        env = dict(os.environ, KAPPS_WEIGHTS_MIRROR=server.url, PYTHONPATH=str(REPO))
        code = (
            "import sys; from kapps.weights import manifest, store; "
            f"print(store.fetch(manifest.by_file_name({ENTRY.file!r}), progress=False))"
        )
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert paths == {str(Path(store.kapps_cache_dir()) / ENTRY.file)}
    assert cache_files() == [ENTRY.file]
    assert file_hash(paths.pop()) == ENTRY.hash_value
    assert server.requests == [RELATIVE]  # the second process waited and reused the file
