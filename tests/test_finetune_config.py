"""FineTuneConfig: fine_tune's arguments checked once, with the messages fine_tune gives; the
TensorFlow backend is required before anything else happens."""

from __future__ import annotations

import inspect
import subprocess
import sys

import keras
import pytest

import kapps
from kapps.finetune import FineTuneConfig
from test_finetune_support import python_env, tiny_base


def test_config_fields_are_fine_tunes_parameters_with_the_same_defaults():
    parameters = inspect.signature(kapps.fine_tune).parameters
    fields = {name: p.default for name, p in inspect.signature(FineTuneConfig).parameters.items()}
    assert list(fields) == list(parameters)
    assert fields == {name: p.default for name, p in parameters.items()}


def test_config_normalizes_verbose_rate_augmentation_and_callbacks():
    config = FineTuneConfig(model="mobilenet_v2", train="data", learning_rate=0.02, augmentation=True,
                            verbose=True, callbacks=[keras.callbacks.History()])
    assert config.verbose == 1 and config.fine_tune_learning_rate == pytest.approx(0.002)
    assert [layer.name for layer in config.augment_layers] == [
        "augment_flip", "augment_rotation", "augment_zoom", "augment_contrast"]
    assert isinstance(config.callbacks, tuple) and len(config.callbacks) == 1
    assert FineTuneConfig(model="mobilenet_v2", train="data", verbose="auto").verbose == 1
    assert FineTuneConfig(model="mobilenet_v2", train="data", fine_tune_learning_rate=1e-6).fine_tune_learning_rate == 1e-6
    assert config.phases() == ((1, 5, 0.02), (2, 5, pytest.approx(0.002)))
    with pytest.raises(dataclasses_frozen_error()):
        config.epochs = 3


def dataclasses_frozen_error() -> type:
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("kwargs, message", [
    (dict(verbose=3), r"`verbose` must be 'auto', 0, 1 or 2. Received: verbose=3"),
    (dict(batch_size=0), r"`batch_size` must be an integer > 0. Received: batch_size=0"),
    (dict(batch_size=2.0), r"`batch_size` must be an integer > 0. Received: batch_size=2.0"),
    (dict(epochs=-1), r"`epochs` must be an integer >= 0. Received: epochs=-1"),
    (dict(fine_tune_epochs=True), r"`fine_tune_epochs` must be an integer >= 0. Received: fine_tune_epochs=True"),
    (dict(epochs=0, fine_tune_epochs=0), r"`epochs` and `fine_tune_epochs` are both 0: there is nothing to train"),
    (dict(learning_rate=0), r"`learning_rate` must be a number > 0. Received: learning_rate=0"),
    (dict(fine_tune_learning_rate="low"), r"`fine_tune_learning_rate` must be a number > 0. Received: "
                                          r"fine_tune_learning_rate='low'"),
    (dict(dropout=1.0), r"`dropout` must be a number in \[0, 1\). Received: dropout=1.0"),
    (dict(patience=0), r"`patience` must be an integer > 0. Received: patience=0"),
    (dict(seed=-2), r"`seed` must be None or an integer >= 0. Received: seed=-2"),
    (dict(on_bad_file="ignore"), r"`on_bad_file` must be 'skip' or 'error'. Received: on_bad_file='ignore'"),
    (dict(augmentation="lots"), r"`augmentation` must be False/None, True .* Received: augmentation='lots'"),
    (dict(model=42), r"`model` must be a registry name \(see kapps.list_models\(\)\), a keras.Model or a "
                     r"function returning one. Received: model=42"),
    (dict(model=tiny_base, image_size=32, weights=None, model_options={"alpha": 1.0}),
     r"`weights` and `model_options` apply to a registry name only.*model_options=\{'alpha': 1.0\}"),
    (dict(model=tiny_base), r"`image_size` must be given when `model` is a function"),
])
def test_each_bad_argument_is_refused_by_name(kwargs, message):
    arguments = {"model": "mobilenet_v2", "train": "data", **kwargs}
    with pytest.raises(ValueError, match=message):
        FineTuneConfig(**arguments)


def test_fine_tune_refuses_a_bad_argument_before_touching_the_data(tmp_path):
    with pytest.raises(ValueError, match=r"`patience` must be an integer > 0. Received: patience=1.5"):
        kapps.fine_tune("mobilenet_v2", tmp_path / "no such folder", patience=1.5)


def test_another_keras_backend_is_refused_at_once_saying_how_to_switch(tmp_path):
    code = ("import kapps\n"
            "try:\n"
            "    kapps.fine_tune('mobilenet_v2', 'no-such-folder', batch_size=0)\n"
            "except kapps.finetune.BackendError as e:\n"
            "    print('REFUSED', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=python_env(KERAS_BACKEND="jax"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REFUSED fine_tune needs the TensorFlow backend of Keras" in done.stdout
    assert "the active backend is 'jax'. Set KERAS_BACKEND=tensorflow" in done.stdout
