"""The ``kapps`` command line, run in-process through ``kapps.cli.main([...])``; one subprocess
test proves that --help, list and info never import Keras, one runs the installed entry point."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import pytest

import kapps.cli
from conftest import REPO
from kapps.cli import main, model_index
from kapps.cli.app import COMMANDS

HELP_COMMANDS = [[], ["list"], ["info"], ["predict"], ["validate"], ["weights"], ["weights", "list"], ["weights", "path"],
                 ["weights", "fetch"], ["weights", "verify"], ["convert"], ["fine-tune"], ["bench"], ["export"]]
NOT_COMMANDS = {"__init__", "app", "common", "model_index"}


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "kapps")
def test_help_for_every_command(command, capsys):
    assert main([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: kapps {' '.join(command)}".rstrip())


def test_every_command_module_is_registered(capsys):
    on_disk = {m.name for m in pkgutil.iter_modules(kapps.cli.__path__)} - NOT_COMMANDS
    assert {c.__name__.rpartition(".")[2] for c in COMMANDS} == on_disk
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    rows = out.split("COMMAND\n", 1)[1].split("\n\n")[0].splitlines()
    listed = [line.split()[0] for line in rows if not line.startswith(" " * 5)]  # not wrapped help text
    assert listed == ["list", "info", "predict", "validate", "weights", "convert", "fine-tune", "bench", "export"]


def test_a_missing_command_module_is_an_import_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "kapps.cli.app")
    monkeypatch.delattr(kapps.cli, "bench")
    monkeypatch.setitem(sys.modules, "kapps.cli.bench", None)  # as if bench.py were gone
    with pytest.raises(ImportError, match="kapps.cli.bench"):
        importlib.import_module("kapps.cli.app")


def test_help_list_and_info_never_import_keras():
    code = (
        "import json, sys, time\n"
        "from kapps.cli import main\n"
        "start = time.perf_counter()\n"
        "codes = [main(a) for a in ([ '--help'], ['export', '--help'], ['fine-tune', '--help'], ['list'],\n"
        "                           ['info', 'MobileNetV2'], ['info', 'nope'])]\n"
        "print(json.dumps({'codes': codes, 'seconds': time.perf_counter() - start,\n"
        "                  'loaded': [m for m in ('keras', 'tensorflow') if m in sys.modules]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["codes"] == [0, 0, 0, 0, 0, 2] and out["loaded"] == [], (out, result.stderr)


def test_installed_entry_point_runs(tmp_path):
    script = os.path.join(sys.prefix, "bin", "kapps")
    assert os.path.isfile(script), f"kapps is not installed in {sys.prefix}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    listed = subprocess.run([script, "list", "vgg*"], capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0 and listed.stdout.split()[8:10] == ["vgg16", "VGG16"], listed.stderr
    bad = subprocess.run([script, "frobnicate"], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "invalid choice: 'frobnicate'" in bad.stderr and "Traceback" not in bad.stderr


def test_committed_model_index_equals_the_registry():
    live = json.loads(json.dumps(model_index.generate()))
    assert model_index.load() == live, "kapps/data/model_index.json is stale: run `python -m kapps.cli.model_index`"
    assert list(model_index.load()) == kapps.list_models()


@pytest.mark.parametrize("name", ["no_such_model", "mobilenet_v9", "RESNET", 3])
def test_index_lookup_fails_like_the_registry(name):
    with pytest.raises(ValueError) as expected:
        kapps.model_info(name)
    with pytest.raises(ValueError, match="`name` must be a registered model") as got:
        model_index.find(name)
    said, hint = str(got.value).partition(" Did you mean ")[::2]
    expected_said, expected_hint = str(expected.value).partition(" Did you mean ")[::2]
    assert said == expected_said and len(hint.split(", ")) == len(expected_hint.split(", "))
    lowered = str(name).lower()
    assert all(lowered in c or c in lowered for c in (h.strip("'?") for h in hint.split(", ") if hint))


def test_list_and_info(capsys):
    assert main(["list", "mobilenet*"]) == 0
    out = capsys.readouterr().out
    assert "mobilenet_v2" in out and "MobileNetV2" in out and "3,538,984" in out
    assert main(["info", "MobileNetV2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info == json.loads(json.dumps(kapps.model_info("mobilenet_v2")))
    assert info["name"] == "mobilenet_v2" and info["params"] == 3538984 and info["top1"] == 71.3
    assert any(f["file"] == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" for f in info["weight_files"])
    assert main(["list", "nothing*"]) == 1
    assert "no model matches 'nothing*'" in capsys.readouterr().err


def test_user_errors_exit_2_without_traceback(capsys):
    assert main(["info", "no_such_model"]) == 2
    assert capsys.readouterr().err.startswith("kapps: error: `name` must be a registered model")
    assert main(["predict", "/nonexistent.jpg"]) == 2
    assert "/nonexistent.jpg" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_predict_offline_explains_missing_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(tmp_path / "offline"))
    monkeypatch.setenv("KAPPS_WEIGHTS_MIRROR", "http://127.0.0.1:9/")
    monkeypatch.setenv("KAPPS_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["predict"]) == 3
    err = capsys.readouterr().err
    for fragment in ("missing file: mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                     "tried to download: http://127.0.0.1:9/mobilenet_v2/", "looked in:",
                     str(tmp_path / "offline"), "KAPPS_WEIGHTS_DIR", "kapps weights fetch"):
        assert fragment in err, (fragment, err)


def test_predict_with_weights_file_prints_top_k(tmp_path, capsys):
    import keras
    import skimage.data
    import tensorflow as tf

    from parity import randomize_batch_norm

    reference = keras.applications.MobileNetV2(alpha=0.35, input_shape=(224, 224, 3), weights=None)
    randomize_batch_norm(reference)
    path = tmp_path / "top.h5"
    kapps.weights.write_legacy_h5(reference, path)
    image = tmp_path / "cat.png"
    tf.io.write_file(str(image), tf.io.encode_png(skimage.data.chelsea()))
    # The CLI builds the default MobileNetV2 (alpha 1.0); a 0.35 file must be refused by name.
    assert main(["predict", str(image), "--weights", str(path)]) == 2
    assert "shape mismatch" in capsys.readouterr().err
    # With a matching file, it prints the top-3.
    reference_full = keras.applications.MobileNetV2(weights=None)
    randomize_batch_norm(reference_full)
    kapps.weights.write_legacy_h5(reference_full, path)
    assert main(["predict", str(image), "--weights", str(path), "--top", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["image"] == str(image) and len(rows[0]["top"]) == 3
    x = kapps.mobilenet_v2.preprocess_input(kapps.images.load_image(image, 224)[None])
    expected = kapps.decode_predictions(reference_full.predict(x, verbose=0), top=3)[0]
    assert [r["label"] for r in rows[0]["top"]] == [name for _, name, _ in expected]


def test_weights_commands(shared, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAPPS_WEIGHTS_DIR", str(shared / "weights"))
    assert main(["weights", "path", "mobilenet", "--no-top", "--variant", "alpha=0.25"]) == 0
    assert capsys.readouterr().out.strip() == str(shared / "weights" / "mobilenet_2_5_224_tf_no_top.h5")
    assert main(["weights", "verify", "mobilenet_2_5_224_tf_no_top.h5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK") and "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf" in out
    bad = tmp_path / "mobilenet_2_5_224_tf_no_top.h5"
    bad.write_bytes((shared / "weights" / "mobilenet_2_5_224_tf_no_top.h5").read_bytes()[:-10])
    assert main(["weights", "verify", str(bad)]) == 3
    err = capsys.readouterr().err
    assert "size check failed" in err and "2108140" in err
    assert main(["weights", "list", "mobilenet_v2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 44
