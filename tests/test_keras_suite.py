"""Keras' own tests for keras.applications, run against kapps.

The installed ``applications_test.py`` and ``imagenet_utils_test.py`` (they ship with
keras) are loaded from their installed paths; their imports of the keras.applications
family modules are pointed at ``kapps.<family>`` and ``imagenet_utils`` at
``kapps.imagenet`` before the module runs, so the test bodies, parameters and skips
are Keras' own, unchanged. Their test classes are exposed here for pytest to collect.

Deselected: ``test_application_base`` (it downloads ImageNet weights and a photo);
the channels_first cases of all but the smallest model of each family (the suite's time budget; all
of them with ``KAPPS_FULL_SWEEPS=1``);
its offline counterpart is ``tests/test_application_base.py``. Also deselected, for a
documented deviation asserted below: NASNet with an unknown spatial size (Keras' test
asks for ``input_shape=(None, None, 1)``), which kapps refuses because the cells choose
their adjustment by comparing their two inputs' sizes; Keras builds it, but a model whose
choice was made on unknown sizes cannot run. And ``test_preprocess_input``, whose checks
run below except one: kapps' ``preprocess_input`` leaves a float NumPy input unchanged
(Keras changes it in place).
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

import kapps
import kapps.validation
from kapps.weights.h5io import write_legacy_h5
from parity import randomize_batch_norm

KERAS_APPLICATIONS = Path(keras.__file__).resolve().parent / "src" / "applications"
_KERAS_PACKAGE = "keras.src.applications"
NETWORK_TESTS = ("test_application_base",)
#: Deviations kapps keeps (asserted by the tests at the end of this module).
DEVIATIONS = tuple(f"test_application_notop_variable_input_channels_{app}_channels_last"
                   for app in ("NASNetMobile", "NASNetLarge"))
#: Keras' test_preprocess_input asserts that a float array is changed in place.
UTILS_DEVIATIONS = ("test_preprocess_input",)


class _PointAtKapps(ast.NodeTransformer):
    """``from keras.src.applications import vgg16`` becomes ``from kapps import vgg16``."""

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.module != _KERAS_PACKAGE:
            return node
        for alias in node.names:
            if alias.name == "imagenet_utils":
                alias.name, alias.asname = "imagenet", alias.asname or "imagenet_utils"
            elif not hasattr(kapps, alias.name):
                raise AssertionError(f"kapps has no family module {alias.name!r} (imported by Keras' tests)")
        node.module = "kapps"
        return node


def load_keras_test(filename: str) -> types.ModuleType:
    """Run the installed Keras test file ``filename`` with its family imports pointed at kapps."""
    path = KERAS_APPLICATIONS / filename
    tree = ast.fix_missing_locations(_PointAtKapps().visit(ast.parse(path.read_text(encoding="utf-8"))))
    module = types.ModuleType(f"keras_suite_{path.stem}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    exec(compile(tree, str(path), "exec"), module.__dict__)
    return module


def channels_first_models() -> set[str]:
    """The Keras names whose channels_first cases run: the smallest model of each keras.applications family
    (every model with ``KAPPS_FULL_SWEEPS=1``). The channels_first cases of the other 25 models cost about
    330 s of the suite's CPU time; their blocks are their family's, and channels_last runs for all 40."""
    from kapps.registry import get_spec
    from parity import full_sweeps, smallest_of_each_family

    names = [n for n in kapps.list_models() if hasattr(keras.applications, get_spec(n).keras_name)]
    chosen = names if full_sweeps() else smallest_of_each_family(names)
    return {get_spec(n).keras_name for n in chosen}


def _deselect(cls: type) -> type:
    """Remove the network tests, the deviations and the channels_first cases of the models left to
    ``KAPPS_FULL_SWEEPS=1`` (:func:`channels_first_models`)."""
    names = [a for a in vars(cls) if a.startswith(NETWORK_TESTS) or a in DEVIATIONS]
    assert len([a for a in names if a in DEVIATIONS]) == len(DEVIATIONS), "Keras' test names changed"
    kept = channels_first_models()
    names += [a for a in vars(cls) if a.startswith("test_") and a.endswith("_channels_first")
              and a[:-len("_channels_first")].rsplit("_", 1)[-1] not in kept]
    for attr in set(names):
        delattr(cls, attr)
    return cls


_applications = load_keras_test("applications_test.py")
_imagenet_utils = load_keras_test("imagenet_utils_test.py")

ApplicationsTest = _deselect(_applications.ApplicationsTest)
# keras' imagenet_utils also holds obtain_input_shape; kapps keeps it with the other input checks.
_imagenet_utils.utils = types.SimpleNamespace(preprocess_input=kapps.imagenet.preprocess_input,
                                              obtain_input_shape=kapps.validation.obtain_input_shape)
TestImageNetUtils = _imagenet_utils.TestImageNetUtils
for _name in UTILS_DEVIATIONS:
    delattr(TestImageNetUtils, _name)


def test_the_suite_runs_on_kapps_models():
    """The loaded suite's model list is kapps' constructors: all 40 keras.applications models."""
    apps = [entry[0] for entry in _applications.MODEL_LIST]
    assert len(apps) == 40
    assert all(app.__module__.startswith("kapps.models.") for app in apps)
    assert _imagenet_utils.utils.preprocess_input is kapps.imagenet.preprocess_input


@pytest.mark.parametrize("app", [kapps.NASNetMobile, kapps.NASNetLarge])
def test_nasnet_unknown_size_is_refused_and_static_sizes_take_any_channels(app):
    """The deviation: unknown sizes are refused by name; Keras' 1- and 4-channel checks at a static size."""
    with pytest.raises(ValueError, match=r"`input_shape` must be static .*Received: input_shape=\(None, None, 1\)"):
        app(weights=None, include_top=False, input_shape=(None, None, 1))
    last_dim = 1056 if app is kapps.NASNetMobile else 4032
    for channels in (1, 4):
        model = app(weights=None, include_top=False, input_shape=(64, 64, channels))
        assert list(model.outputs[0].shape) == [None, 2, 2, last_dim]


def _user_graph(size: int) -> tuple:
    """A user's graph whose layers take the names kapps reproduces (``conv2d``, ``batch_normalization``, ...).

    The named Conv2D is the identity, so a model on top of it computes what it computes on the input.
    """
    inputs = keras.Input((size, size, 3), name="custom_input")
    conv = keras.layers.Conv2D(3, 1, name="conv2d")
    x = conv(inputs)
    conv.set_weights([np.eye(3, dtype="float32")[None, None], np.zeros(3, "float32")])
    for name in ("batch_normalization", "add", "activation", "max_pooling2d"):
        x = keras.layers.Activation("linear", name=name)(x)
    return inputs, x


@pytest.mark.parametrize("app, size", [(kapps.InceptionV3, 75), (kapps.InceptionResNetV2, 75),
                                       (kapps.Xception, 71), (kapps.ResNet50V2, 32)])
def test_auto_names_never_collide_with_the_input_tensor_graph(app, size):
    _, tensor = _user_graph(size)
    model = app(weights=None, include_top=False, input_tensor=tensor)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert model.get_layer("conv2d").kernel.shape == (1, 1, 3, 3)  # the user's layer kept its name


def test_weights_load_past_the_input_tensor_graph(tmp_path):
    """A file saved without input_tensor loads into the model built on a colliding graph (the user's layers untouched)."""
    reference = kapps.Xception(weights=None, include_top=False, input_shape=(71, 71, 3))
    randomize_batch_norm(reference)
    write_legacy_h5(reference, tmp_path / "xception.h5")
    inputs, tensor = _user_graph(71)
    model = kapps.Xception(weights=str(tmp_path / "xception.h5"), include_top=False, input_tensor=tensor)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 71, 71, 3)).astype("float32")
    np.testing.assert_allclose(model(x), reference(x), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(model.get_layer("conv2d").get_weights()[0], np.eye(3)[None, None])


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_preprocess_input_as_keras_but_leaves_its_input_unchanged(mode):
    """Keras' test_preprocess_input checks, with kapps' copy in place of Keras' in-place update."""
    rng = np.random.default_rng(0)
    for shape, first in (((2, 10, 10, 3), (0, 3, 1, 2)), ((10, 10, 3), (2, 0, 1))):
        x = rng.uniform(0, 255, shape)
        for array in (x, x.astype("int32")):
            kept = array.copy()
            out = kapps.imagenet.preprocess_input(array, "channels_last", mode=mode)
            out_first = kapps.imagenet.preprocess_input(np.transpose(array, first), "channels_first", mode=mode)
            assert out.shape == array.shape
            np.testing.assert_allclose(out, np.transpose(out_first, np.argsort(first)), rtol=1e-6, atol=1e-5)
            np.testing.assert_array_equal(array, kept)
            reference = getattr(keras.applications, "imagenet_utils").preprocess_input(array.copy(), mode=mode)
            np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        kapps.imagenet.preprocess_input(x, mode="some_unknown_mode")
