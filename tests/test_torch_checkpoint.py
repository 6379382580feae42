"""Reading PyTorch checkpoints without torch, converting them, and ``weights="imagenet"`` from torchvision (issue 12).

Checkpoints are written by the real ``torch.save`` (both formats) and ``safetensors``; the
download path runs against the real ``http.server`` of tests/httpserver.py on 127.0.0.1 serving a
checkpoint this module wrote; ``kapps convert`` runs in a subprocess. torch and torchvision (the
``.[torch]`` extra) are required: these tests fail, never skip, without them.
"""

from __future__ import annotations

import collections
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kapps
from conftest import REPO, photo
from httpserver import WeightsServer
from torch_reference import torch, torch_logits, torchvision
from kapps.errors import CheckpointError, WeightsIntegrityError
from kapps.factory import imagenet_path
from kapps.registry import get_spec
from kapps.weights import manifest, store
from kapps.weights.converted import SOURCE_ATTRIBUTE, converted_file_name, resolve_converted
from kapps.weights.manifest import WeightFile
from kapps.weights.torch_checkpoint import read_checkpoint, state_dict

SIZE = 64  # small inputs: the checks are about files and names, the families' parity is elsewhere


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    """torchvision's SqueezeNet 1.1 with random weights, its state dict saved in both torch formats."""
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1(weights=None).eval()
    folder = tmp_path_factory.mktemp("squeezenet")
    paths = {}
    for kind in ("zip", "legacy"):
        paths[kind] = folder / f"squeezenet1_1_{kind}.pth"
        torch.save(model.state_dict(), paths[kind], _use_new_zipfile_serialization=kind == "zip")
    x = kapps.squeezenet.preprocess_input(photo(SIZE))
    return model, paths, x, torch_logits(model, x)


@pytest.fixture(scope="module")
def shufflenet():
    """torchvision's ShuffleNetV2 x0.5 (BatchNorm, depthwise convolutions, a dense layer): its state dict."""
    torch.manual_seed(1)
    return {k: v.numpy() for k, v in torchvision.models.shufflenet_v2_x0_5(weights=None).state_dict().items()}


def assert_equal_to_torch(weights: str | Path, x: np.ndarray, logits: np.ndarray, **kwargs) -> None:
    for builder in ("functional", "sequential"):
        model = kapps.SqueezeNet1_1(weights=str(weights), input_shape=x.shape[1:], classifier_activation=None,
                                    builder=builder, **kwargs)
        got = np.asarray(model(x, training=False))
        assert np.max(np.abs(got - logits)) / np.max(np.abs(logits)) <= 1e-4, builder
    keras.backend.clear_session()


# -- reading -------------------------------------------------------------------------------------

TENSORS = collections.OrderedDict(
    weight=torch.randn(3, 4), view=torch.randn(2, 3, 5, 5)[:, 1], steps=torch.arange(7), transposed=torch.randn(4, 4).t(),
    half=torch.randn(3).half(), brain=torch.randn(3).bfloat16(), scalar=torch.tensor(5), empty=torch.zeros(0, 3),
    flags=torch.tensor([True, False]), unsigned=torch.tensor([1, 2, 60000], dtype=torch.uint16),
)


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_both_torch_formats_read_exactly(tmp_path, kind):
    """Views, transposes, float16, bfloat16 (widened to float32 exactly), integers, bools, uint16 (v3)."""
    path = tmp_path / "tensors.pth"
    torch.save(TENSORS, path, _use_new_zipfile_serialization=kind == "zip")
    assert path.read_bytes()[:2] == (b"PK" if kind == "zip" else b"\x80\x02")
    read = read_checkpoint(path)
    assert list(read) == list(TENSORS)
    for key, tensor in TENSORS.items():
        expected = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        assert read[key].dtype == expected.dtype and read[key].shape == expected.shape, key
        np.testing.assert_array_equal(read[key], expected, err_msg=key)


def test_safetensors_and_wrapped_state_dicts(tmp_path, shufflenet):
    from safetensors.numpy import save_file

    save_file(shufflenet, tmp_path / "model.safetensors")
    read = state_dict(read_checkpoint(tmp_path / "model.safetensors"))
    assert sorted(read) == sorted(k for k in shufflenet if not k.endswith("num_batches_tracked"))
    np.testing.assert_array_equal(read["fc.weight"], shufflenet["fc.weight"])
    wrapped = {"epoch": 90, "model": {f"module.{k}": torch.from_numpy(v) for k, v in shufflenet.items()}}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    assert sorted(state_dict(read_checkpoint(tmp_path / "wrapped.pth"))) == sorted(read)
    torch.save({"state_dict": {"conv.weight": torch.ones(1)}}, tmp_path / "other.pth")
    assert list(state_dict(read_checkpoint(tmp_path / "other.pth"))) == ["conv.weight"]


class _Hostile:
    """Unpickling it would run ``os.system`` (or ``eval``): a marker file proves whether it ran."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("kind", ["zip", "legacy", "plain pickle"])
def test_hostile_pickles_are_refused_naming_the_global_and_the_file(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pth"
    payload = {"fc.weight": torch.ones(2), "x": _Hostile(os.system, f"touch {marker}")}
    if kind == "plain pickle":
        path.write_bytes(pickle.dumps(payload["x"]))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=kind == "zip")
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    message = str(error.value)
    assert f"{os.system.__module__}.system" in message and str(path) in message  # posix.system on Linux
    assert not marker.exists()
    path.write_bytes(pickle.dumps(_Hostile(eval, "1 + 1")))
    with pytest.raises(CheckpointError, match=r"builtins\.eval"):
        read_checkpoint(path)


def test_files_that_are_not_checkpoints_are_named(tmp_path):
    for name, data in (("page.pth", b"<html>404</html>"), ("cut.pth", None), ("model.h5", b"\x89HDF\r\n\x1a\n" + bytes(8))):
        path = tmp_path / name
        if data is None:
            torch.save({"w": torch.ones(100)}, path)
            data = path.read_bytes()[: len(path.read_bytes()) // 2]
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=str(path)):
            read_checkpoint(path)


# -- converting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_convert_then_both_builders_equal_torchvision(tmp_path, squeezenet, kind):
    _, paths, x, logits = squeezenet
    out = kapps.convert(paths[kind], "SqueezeNet1_1", tmp_path / "squeezenet.weights.h5")
    assert out == str(tmp_path / "squeezenet.weights.h5") and os.listdir(tmp_path) == ["squeezenet.weights.h5"]
    assert_equal_to_torch(out, x, logits)
    without_top = kapps.SqueezeNet1_1(weights=out, include_top=False, input_shape=(SIZE, SIZE, 3))
    assert without_top.output_shape == (None, 3, 3, 512)


def test_keys_and_shapes_that_do_not_fit_are_named(shufflenet):
    model = kapps.ShuffleNetV2X0_5(weights=None, input_shape=(SIZE, SIZE, 3))
    from kapps.weights.torch_mapping import assign_state_dict

    def refused(state) -> str:
        with pytest.raises(CheckpointError) as error:
            assign_state_dict(model, state, "checkpoint 'x.pth'")
        return str(error.value)

    state = dict(shufflenet)
    del state["stage3.2.branch2.3.weight"]
    message = refused(state)
    assert "missing keys (1): 'stage3.2.branch2.3.weight' (for layer 'stage3_2_branch2_3', weight " \
           "'depthwise_kernel')" in message and "checkpoint 'x.pth'" in message
    message = refused({**shufflenet, "head.weight": np.zeros((3, 3), "float32")})
    assert "unexpected keys, no layer of the model takes them (1): 'head.weight'" in message
    message = refused({**shufflenet, "fc.weight": np.zeros((10, 1024), "float32"), "fc.bias": np.zeros(10)})
    assert "key 'fc.weight': shape (10, 1024) in the checkpoint, but layer 'fc' needs (1000, 1024)" in message
    message = refused({**shufflenet, "conv1.1.running_var": np.ones(5, "float32")})
    assert "key 'conv1.1.running_var': shape (5,) in the checkpoint, but layer 'conv1_1' needs (24,)" in message
    before = model.get_layer("fc").get_weights()[0].copy()
    refused({**shufflenet, "extra.bias": np.zeros(1)})
    np.testing.assert_array_equal(model.get_layer("fc").get_weights()[0], before)  # all or nothing
    keras.backend.clear_session()


def test_kapps_convert_command_in_a_subprocess(tmp_path, squeezenet):
    _, paths, x, logits = squeezenet
    out = tmp_path / "cli.weights.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "kapps", "convert", str(paths["legacy"]), "--model", "squeezenet1_1",
                          "--out", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith(f"{out} (") and "squeezenet1_1" in run.stdout
    assert_equal_to_torch(out, x, logits)


def test_kapps_convert_command_names_what_does_not_fit(tmp_path, squeezenet, capsys):
    from kapps.cli import main

    _, paths, _, _ = squeezenet
    out = tmp_path / "ten.weights.h5"
    assert main(["convert", str(paths["zip"]), "--model", "squeezenet1_1", "--out", str(out), "--classes", "10"]) == 2
    error = capsys.readouterr().err
    assert "key 'classifier.1.weight': shape (1000, 512, 1, 1) in the checkpoint, but layer 'classifier_1' " \
           "needs (10, 512, 1, 1)" in error and "Traceback" not in error
    assert main(["convert", str(tmp_path / "none.pth"), "--model", "squeezenet1_1", "--out", str(out)]) == 2
    assert "`checkpoint`: no such file" in capsys.readouterr().err
    assert main(["convert", str(paths["zip"]), "--model", "squeezenet1_1", "--out", str(tmp_path / "x.h5")]) == 2
    assert "`out` must end in '.weights.h5'" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# -- weights="imagenet": download once, convert once --------------------------------------------

def _entry(path: Path, url: str) -> WeightFile:
    """A manifest entry for a checkpoint the test wrote, published the way torchvision publishes its own."""
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return WeightFile(file=path.name, model="squeezenet1_1", include_top=True, variant=(), url=url + path.name,
                      size=None, hash_algorithm="sha256-prefix", hash_value=prefix, hash_source="this test",
                      source="torchvision")


def _cache_files() -> list[str]:
    cache = Path(store.kapps_cache_dir())
    return sorted(p.name for p in cache.iterdir() if p.is_file()) if cache.exists() else []


def _build():
    return kapps.SqueezeNet1_1(weights=None, classifier_activation=None)


def test_downloaded_once_converted_once_then_reused(tmp_path, squeezenet):
    _, paths, x, logits = squeezenet
    root = tmp_path / "www"
    root.mkdir()
    served = root / "squeezenet1_1-test.pth"
    served.write_bytes(paths["zip"].read_bytes())
    with WeightsServer(root) as server:
        entry = _entry(served, server.url)
        spec = get_spec("squeezenet1_1")
        path = imagenet_path(spec, spec.options_of({}), entry)  # weights="imagenet"'s path for a checkpoint entry
        assert server.requests == [served.name]
        assert _cache_files() == sorted([served.name, converted_file_name(entry)])
        assert Path(path) == Path(store.kapps_cache_dir()) / converted_file_name(entry)
        import h5py

        with h5py.File(path) as f:
            assert f.attrs[SOURCE_ATTRIBUTE].startswith(entry.hash_value)
        os.remove(Path(store.kapps_cache_dir()) / served.name)  # the checkpoint is not read again

        def must_not_build():
            raise AssertionError("converted again")

        assert resolve_converted(entry, must_not_build, progress=False) == path
        assert server.requests == [served.name]
    assert_equal_to_torch(path, x, logits)


def test_corrupt_and_hostile_checkpoints_leave_nothing_in_the_cache(tmp_path, squeezenet):
    _, paths, _, _ = squeezenet
    root = tmp_path / "www"
    root.mkdir()
    corrupt = root / "squeezenet1_1-corrupt.pth"
    corrupt.write_bytes(paths["zip"].read_bytes())
    hostile = root / "squeezenet1_1-hostile.pth"
    torch.save({"w": _Hostile(os.system, f"touch {tmp_path / 'pwned'}")}, hostile)
    with WeightsServer(root) as server:
        entry = _entry(corrupt, server.url)
        data = bytearray(corrupt.read_bytes())
        data[len(data) // 2] ^= 0xFF
        corrupt.write_bytes(bytes(data))
        with pytest.raises(WeightsIntegrityError) as error:
            resolve_converted(entry, _build, progress=False)
        assert f"a sha256 starting with {entry.hash_value}" in str(error.value)
        assert _cache_files() == []
        with pytest.raises(CheckpointError, match=r"system"):
            resolve_converted(_entry(hostile, server.url), _build, progress=False)
        assert _cache_files() == [] and not (tmp_path / "pwned").exists()
        assert server.requests == [corrupt.name, hostile.name]


def test_imagenet_weights_come_from_torchvisions_url_and_are_hash_checked(tmp_path, monkeypatch, squeezenet):
    """The real manifest entry, through the constructor: the download goes to torchvision's URL (here a mirror
    on 127.0.0.1) and a file whose sha256 does not start with the published digits is refused."""
    _, paths, _, _ = squeezenet
    entry = manifest.find("squeezenet1_1", True)
    root = tmp_path / "www"
    root.mkdir()
    (root / entry.file).write_bytes(paths["zip"].read_bytes())  # not torchvision's file: its hash differs
    with WeightsServer(root) as server:
        monkeypatch.setenv("KAPPS_TORCHVISION_MIRROR", server.url)
        assert store.download_url(entry) == server.url + entry.file
        with pytest.raises(WeightsIntegrityError, match=f"a sha256 starting with {entry.hash_value}"):
            kapps.SqueezeNet1_1(weights="imagenet", include_top=False)
        assert server.requests == [entry.file]
    assert _cache_files() == []
    monkeypatch.delenv("KAPPS_TORCHVISION_MIRROR")
    assert store.download_url(entry) == "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"
