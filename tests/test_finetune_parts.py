"""The parts fine_tune is assembled from, one job each: freezing, the data-split policy and class
weights, the callbacks of a phase, and the atomic files of checkpoints and plots."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kapps.finetune import TrainingDivergedError, set_trainable
from kapps.finetune import checkpoint as ckpt_lib
from kapps.finetune import data as data_lib
from kapps.finetune import plots
from kapps.finetune.callbacks import EpochClock, NanGuard, PhaseKeeper, fresh_monitor
from kapps.finetune.freezing import cut_index, weighted_layers
from kapps.finetune.loop import RunState
from test_finetune_support import make_image_folder, tiny_base


@pytest.fixture(scope="module")
def base():
    return tiny_base(32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("parts") / "data", per_class=10, size=16)


# -- freezing -------------------------------------------------------------------------------------


def test_weighted_layers_and_each_kind_of_cut(base):
    layers = weighted_layers(base)
    assert [layer.name for layer in layers] == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3"]
    assert cut_index(layers, base, "all") == 0
    assert cut_index(layers, base, 0.5) == 3
    assert cut_index(layers, base, 0.01) == 5  # at least one layer
    assert cut_index(layers, base, 2) == 4
    assert cut_index(layers, base, "conv2") == 2
    assert cut_index(layers, base, "bn") == 1  # a prefix: the first layer whose name starts with it


def test_a_block_name_cuts_at_its_first_weighted_layer():
    block = keras.Sequential([keras.layers.Dense(4, name="inner_a"), keras.layers.Dense(4, name="inner_b")],
                             name="block_2")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="first"), block], name="nested")
    assert cut_index(weighted_layers(model), model, "block_2") == 1


@pytest.mark.parametrize("unfreeze, message", [
    (True, r"`unfreeze` must be a fraction in \(0, 1\], a number of layers, 'all', or a layer or block name. "
           r"Received: unfreeze=True"),
    (0.0, r"`unfreeze` as a fraction must be in \(0, 1\]. Received: unfreeze=0.0"),
    (7, r"`unfreeze` as a number of layers \(with weights\) must be in \[1, 6\]. Received: unfreeze=7"),
    ("head", r"`unfreeze` names no layer or block of 'tiny_base'. Received: unfreeze='head'; layer names with "
             r"weights run from 'conv1' to 'bn3'"),
    ([1], r"`unfreeze` must be a fraction .* Received: unfreeze=\[1\]"),
])
def test_a_bad_unfreeze_is_refused_by_name(base, unfreeze, message):
    with pytest.raises(ValueError, match=message):
        cut_index(weighted_layers(base), base, unfreeze)


def test_set_trainable_freezes_the_base_then_unfreezes_its_top_without_batch_norm(base):
    assert set_trainable(base, 1) == "head only" and not base.trainable_weights
    described = set_trainable(base, 2, unfreeze="conv2")
    assert described == "unfreeze='conv2': 2 layers with weights from 'conv2' on (BatchNorm frozen)"
    assert {layer.name for layer in weighted_layers(base) if layer.trainable} == {"conv2", "conv3"}
    with pytest.raises(ValueError, match=r"`unfreeze`=1 leaves no layer to train in phase 2"):
        set_trainable(base, 2, unfreeze=1)  # only bn3


# -- the data-split policy and class weights ------------------------------------------------------


def _dataset(n=10):
    images = np.zeros((n, 16, 16, 3), "uint8")
    return tf.data.Dataset.from_tensor_slices((images, np.arange(n) % 2))


def test_a_folder_without_validation_holds_out_a_fifth_of_each_class(folder):
    split = data_lib.prepare_data(folder, None, "auto", (16, 16), seed=3)
    assert np.bincount(split.validation.labels).tolist() == [2, 2]
    assert np.bincount(split.train.labels).tolist() == [8, 8]
    assert split.notes[-1] == ("validation: 4 images (20% of each class of `train`, seed 3) held out from training")
    assert data_lib.prepare_data(folder, None, None, (16, 16)).validation is None


def test_a_dataset_is_split_only_on_request_and_from_its_start():
    assert data_lib.prepare_data(_dataset(), None, "auto", (16, 16)).validation is None
    split = data_lib.prepare_data(_dataset(), None, 0.3, (16, 16))
    assert (split.train.size, split.validation.size) == (7, 3)
    assert split.validation.labels.tolist() == [0, 1, 0] and split.train.labels.tolist() == [1, 0, 1, 0, 1, 0, 1]
    assert "the first 3 elements of the `train` dataset (30%) are held out" in split.notes[-1]


def test_given_validation_data_is_used_as_it_is():
    split = data_lib.prepare_data(_dataset(), _dataset(4), "auto", (16, 16), class_names=["a", "b"])
    assert (split.train.size, split.validation.size) == (10, 4)
    assert split.validation.class_names == ["a", "b"]


@pytest.mark.parametrize("validation, fraction, message", [
    ("given", 0.2, r"`validation_split` must be 'auto' or None when `validation` is given \(pass one of them\). "
                   r"Received: validation_split=0.2"),
    (None, 1.5, r"`validation_split` must be 'auto', None or a number between 0 and 1 \(exclusive\). "
                r"Received: validation_split=1.5"),
    (None, 0.99, r"`validation_split`=0.99 leaves no training data \(10 images\)."),
])
def test_a_bad_split_is_refused_by_name(validation, fraction, message):
    with pytest.raises(ValueError, match=message):
        data_lib.prepare_data(_dataset(), _dataset(4) if validation else None, fraction, (16, 16))


def test_class_weights_balanced_and_by_name_or_index():
    source = data_lib.prepare_data(_dataset(), None, None, (16, 16), class_names=["a", "b"]).train
    assert data_lib.class_weights(None, source) is None
    np.testing.assert_allclose(data_lib.class_weights("balanced", source), [1.0, 1.0])
    np.testing.assert_allclose(data_lib.class_weights({"b": 3.0}, source), [1.0, 3.0])
    np.testing.assert_allclose(data_lib.class_weights({0: 0.5}, source), [0.5, 1.0])
    with pytest.raises(ValueError, match=r"`class_weight` keys must be class names \['a', 'b'\] or indices 0..1. "
                                         r"Received: key 'c'"):
        data_lib.class_weights({"c": 1.0}, source)


# -- the callbacks of a phase ---------------------------------------------------------------------


def _fit(callbacks, x, epochs=3):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    y = np.arange(len(x)) % 2
    model.fit(x, y, batch_size=2, epochs=epochs, validation_data=(x, y), callbacks=callbacks, verbose=0,
              shuffle=False)
    return model


def test_the_nan_guard_stops_at_the_first_bad_batch():
    x = np.ones((6, 2), "float32")
    x[3, 0] = np.nan  # the second batch
    guard, clock = NanGuard(), EpochClock()
    model = _fit([clock, guard], x)
    assert guard.where == (0, 1) and np.isnan(guard.value) and model.stop_training
    assert clock.seconds > 0


def test_the_phase_keeper_records_history_keeps_the_best_and_stops_early():
    run = RunState(ckpt_lib.Checkpointer(None, {}), "val_loss", patience=1, state={"seed": 0})
    monitor = {**fresh_monitor(), "best": -1.0}  # a best no epoch can beat: every epoch waits
    clock, guard = EpochClock(), NanGuard()
    keeper = PhaseKeeper(run, 2, monitor, clock, guard, images_per_epoch=6)
    _fit([clock, guard, keeper], np.ones((6, 2), "float32"), epochs=3)
    assert run.history["phase"] == [2] and run.history["epoch"] == [1] and run.phase_epochs == [0, 1]
    assert monitor["stopped"] and monitor["wait"] == 1 and monitor["best_epoch"] == 0
    assert run.history["images"] == [6] and run.history["val_loss"][0] > 0
    fresh = fresh_monitor()
    run2 = RunState(ckpt_lib.Checkpointer(None, {}), "val_loss", patience=None, state={"seed": 0})
    _fit([clock, guard, PhaseKeeper(run2, 1, fresh, clock, guard, 6)], np.ones((6, 2), "float32"), epochs=2)
    assert fresh["best_epoch"] in (1, 2) and run2.best_arrays is not None and not fresh["stopped"]


def test_the_phase_keeper_refuses_a_non_finite_monitored_loss():
    run = RunState(ckpt_lib.Checkpointer(None, {}), "missing_metric", patience=None, state={"seed": 0})
    clock, guard = EpochClock(), NanGuard()
    with pytest.raises(TrainingDivergedError, match=r"the monitored missing_metric is None after phase 1, epoch 1"):
        _fit([clock, guard, PhaseKeeper(run, 1, fresh_monitor(), clock, guard, 6)], np.ones((6, 2), "float32"))


# -- atomic files ---------------------------------------------------------------------------------


def test_checkpoint_files_are_written_whole_and_unnamed_ones_removed(tmp_path):
    ckpt = ckpt_lib.Checkpointer(tmp_path / "ckpt", {"a": 1})
    ckpt.save_arrays("ckpt-p1-e001.npz", [np.arange(3.0)], [np.ones(2)])
    ckpt.save_arrays("ckpt-p1-e002.npz", [np.arange(4.0)])
    ckpt.save_state({"phase": 1, "epoch": 2, "checkpoint": "ckpt-p1-e002.npz", "monitor": fresh_monitor()})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["ckpt-p1-e002.npz", "state.json"]
    model, optimizer = ckpt.load_arrays("ckpt-p1-e002.npz")
    np.testing.assert_array_equal(model[0], np.arange(4.0))
    assert optimizer is None
    assert ckpt.load_state()["epoch"] == 2


def test_plots_are_written_atomically_into_a_new_folder(tmp_path):
    history = {"phase": [1, 2], "loss": [1.0, 0.5], "accuracy": [0.5, 0.8]}
    path = plots.plot_history(history, tmp_path / "new" / "curves.png")
    assert path == str(tmp_path / "new" / "curves.png")
    assert (tmp_path / "new" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["curves.png"]


def test_the_public_names_stay_importable_from_kapps_finetune():
    import kapps.finetune as finetune
    from kapps.finetune.train import set_trainable as from_train  # the path notebook 03 uses

    names = ["fine_tune", "evaluate", "FineTuneResult", "EvaluationReport", "TrainingDivergedError",
             "CheckpointMismatchError", "BadImageError", "BadImageWarning", "ImagePreprocessing", "build_classifier",
             "set_trainable", "resolve_strategy", "resolve_precision"]
    assert set(names) <= set(finetune.__all__) and all(callable(getattr(finetune, name)) for name in names)
    assert from_train is finetune.set_trainable and issubclass(finetune.TrainingDivergedError, FloatingPointError)
