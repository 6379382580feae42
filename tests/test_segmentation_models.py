"""kapps.segmentation: U-Net and DeepLabV3+ on kapps encoders, on real EM images (ISBI 2012 membranes).

Small inputs (64x64) and eager training steps (no graph tracing) keep the module cheap.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras

import kapps
from kapps.registry import get_spec
from kapps.segmentation import DeepLabV3Plus, UNet
from kapps.weights.h5io import copy_weights_by_name

SIZE = 64
#: Mean absolute difference of the int8 U-Net's probabilities from float32's: measured 0.00097 (max 0.0020)
#: on the random-weight 3-class U-Net (2026-12-05); its softmax outputs are near 1/3.
INT8_MEAN_ERROR = 0.01


@pytest.fixture(scope="module")
def membrane() -> tuple[np.ndarray, np.ndarray]:
    """Two training images of the membrane set (grey levels in [0, 255], ``(2, 64, 64, 1)``) and their
    labels (``(2, 64, 64)``: 1 = cell interior, 0 = membrane; see the set's PROVENANCE.txt)."""
    from conftest import shared_dir

    folder = shared_dir() / "data" / "membrane" / "train"
    images, labels = [], []
    for i in range(2):
        image = keras.utils.load_img(folder / "image" / f"{i}.png", color_mode="grayscale",
                                     target_size=(SIZE, SIZE), interpolation="bilinear")
        label = keras.utils.load_img(folder / "label" / f"{i}.png", color_mode="grayscale",
                                     target_size=(SIZE, SIZE), interpolation="nearest")
        images.append(keras.utils.img_to_array(image))
        labels.append(keras.utils.img_to_array(label)[..., 0] > 127)
    return np.stack(images).astype("float32"), np.stack(labels).astype("int32")


def rgb_input(images: np.ndarray, backbone: str) -> np.ndarray:
    """Grey images as RGB, preprocessed as the backbone's classifier expects."""
    return kapps.preprocess_input(np.repeat(images, 3, axis=-1), mode=get_spec(backbone).preprocessing)


def train_step(model: keras.Model, x: np.ndarray, y: np.ndarray, run_eagerly: bool = True) -> float:
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  run_eagerly=run_eagerly, jit_compile=False)
    return float(model.train_on_batch(x, y))


# -- the paper's U-Net -----------------------------------------------------------------------------
def conv_bn(cin: int, cout: int) -> int:
    """A 3x3 convolution without bias, then BatchNorm (gamma, beta, moving mean and variance)."""
    return 9 * cin * cout + 4 * cout


def paper_unet_params(in_channels: int, classes: int, transpose: bool) -> int:
    """Ronneberger et al. 2015, Fig. 1, with same padding and BatchNorm: counted by hand."""
    down = [(in_channels, 64), (64, 128), (128, 256), (256, 512), (512, 1024)]  # four stages and the bottleneck
    total = sum(conv_bn(cin, cout) + conv_bn(cout, cout) for cin, cout in down)
    for cin, cout in [(1024, 512), (512, 256), (256, 128), (128, 64)]:  # the expanding path
        if transpose:  # 2x2 up-convolution halving the channels (with bias), concat with the skip (cout)
            total += 4 * cin * cout + cout + conv_bn(2 * cout, cout)
        else:  # bilinear upsampling keeps cin channels, concat with the skip (cout)
            total += conv_bn(cin + cout, cout)
        total += conv_bn(cout, cout)
    return total + 64 * classes + classes  # 1x1 convolution to the classes


@pytest.mark.parametrize("decoder_block", ["transpose", "upsampling"])
def test_plain_unet_parameters_are_the_papers(decoder_block):
    model = UNet(None, input_shape=(SIZE, SIZE, 1), classes=2, encoder_weights=None, decoder_block=decoder_block)
    assert model.name == "unet"
    assert model.output_shape == (None, SIZE, SIZE, 2)
    assert model.count_params() == paper_unet_params(1, 2, transpose=decoder_block == "transpose")
    assert paper_unet_params(1, 2, transpose=True) == 31_048_322


def test_plain_unet_trains_on_membranes(membrane):
    images, labels = membrane
    model = UNet(None, input_shape=(SIZE, SIZE, 1), classes=2, encoder_weights=None, decoder_block="transpose")
    loss = train_step(model, images / 255.0, labels, run_eagerly=False)  # the traced (graph) train step
    assert np.isfinite(loss)


# -- kapps encoders --------------------------------------------------------------------------------
def family_backbones() -> list[tuple]:
    """(architecture, backbone) for the smallest model of every multi-scale family, U-Net and DeepLabV3+ each.
    LeNet-5's deepest feature map is at reduction 4, below every output stride DeepLabV3+ takes
    (8, 16, 32; its refusal is tested below), so it gets a U-Net only."""
    from parity import smallest_of_each_family

    backbones = [b for b in smallest_of_each_family(kapps.list_models()) if get_spec(b).multi_scale]
    return [(UNet, b) for b in backbones] + [(DeepLabV3Plus, b) for b in backbones if b != "lenet5"]


def test_a_single_scale_backbone_is_refused_by_name():
    """ViT has no feature maps at several scales (its spec's ``multi_scale`` is False): the family sweep above
    leaves it out, and asking for it says why."""
    for architecture in (UNet, DeepLabV3Plus):
        with pytest.raises(ValueError, match="`features_only` must be False for ViTB16: it computes one sequence"):
            architecture("vit_b_16", input_shape=(64, 64, 3), classes=2, encoder_weights=None)


def backbone_input(images: np.ndarray, backbone: str) -> np.ndarray:
    """The membrane slices at the smallest size of 64 or more that ``backbone`` takes and halves five
    times (a multiple of 32), with the backbone's channels and preprocessing."""
    spec = get_spec(backbone)
    size = max(SIZE, -(-spec.min_size // 32) * 32)
    x = np.asarray(keras.ops.image.resize(images, (size, size))) if size != SIZE else images
    if spec.input_channels == 1:
        return kapps.preprocess_input(x, mode=spec.preprocessing)
    return rgb_input(x, backbone)


@pytest.mark.parametrize(("architecture", "backbone"), family_backbones(),
                         ids=lambda value: getattr(value, "__name__", value))
def test_model_on_a_backbone_of_every_family_predicts_and_trains(architecture, backbone, membrane):
    """Build, predict, and one training step of the decoder on the frozen encoder (fine_tune's first
    phase; a step through every encoder, eager, would cost 5x more: tests/test_finetune_segmentation.py
    trains an unfrozen one)."""
    images, labels = membrane
    x = backbone_input(images, backbone)
    size = x.shape[1]
    if size != SIZE:
        labels = np.asarray(keras.ops.image.resize(labels[..., None].astype("float32"), (size, size),
                                                   interpolation="nearest"))[..., 0].astype("int32")
    keras.backend.clear_session()
    model = architecture(backbone, input_shape=x.shape[1:], classes=2, encoder_weights=None, encoder_freeze=True)
    assert model.output_shape == (None, size, size, 2)
    probabilities = np.asarray(model(x, training=False))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert np.isfinite(train_step(model, x, labels))


def test_encoder_layers_keep_their_names_and_file_weights_and_freeze(membrane, tmp_path):
    path = tmp_path / "encoder.weights.h5"
    source = kapps.MobileNetV2(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    source.save_weights(path)
    model = UNet("mobilenet_v2", input_shape=(SIZE, SIZE, 3), classes=1, activation="sigmoid",
                 encoder_weights=str(path), encoder_freeze=True)
    assert model.output_shape == (None, SIZE, SIZE, 1)
    for name in ("Conv1", "block_1_expand", "block_13_expand_BN"):
        for loaded, saved in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    encoder_names = {layer.name for layer in source.layers}
    trainable = {variable.path.split("/")[0] for variable in model.trainable_weights}
    assert trainable and not trainable & encoder_names
    assert all(name.startswith(("decoder_stage", "segmentation_head_")) for name in trainable)

    images, labels = membrane
    before = model.get_layer("block_13_expand_BN").get_weights()
    model.compile(optimizer="adam", loss="binary_crossentropy", run_eagerly=True)
    assert np.isfinite(float(model.train_on_batch(rgb_input(images, "mobilenet_v2"), labels[..., None])))
    for after, was in zip(model.get_layer("block_13_expand_BN").get_weights(), before):  # moving stats too
        np.testing.assert_array_equal(after, was)


@pytest.fixture(scope="module")
def unet_pair() -> tuple[keras.Model, keras.Model]:
    """The same UNet by both builders, with the same weights."""
    functional = UNet("mobilenet_v2", input_shape=(SIZE, SIZE, 3), classes=3, encoder_weights=None)
    sequential = UNet("mobilenet_v2", input_shape=(SIZE, SIZE, 3), classes=3, encoder_weights=None,
                      builder="sequential")
    copy_weights_by_name(functional, sequential)
    return functional, sequential


def test_sequential_builder_matches_functional(unet_pair, membrane):
    functional, sequential = unet_pair
    blocks = [type(layer).__name__ for layer in sequential.layers[-6:]]
    assert blocks == ["DecoderStage"] * 5 + ["SegmentationHead"]
    assert not any(isinstance(layer, kapps.blocks.Block) for layer in functional.layers)
    x = rgb_input(membrane[0], "mobilenet_v2")
    np.testing.assert_allclose(np.asarray(sequential(x, training=False)), np.asarray(functional(x, training=False)),
                               rtol=1e-5, atol=1e-6)


def test_keras_file_round_trip(unet_pair, membrane, tmp_path):
    x = rgb_input(membrane[0], "mobilenet_v2")
    for model in unet_pair:  # flat layers, and whole decoder blocks (a two-input DecoderStage)
        path = tmp_path / f"{model.name}_{len(model.layers)}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
        np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                                   rtol=1e-6, atol=1e-6)


def test_tflite_float_and_int8_export_and_optimize_for_inference(unet_pair, membrane, tmp_path):
    """The functional U-Net through kapps' deployment tools: BatchNorm folded, TFLite float32 equal to
    Keras, full-integer int8 (calibrated on the membrane slices) close to it, pixel by pixel."""
    from kapps.tools.export import export, run_tflite

    functional, _ = unet_pair
    x = rgb_input(membrane[0], "mobilenet_v2")
    expected = np.asarray(functional(x, training=False))
    folded = kapps.optimize_for_inference(functional)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    np.testing.assert_allclose(np.asarray(folded(x, training=False)), expected, atol=1e-4)
    flat = run_tflite(export(functional, "tflite", tmp_path / "unet.tflite"), x)
    np.testing.assert_allclose(flat, expected, atol=1e-4)
    calibration = np.repeat(membrane[0], 3, axis=-1)
    int8 = run_tflite(export(functional, "tflite-int8", tmp_path / "unet_int8.tflite",
                             representative_images=calibration, preprocessing="mobilenet_v2"), x)
    assert int8.shape == expected.shape
    assert float(np.mean(np.abs(int8 - expected))) < INT8_MEAN_ERROR


def test_deeplab_output_strides_scale_the_rates():
    model = DeepLabV3Plus("vgg16", input_shape=(SIZE, SIZE, 3), classes=2, encoder_weights=None, output_stride=8,
                          atrous_rates=(6, 12, 18))
    assert [model.get_layer(f"aspp_b{i}_conv").dilation_rate for i in (1, 2, 3)] == [(12, 12), (24, 24), (36, 36)]
    assert model.get_layer("aspp_b0_conv").input.shape[1:3] == (SIZE // 8, SIZE // 8)  # the reduction-8 map
    assert model.get_layer("decoder_skip_conv").output.shape[-1] == 48
    assert model.output_shape == (None, SIZE, SIZE, 2)


# -- argument errors -------------------------------------------------------------------------------
PLAIN = dict(input_shape=(SIZE, SIZE, 1), encoder_weights=None)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: UNet("mobilenet_v9", encoder_weights=None),
     r"`backbone` must be a registered model .* Received: backbone='mobilenet_v9'\. Close names: 'mobilenet_v2'"),
    (lambda: UNet(None, classes=0, **PLAIN), r"`classes` must be a positive integer\. Received: classes=0"),
    (lambda: UNet(None, classes=2.0, **PLAIN), r"`classes` must be a positive integer\. Received: classes=2\.0"),
    (lambda: UNet(None, input_shape=(64, 64), encoder_weights=None),
     r"`input_shape` must be a tuple of three positive integers \(rows, cols, channels\)\. "
     r"Received: input_shape=\(64, 64\)"),
    (lambda: UNet(None, input_shape=(None, 64, 1), encoder_weights=None),
     r"`input_shape` must be a tuple of three positive integers .* Received: input_shape=\(None, 64, 1\)"),
    (lambda: UNet(None, input_shape=(40, 48, 1), encoder_weights=None),
     r"`input_shape` must be a shape whose rows and cols are multiples of 16 .* Received: input_shape=\(40, 48, 1\)"),
    (lambda: UNet("mobilenet_v2", input_shape=(48, 48, 3), encoder_weights=None),
     r"`input_shape` must be a shape whose rows and cols are multiples of 32 \(the deepest reduction of the "
     r"mobilenet_v2 encoder\)\. Received: input_shape=\(48, 48, 3\)"),
    (lambda: UNet(None, decoder_block="nearest", **PLAIN),
     r"`decoder_block` must be one of 'upsampling', 'transpose'\. Received: decoder_block='nearest'"),
    (lambda: UNet(None, decoder_filters=(), **PLAIN),
     r"`decoder_filters` must be a non-empty sequence of positive integers\. Received: decoder_filters=\(\)"),
    (lambda: UNet("lenet5", input_shape=(32, 32, 1), encoder_weights=None, decoder_filters=(64, 32, 16)),
     r"`decoder_filters` must be at most 2 stages for the lenet5 encoder \(its deepest reduction is 4; each stage "
     r"upsamples x2\)\. Received: decoder_filters=\(64, 32, 16\)"),
    (lambda: UNet(None, decoder_filters=(64, 32, 16, 8, 4), **PLAIN),
     r"`decoder_filters` must be at most 4 stages .* Received: decoder_filters=\(64, 32, 16, 8, 4\)"),
    (lambda: UNet(None, input_shape=(SIZE, SIZE, 3)),
     r"`encoder_weights` must be None with backbone=None .* Received: encoder_weights='imagenet'"),
    (lambda: UNet("mobilenet_v2", encoder_weights="no/such/file.h5"),
     r"`encoder_weights` must be None .*, 'imagenet' .* or the path to an existing weights file \(no such file\)\. "
     r"Received: encoder_weights='no/such/file.h5'"),
    (lambda: UNet(None, activation="sparkle", **PLAIN),
     r"`activation` must be None or a Keras activation name .* Received: activation='sparkle'"),
    (lambda: UNet(None, encoder_freeze="yes", **PLAIN),
     r"`encoder_freeze` must be True or False\. Received: encoder_freeze='yes'"),
    (lambda: UNet(None, builder="graph", **PLAIN),
     r"`builder` must be one of 'functional', 'sequential'\. Received: builder='graph'"),
    (lambda: DeepLabV3Plus(output_stride=4, encoder_weights=None),
     r"`output_stride` must be one of 8, 16, 32\. Received: output_stride=4"),
    (lambda: DeepLabV3Plus("lenet5", input_shape=(32, 32, 1), encoder_weights=None, output_stride=8),
     r"`output_stride` must be a reduction the lenet5 encoder has a feature map at \(2, 4\)\. "
     r"Received: output_stride=8"),
    (lambda: DeepLabV3Plus(atrous_rates=(), encoder_weights=None),
     r"`atrous_rates` must be a non-empty sequence of positive integers\. Received: atrous_rates=\(\)"),
    (lambda: DeepLabV3Plus(None, encoder_weights=None),
     r"`backbone` must be a registered model name \(DeepLabV3Plus has no encoder of its own\)\. "
     r"Received: backbone=None"),
], ids=[
    "backbone", "classes-zero", "classes-float", "shape-rank", "shape-none", "shape-16", "shape-32", "decoder_block",
    "decoder_filters-empty", "decoder_filters-too-many-lenet", "decoder_filters-too-many", "weights-plain", "weights-file", "activation",
    "encoder_freeze", "builder", "output_stride", "output_stride-level", "atrous_rates", "deeplab-backbone",
])
def test_bad_argument_names_it_and_its_value(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_backbone_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"`backbone` must be a model name .* Received: backbone=3 of type int"):
        UNet(3, encoder_weights=None)


def test_segmentation_is_a_lazy_public_module():
    assert kapps.segmentation.UNet is UNet and kapps.segmentation.DeepLabV3Plus is DeepLabV3Plus
