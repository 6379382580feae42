"""``kapps fine-tune DATA_DIR ... --out DIR`` writes the model, the report and the plots, and resumes."""

from __future__ import annotations

import argparse
import json

import keras
import numpy as np

from kapps.cli import fine_tune as cli_finetune
from test_finetune_evaluate import assert_valid_png
from test_finetune_support import make_image_folder, tiny_base


def test_add_parser_registers_the_subcommand():
    parser = argparse.ArgumentParser(prog="kapps")
    cli_finetune.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fine-tune", "data", "--out", "runs/x", "--epochs", "2", "4", "--unfreeze", "block_13"])
    assert args.func is cli_finetune.run and args.epochs == [2, 4] and args.unfreeze == "block_13"
    assert parser.parse_args(["fine-tune", "d", "--out", "o", "--unfreeze", "0.5"]).unfreeze == 0.5
    assert parser.parse_args(["fine-tune", "d", "--out", "o", "--unfreeze", "20"]).unfreeze == 20
    assert parser.parse_args(["fine-tune", "d", "--out", "o", "--weights", "none"]).weights is None


def test_split_data_dir(tmp_path):
    make_image_folder(tmp_path / "flat", per_class=1)
    assert cli_finetune.split_data_dir(str(tmp_path / "flat"), None) == (str(tmp_path / "flat"), None)
    make_image_folder(tmp_path / "both" / "train", per_class=1)
    make_image_folder(tmp_path / "both" / "val", per_class=1)
    assert cli_finetune.split_data_dir(str(tmp_path / "both"), None) == (
        str(tmp_path / "both" / "train"), str(tmp_path / "both" / "val"))


def test_fine_tune_command_writes_model_report_plots_and_resumes(tmp_path, capsys):
    make_image_folder(tmp_path / "data" / "train", per_class=12, size=32)
    make_image_folder(tmp_path / "data" / "val", per_class=4, size=32, seed=1)
    base = tmp_path / "base.keras"
    tiny_base(32).save(base)
    out = tmp_path / "out"
    argv = [str(tmp_path / "data"), "--model", str(base), "--preprocessing", "tf", "--epochs", "2", "1",
            "--batch-size", "4", "--lr", "0.01", "--seed", "0", "--out", str(out), "--verbose", "2"]
    assert cli_finetune.main(argv) == 0
    printed = capsys.readouterr().out
    assert "validation data" in printed and "Epoch 2/2" in printed and "confusion matrix" in printed
    for name in ("model.keras", "report.json", "report.txt", "history.json", "class_names.json"):
        assert (out / name).is_file(), name
    for name in ("training_curves.png", "confusion_matrix.png", "predictions.png"):
        assert_valid_png(out / name)
    report = json.loads((out / "report.json").read_text())
    assert report["num_samples"] == 8 and report["class_names"] == ["blue", "red"]
    history = json.loads((out / "history.json").read_text())
    assert history["phase"] == [1, 1, 2]
    model = keras.saving.load_model(out / "model.keras")
    assert model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0).shape == (1, 2)
    assert json.loads((out / "checkpoints" / "state.json").read_text())["done"]

    assert cli_finetune.main(argv) == 0  # the same command again: the finished run is reloaded
    again = capsys.readouterr().out
    assert "Resuming from" in again and "a finished run" in again


def test_errors_are_printed_without_traceback(tmp_path, capsys):
    make_image_folder(tmp_path / "one", classes=("ants",), per_class=2)
    status = cli_finetune.main([str(tmp_path / "one"), "--out", str(tmp_path / "out"), "--verbose", "0"])
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("kapps fine-tune: error: `train` must hold at least 2 class sub-folders")
    assert "Traceback" not in error
