"""The classic architectures keras.applications lacks: LeNet-5, AlexNet, GoogLeNet.

They have no keras.applications twin (so tests/test_parity.py skips them) and no
ImageNet weights; these tests check them against their papers instead: parameter counts
derived by hand, a real training run (LeNet-5 on scikit-learn's digits), and one
training step that lowers the loss.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

import kapps
from kapps.blocks import LocalResponseNormalization
from kapps.tools.flops import count_flops
from kapps.registry import get_spec

CLASSICS = ("lenet5", "alexnet", "googlenet")


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def _loss_before_and_after_one_step(model, x, y, outputs=1, loss_weights=None):
    """Loss (inference mode, so dropout is off) before and after one SGD step on (x, y)."""
    loss = "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=[loss] * outputs if outputs > 1 else loss,
                  loss_weights=loss_weights)
    targets = [y] * outputs if outputs > 1 else y
    before = model.evaluate(x, targets, verbose=0)
    model.train_on_batch(x, targets)
    after = model.evaluate(x, targets, verbose=0)
    return np.atleast_1d(before), np.atleast_1d(after)


def _random_batch(size, classes=10, count=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (count, size, size, 3)).astype("float32"), np.arange(count) % classes


# -- LeNet-5 ------------------------------------------------------------------------------

def test_lenet5_learns_handwritten_digits():
    """LeNet-5 from scratch, with ``fit``, on scikit-learn's bundled digits: >= 97% held out.

    The 8x8 digits (values 0-16) are scaled to [0, 255], upsampled to 32x32 (nearest),
    preprocessed with ``kapps.lenet.preprocess_input`` ("tf": [-1, 1]), and split 75/25
    (stratified, fixed seed). Training: Adam 3e-3 with cosine decay, 20 epochs of batch
    32, random shifts of up to 6% (LeCun et al. also trained on distorted digits). It
    takes about 20-25 s on 2 CPU cores and reaches 98.2% on the 450 held-out digits.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(0)
    digits = load_digits()
    images = np.kron(digits.images / 16.0 * 255.0, np.ones((4, 4)))[..., None].astype("float32")
    x = kapps.lenet.preprocess_input(images)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    model = kapps.LeNet5()
    assert model.input_shape == (None, 32, 32, 1) and model.output_shape == (None, 10)
    trainer = keras.Sequential([
        keras.Input((32, 32, 1)),
        keras.layers.RandomTranslation(0.06, 0.06, fill_mode="constant", fill_value=-1.0),
        model,
    ])
    epochs, batch = 20, 32
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * int(np.ceil(len(x_train) / batch)))
    trainer.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    start = time.perf_counter()
    trainer.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.4f} after {seconds:.1f} s of training"


@pytest.mark.fast
def test_lenet5_paper_size_and_parameter_count():
    """61,706 parameters at 32x32x1 and 10 classes (fully connected C3, Dense output).

    C1 5*5*1*6+6 = 156, C3 5*5*6*16+16 = 2,416, C5 (5*5*16)*120+120 = 48,120,
    F6 120*84+84 = 10,164, output 84*10+10 = 850.
    """
    model = kapps.LeNet5()
    assert model.count_params() == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706 == get_spec("lenet5").params
    assert [layer.name for layer in model.layers if layer.weights] == ["c1", "c3", "c5", "f6", "predictions"]
    assert model.get_layer("s2").output.shape[1:] == (14, 14, 6)
    assert model.get_layer("s4").output.shape[1:] == (5, 5, 16)


@pytest.mark.fast
@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_lenet5_pads_28_pixel_inputs_to_32(builder):
    """28x28 (MNIST) inputs are zero-padded by 2 pixels per side: same network, same parameters."""
    model = kapps.LeNet5(input_shape=(28, 28, 1), builder=builder)
    assert model.count_params() == 61_706
    assert model.output_shape == (None, 10)
    flat = kapps.LeNet5(input_shape=(28, 28, 1))
    assert flat.get_layer("pad").output.shape[1:] == (32, 32, 1)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 1)).astype("float32")
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    at_32 = kapps.LeNet5()
    kapps.weights.copy_weights_by_name(model, at_32)
    np.testing.assert_allclose(model(x), at_32(padded), atol=1e-6)
    assert kapps.LeNet5(input_shape=(32, 32, 1)).get_layer("c1").input.shape[1:] == (32, 32, 1)


@pytest.mark.fast
def test_lenet5_without_top_and_other_channels():
    assert kapps.LeNet5(include_top=False).output_shape == (None, None, None, 16)
    assert kapps.LeNet5(include_top=False, input_shape=(32, 32, 1)).output_shape == (None, 5, 5, 16)
    assert kapps.LeNet5(include_top=False, pooling="avg", input_shape=(32, 32, 3)).output_shape == (None, 16)
    with pytest.raises(ValueError, match="input_shape"):
        kapps.LeNet5(input_shape=(20, 20, 1))


# -- AlexNet ------------------------------------------------------------------------------

def test_alexnet_paper_size_and_parameter_count():
    """The original two-tower AlexNet at 227x227x3 and 1000 classes: 60,965,224 parameters.

    The two GPUs are grouped convolutions: conv2, conv4 and conv5 see half the input
    maps (their own tower's), conv3 and the dense layers see all of them. Weights +
    biases per layer:

    conv1 11*11*3*96 + 96 = 34,944; conv2 5*5*48*256 + 256 = 307,456;
    conv3 3*3*256*384 + 384 = 885,120; conv4 3*3*192*384 + 384 = 663,936;
    conv5 3*3*192*256 + 256 = 442,624; fc6 6*6*256*4096 + 4096 = 37,752,832;
    fc7 4096*4096 + 4096 = 16,781,312; fc8 4096*1000 + 1000 = 4,097,000.
    Sum: 60,965,224 (the paper's "60 million parameters").
    """
    model = kapps.AlexNet()
    expected = {
        "conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936, "conv5": 442_624,
        "fc6": 37_752_832, "fc7": 16_781_312, "predictions": 4_097_000,
    }
    assert {layer.name: layer.count_params() for layer in model.layers if layer.weights} == expected
    assert model.count_params() == sum(expected.values()) == 60_965_224 == get_spec("alexnet").params
    assert model.input_shape == (None, 227, 227, 3) and model.output_shape == (None, 1000)
    sizes = {name: model.get_layer(name).output.shape[1:] for name in ("conv1", "pool1", "pool2", "conv5", "pool5")}
    assert sizes == {"conv1": (55, 55, 96), "pool1": (27, 27, 96), "pool2": (13, 13, 256),
                     "conv5": (13, 13, 256), "pool5": (6, 6, 256)}
    assert [model.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    assert isinstance(model.get_layer("norm1"), LocalResponseNormalization)
    assert [model.get_layer(n).rate for n in ("drop6", "drop7")] == [0.5, 0.5]
    assert count_flops(model) == get_spec("alexnet").flops


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_alexnet_one_training_step_lowers_the_loss(builder):
    """One SGD step on a random batch at 99 px (10 classes) lowers its loss."""
    keras.utils.set_random_seed(0)
    x, y = _random_batch(99)
    model = kapps.AlexNet(input_shape=(99, 99, 3), classes=10, builder=builder)
    assert len(model.trainable_weights) == 16
    before, after = _loss_before_and_after_one_step(model, x, y)
    assert after[0] < before[0], (before, after)


# -- GoogLeNet ----------------------------------------------------------------------------

def test_googlenet_paper_size_and_parameter_count():
    """GoogLeNet at 224x224x3 and 1000 classes: 6,998,552 parameters, derived from Table 1.

    Conv layers have biases. conv1 7*7*3*64 + 64 = 9,472; conv2 1x1 reduce 64*64 + 64 =
    4,160 and 3x3 9*64*192 + 192 = 110,784. An inception module with ``c`` input channels
    and Table 1 columns (#1x1 n1, #3x3 reduce r3, #3x3 n3, #5x5 reduce r5, #5x5 n5, pool
    proj p) has ``c*(n1 + r3 + r5 + p) + 9*r3*n3 + 25*r5*n5`` weights and
    ``n1 + r3 + n3 + r5 + n5 + p`` biases; its output has ``n1 + n3 + n5 + p`` channels.
    3a 163,696; 3b 388,736; 4a 376,176; 4b 449,160; 4c 510,104; 4d 605,376;
    4e 868,352; 5a 1,043,456; 5b 1,444,080; linear 1024*1000 + 1000 = 1,025,000.
    Sum: 6,998,552.
    """
    model = kapps.GoogLeNet()
    table = {  # Table 1: input channels, then n1, r3, n3, r5, n5, p
        "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
        "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
        "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
        "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
        "5b": (832, 384, 192, 384, 48, 128, 128),
    }
    derived = {"3a": 163_696, "3b": 388_736, "4a": 376_176, "4b": 449_160, "4c": 510_104,
               "4d": 605_376, "4e": 868_352, "5a": 1_043_456, "5b": 1_444_080}
    for name, (c, n1, r3, n3, r5, n5, p) in table.items():
        formula = c * (n1 + r3 + r5 + p) + 9 * r3 * n3 + 25 * r5 * n5 + (n1 + r3 + n3 + r5 + n5 + p)
        in_model = sum(layer.count_params() for layer in model.layers if layer.name.startswith(f"inception_{name}_"))
        assert formula == derived[name] == in_model, name
        output = model.get_layer(f"inception_{name}_output").output
        assert output.shape[-1] == n1 + n3 + n5 + p
    stem = 9_472 + 4_160 + 110_784
    assert model.count_params() == stem + sum(derived.values()) + 1_025_000 == 6_998_552 == get_spec("googlenet").params
    sizes = [model.get_layer(n).output.shape[1] for n in ("conv1_7x7_s2", "pool1_3x3_s2", "pool2_3x3_s2",
                                                            "pool3_3x3_s2", "pool4_3x3_s2")]
    assert sizes == [112, 56, 28, 14, 7]
    assert model.get_layer("dropout").rate == 0.4
    assert count_flops(model) == get_spec("googlenet").flops


def test_googlenet_auxiliary_classifiers_at_paper_size():
    """Each auxiliary classifier: 5x5/3 average pool (14 -> 4), 1x1 conv 128, fc 1024, dropout 0.7, linear.

    Parameters: on 4a (512 channels) 512*128 + 128 = 65,664, fc 4*4*128*1024 + 1024 =
    2,098,176, linear 1024*1000 + 1000 = 1,025,000: 3,188,840; on 4d (528 channels)
    67,712 + 2,098,176 + 1,025,000 = 3,190,888. With both: 6,998,552 + 6,379,728 = 13,378,280.
    """
    model = kapps.GoogLeNet(aux_classifiers=True)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 1000)] * 3
    assert model.count_params() == 6_998_552 + 3_188_840 + 3_190_888 == 13_378_280
    assert model.get_layer("aux1_pool").output.shape[1:] == (4, 4, 512)
    assert model.get_layer("aux2_pool").output.shape[1:] == (4, 4, 528)
    assert model.get_layer("aux1_dropout").rate == 0.7


@pytest.mark.parametrize("builder", ["functional", "sequential"])
def test_googlenet_one_training_step_lowers_the_loss(builder):
    """One SGD step on a random batch at 96 px (10 classes) lowers its loss."""
    keras.utils.set_random_seed(0)
    x, y = _random_batch(96)
    model = kapps.GoogLeNet(input_shape=(96, 96, 3), classes=10, builder=builder)
    before, after = _loss_before_and_after_one_step(model, x, y)
    assert after[0] < before[0], (before, after)


def test_googlenet_one_training_step_with_auxiliary_classifiers_lowers_the_loss():
    """With the auxiliary classifiers on (loss weights 1, 0.3, 0.3 as in the paper), one step
    lowers the total loss and each output's own loss."""
    keras.utils.set_random_seed(0)
    x, y = _random_batch(96)
    model = kapps.GoogLeNet(input_shape=(96, 96, 3), classes=10, aux_classifiers=True)
    before, after = _loss_before_and_after_one_step(model, x, y, outputs=3, loss_weights=[1.0, 0.3, 0.3])
    assert len(before) == 4  # total, main, aux1, aux2
    assert np.all(after < before), (before, after)


@pytest.mark.fast
def test_googlenet_auxiliary_classifier_misuse_is_refused():
    with pytest.raises(ValueError, match="builder='functional'"):
        kapps.GoogLeNet(aux_classifiers=True, builder="sequential")
    with pytest.raises(ValueError, match="include_top=True"):
        kapps.GoogLeNet(aux_classifiers=True, include_top=False)
    with pytest.raises(ValueError, match="at least 65x65"):
        kapps.GoogLeNet(aux_classifiers=True, input_shape=(48, 48, 3))
    with pytest.raises(ValueError, match="aux_classifiers"):
        kapps.GoogLeNet(aux_classifiers="yes")


def test_googlenet_with_auxiliary_classifiers_loads_its_own_weight_file(tmp_path):
    source = kapps.GoogLeNet(aux_classifiers=True, input_shape=(96, 96, 3), classes=10)
    path = tmp_path / "googlenet_aux.h5"
    kapps.weights.write_legacy_h5(source, path)
    loaded = kapps.GoogLeNet(aux_classifiers=True, input_shape=(96, 96, 3), classes=10, weights=str(path))
    x, _ = _random_batch(96, count=2)
    for a, b in zip(source(x), loaded(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)


# -- shared behaviour ---------------------------------------------------------------------

@pytest.mark.fast
@pytest.mark.parametrize("name", CLASSICS)
def test_imagenet_weights_are_refused_clearly(name):
    """The papers' networks have no ImageNet weights: LeNet-5's refusal is the manifest's (naming the model and
    the argument); AlexNet's and GoogLeNet's paper variants name ``variant`` (their ImageNet weights are
    torchvision's variant's: tests/test_torchvision_classics.py)."""
    if name == "lenet5":
        with pytest.raises(ValueError, match=rf"`weights` must be None or a file path for {name}: it has no official"):
            kapps.get_model(name, weights="imagenet")
        with pytest.raises(ValueError, match="no official ImageNet weights"):
            kapps.get_model(name, weights="imagenet", include_top=False)
        return
    for include_top in (True, False):
        with pytest.raises(ValueError, match=r"needs variant='torchvision'.*paper variant has no ImageNet weights"):
            kapps.get_model(name, weights="imagenet", include_top=include_top, variant="paper")


@pytest.mark.parametrize("name", CLASSICS)
def test_registry_metadata(name):
    """The registry describes the papers' networks, the defaults; AlexNet and GoogLeNet list torchvision's
    checkpoint (of their torchvision variant) among their weight files."""
    info = kapps.model_info(name)
    assert info["imagenet_weights"] is (name != "lenet5")
    assert [f["variant"] for f in info["weight_files"]] == ([] if name == "lenet5" else ["torchvision"])
    assert info["top1"] is None and info["top5"] is None
    assert info["preprocessing"] == {"lenet5": "tf", "alexnet": "torch", "googlenet": "tf"}[name]
    assert info["reference"]
    assert kapps.get_model(get_spec(name).keras_name).name == name  # by Keras-style name, weights=None default


@pytest.mark.fast
@pytest.mark.parametrize("name", CLASSICS)
def test_sequential_builder_matches_functional(name):
    """Both builders hold the same layers: weights copied by name give the same outputs."""
    size = {"lenet5": 32, "alexnet": 99, "googlenet": 64}[name]
    channels = get_spec(name).input_channels
    functional = kapps.get_model(name, input_shape=(size, size, channels), classes=7)
    sequential = kapps.get_model(name, input_shape=(size, size, channels), classes=7, builder="sequential")
    assert isinstance(sequential, keras.Sequential)
    kapps.weights.copy_weights_by_name(functional, sequential)
    x = np.random.default_rng(1).uniform(-1, 1, (2, size, size, channels)).astype("float32")
    np.testing.assert_allclose(functional(x), sequential(x), atol=1e-6)


@pytest.mark.fast
def test_local_response_normalization_matches_tensorflow():
    import tensorflow as tf

    x = np.random.default_rng(0).normal(0, 3, (2, 4, 4, 11)).astype("float32")
    ours = LocalResponseNormalization(size=5, bias=2.0, alpha=1e-4, beta=0.75)(x)
    reference = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="size"):
        LocalResponseNormalization(size=4)


# -- features_only ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet5", "alexnet", "googlenet"])
def test_features_are_the_full_models_own_layers(name):
    """No reference model has their weights: the feature maps of both builders equal the layers
    they name in the full kapps model (random weights), at a size every level reaches."""
    from parity import check_features

    size = {"lenet5": 32, "alexnet": 99, "googlenet": 96}[name]
    spec = get_spec(name)
    full = kapps.get_model(name, weights=None, input_shape=(size, size, spec.input_channels))
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, spec.input_channels)).astype("float32")
    for builder in ("functional", "sequential"):
        check_features(name, builder, full, x, lambda taps: keras.Model(
            full.input, [full.get_layer(n).output for n, _, _ in taps])(x, training=False))
