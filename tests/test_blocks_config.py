"""Every block and leaf layer of ``kapps.blocks`` rebuilds exactly from its config.

The classes are enumerated from ``kapps.blocks`` itself, so a new layer class without an
example here (or without a working config) fails.
"""

from __future__ import annotations

import inspect
import json

import keras
import numpy as np
import pytest

from kapps import blocks as B

RNG = np.random.default_rng(0)

def _inception_module() -> B.InceptionModule:
    names = B.AutoNames()
    table = ((B.Conv(4),), (B.Conv(2), B.Conv(4, 3)), (B.Pool("max"), B.Conv(2)),
             (B.Conv(2), B.Fork(((B.Conv(2, (1, 3)),), (B.Conv(2, (3, 1)),)), name="fork")))
    return B.InceptionModule.from_table(table, make_conv=lambda c: B.inception_conv(c, names), concat_name="mixed",
                                        name="m")


#: class name -> (a small instance, its input shape(s) without the batch axis).
EXAMPLES = {
    "ConvBNAct": (lambda: B.ConvBNAct(6, (3, 5), 2, padding="pad_then_valid", activation=B.relu6,
                                      names=B.Names("s_", {"bn": "{p}BN"})), (9, 9, 3)),
    "DepthwiseSeparable": (lambda: B.DepthwiseSeparable(8, strides=2, names=(B.Names("dw_"), B.Names("pw_"))),
                           (8, 8, 4)),
    "ConvNeXtBlock": (lambda: B.ConvNeXtBlock(8, drop_path_rate=0.1, names="cn_"), (6, 6, 8)),
    "LayerScale": (lambda: B.LayerScale(0.5, 4, name="scale"), (3, 4)),
    "DenseLayer": (lambda: B.DenseLayer(4, names="conv2_block1_"), (6, 6, 8)),
    "DenseBlock": (lambda: B.DenseBlock(2, 4, names=B.Names("conv2_", {"dense_block": "conv2"})), (6, 6, 8)),
    "Transition": (lambda: B.Transition(4, names="pool2_"), (6, 6, 8)),
    "PoolingHead": (lambda: B.PoolingHead("max", pool_name="max_pool"), (5, 5, 4)),
    "DenseClassifier": (lambda: B.DenseClassifier(5, dropout=0.2), (5, 5, 4)),
    "ConvClassifier": (lambda: B.ConvClassifier(5, hidden_filters=8, hidden_activation="hard_swish"), (5, 5, 4)),
    "InceptionModule": (lambda: _inception_module(), (6, 6, 3)),
    "CustomScaleLayer": (lambda: B.ScaleAdd(0.17, name="scale_add"), [(4,), (4,)]),
    "ScaledResidual": (lambda: B.ScaledResidual(
        B.Chain([B.InceptionModule([B.ConvBNAct(4, 1, names="a_"), B.ConvBNAct(4, 3, names="b_")], name="im"),
                 B.ConvBNAct(8, 1, use_bias=True, bn=False, activation=None, names="up_")], name="body"),
        0.2, scale_name="scale", act_name="out", name="res"), (5, 5, 8)),
    "InvertedResidual": (lambda: B.InvertedResidual(
        8, 8, 3, squeeze_excite=B.SqueezeExcite(24, 8, gate="hard_sigmoid", names="se_"), drop_rate=0.1,
        names="ir_"), (6, 6, 8)),
    "MBConv": (lambda: B.MBConv(8, 12, 6, 2, kernel_size=5, names="block2a_"), (7, 7, 8)),
    "FusedMBConv": (lambda: B.FusedMBConv(8, 8, 4, se_ratio=0.25, drop_rate=0.1, names="block1a_"), (6, 6, 8)),
    "FactorizedReduction": (lambda: B.FactorizedReduction(8, "stem_2"), (8, 8, 4)),
    "NASNetNormalCell": (lambda: B.NASNetNormalCell(4, "0"), [(4, 4, 8), (8, 8, 6)]),
    "NASNetReductionCell": (lambda: B.NASNetReductionCell(4, "stem_1", keep_previous=True), [(7, 7, 8), (7, 7, 6)]),
    "LocalResponseNormalization": (lambda: B.LocalResponseNormalization(3, 1.0, 0.5, 0.75, name="lrn"), (4, 4, 6)),
    "ImagePreprocessing": (lambda: B.ImagePreprocessing("caffe", name="preprocessing"), (4, 4, 3)),
    "Chain": (lambda: B.Chain([keras.layers.ZeroPadding2D(1, name="pad"), B.ConvBNAct(4, 3, names="a_")],
                              name="chain"), (5, 5, 3)),
    "Residual": (lambda: B.Residual(B.ConvBNAct(4, 3, activation=None, names="body_"),
                                    B.ConvBNAct(4, 1, activation=None, names="short_"), activation="relu",
                                    add_name="r_add", act_name="r_out", name="r"), (5, 5, 3)),
    "BNAct": (lambda: B.BNAct(names=B.Names("post_", {"act": "{p}relu"})), (4, 4, 3)),
    "Bottleneck": (lambda: B.Bottleneck(4, strides=2, names="conv3_block1_"), (6, 6, 8)),
    "BasicBlock": (lambda: B.BasicBlock(6, strides=2, conv_shortcut=True, names=B.Names(
        "layer2_0_", {"shortcut_conv": "{p}downsample_0", "shortcut_bn": "{p}downsample_1"})), (7, 7, 4)),
    "FireModule": (lambda: B.FireModule(3, 4, 5, names="features_3_"), (5, 5, 6)),
    "ConvPoolClassifier": (lambda: B.ConvPoolClassifier(5, dropout=0.5, conv_name="classifier_1"), (5, 5, 4)),
    "ChannelShuffle": (lambda: B.ChannelShuffle(3, name="shuffle"), (3, 3, 6)),
    "ChannelSplit": (lambda: B.ChannelSplit(name="split"), (3, 3, 6)),
    "ShuffleUnit": (lambda: B.ShuffleUnit(8, strides=2, names="stage2_0_"), (7, 7, 4)),
    "GroupedBottleneck": (lambda: B.GroupedBottleneck(8, 16, 4, strides=2, squeeze_filters=2, names="y_"),
                          (7, 7, 8)),
    "PreActBottleneck": (lambda: B.PreActBottleneck(4, strides=2, names="conv2_block3_"), (6, 6, 16)),
    "SeparableConvBN": (lambda: B.SeparableConvBN(6, 3, 2, padding="pad_then_valid", preactivation=True,
                                                  names="sep_"), (7, 7, 4)),
    "SeparableStack": (lambda: B.SeparableStack((6, 6), downsample=True, names="block3_"), (6, 6, 4)),
    "SqueezeExcite": (lambda: B.SqueezeExcite(8, 2, keep_dims_pool=False, fused_activations=True, names="se_"),
                      (5, 5, 8)),
    "ConvPoolStage": (lambda: B.ConvPoolStage(4, 2, names="block1_"), (6, 6, 3)),
    "FlattenDenseClassifier": (lambda: B.FlattenDenseClassifier(5, hidden_units=(6, 4), dropout=0.5), (3, 3, 2)),
    "ASPP": (lambda: B.ASPP(6, rates=(2, 3), names="aspp_"), (5, 5, 4)),
    # x upsampled to 6x6 is resized to the 7x7 skip (an encoder's valid padding), the skip projected
    "DecoderStage": (lambda: B.DecoderStage(6, skip_filters=3, names="dec_"), [(3, 3, 8), (7, 7, 4)]),
    "SegmentationHead": (lambda: B.SegmentationHead(3, size=(10, 10), names="seg_"), (5, 5, 4)),
    "SelfAttentionCore": (lambda: B.SelfAttentionCore(2, name="attn"), (5, 12)),
    "MultiHeadSelfAttention": (lambda: B.MultiHeadSelfAttention(8, 2, names="l0_self_attention_"), (5, 8)),
    "TransformerMLP": (lambda: B.TransformerMLP(8, 16, names="l0_mlp_"), (5, 8)),
    "PatchEmbedding": (lambda: B.PatchEmbedding(8, 4, names="p_"), (8, 12, 3)),
    "ClassToken": (lambda: B.ClassToken(name="class_token"), (6, 8)),
    "PositionEmbedding": (lambda: B.PositionEmbedding(1, grid=(2, 3), name="pos"), (7, 8)),
    "EncoderBlock": (lambda: B.EncoderBlock(8, 2, 16, names="encoder_layer_0_"), (5, 8)),
    "TokenPooling": (lambda: B.TokenPooling("avg", name="avg_pool"), (5, 8)),
    "WindowPadShift": (lambda: B.WindowPadShift(3, 1, name="pad_shift"), (7, 5, 4)),
    "WindowUnshiftCrop": (lambda: B.WindowUnshiftCrop(3, 1, size=(7, 5), name="unshift"), (9, 6, 4)),
    "WindowAttentionCore": (lambda: B.WindowAttentionCore(2, 3, 1, name="attn"), (6, 9, 12)),
    # a 7x5 map in 3x3 windows: padded, shifted along both axes, masked
    "ShiftedWindowAttention": (lambda: B.ShiftedWindowAttention(8, 2, 3, 1, names="f_1_1_attn_"), (7, 5, 8)),
    "SwinBlock": (lambda: B.SwinBlock(8, 2, 3, 1, drop_path_rate=0.1, names="f_1_1_"), (7, 5, 8)),
    "PatchGather": (lambda: B.PatchGather(name="gather"), (5, 4, 3)),
    "PatchMerging": (lambda: B.PatchMerging(4, names="f_2_"), (5, 5, 4)),
}


def layer_classes() -> list[type]:
    """Every Keras layer class that ``kapps.blocks`` exports (but the abstract ``Block``)."""
    return sorted(
        (obj for obj in vars(B).values()
         if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer) and obj is not B.Block),
        key=lambda cls: cls.__name__,
    )


def _inputs(shape) -> object:
    if isinstance(shape, list):
        return tuple(RNG.normal(size=(2, *s)).astype("float32") for s in shape)
    return RNG.normal(size=(2, *shape)).astype("float32")


def _names(layer: keras.layers.Layer) -> list[str]:
    from kapps.utils.layers import leaf_layers

    return [sub.name for sub in leaf_layers(layer)]


def test_every_layer_class_has_an_example():
    missing = sorted({cls.__name__ for cls in layer_classes()} - set(EXAMPLES))
    assert not missing, f"add an example (and a config) to EXAMPLES for: {missing}"


@pytest.mark.parametrize("cls", layer_classes(), ids=lambda cls: cls.__name__)
def test_from_config_rebuilds_the_layer(cls):
    make, shape = EXAMPLES[cls.__name__]
    layer = make()
    assert type(layer) is cls
    # Registered with kapps, or keras.applications' own class (LayerScale, ScaleAdd): either reloads by name.
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert type(keras.saving.deserialize_keras_object(serialized)) is cls
    x = _inputs(shape)
    layer(x)
    weights = [RNG.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w in layer.get_weights()]
    layer.set_weights(weights)
    config = json.loads(json.dumps(layer.get_config()))  # plain data
    clone = cls.from_config(config)
    clone(x)
    clone.set_weights(weights)
    assert clone.name == layer.name
    assert _names(clone) == _names(layer)
    assert json.loads(json.dumps(clone.get_config())) == config
    expected, actual = layer(x, training=False), clone(x, training=False)
    for e, a in zip(keras.tree.flatten(expected), keras.tree.flatten(actual)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-6, atol=1e-6)


# -- channels_first -------------------------------------------------------------------

#: Run under the torch backend in a fresh process (TensorFlow's CPU kernels cannot run every
#: channels_first convolution; eager torch, unlike eager JAX, compiles nothing per op): each
#: block built channels_last and channels_first with the same weights, on transposed inputs;
#: prints the largest difference per block.
CHANNELS_FIRST_CHECK = r"""
import json
import keras, numpy as np
from kapps import blocks as B
rng = np.random.default_rng(0)
cases = {
    "MBConv": (lambda f: B.MBConv(8, 12, 6, 2, kernel_size=5, names="b_", data_format=f), [(7, 7, 8)]),
    "NASNetReductionCell": (lambda f: B.NASNetReductionCell(4, "s", data_format=f), [(7, 7, 8), (14, 14, 6)]),
    "NASNetNormalCell": (lambda f: B.NASNetNormalCell(4, "n", data_format=f), [(4, 4, 8), (4, 4, 6)]),
    "DenseLayer": (lambda f: B.DenseLayer(4, names="d_", data_format=f), [(6, 6, 8)]),
    "Transition": (lambda f: B.Transition(4, names="t_", data_format=f), [(6, 6, 8)]),
    "SeparableStack": (lambda f: B.SeparableStack((6, 6), downsample=True, names="x_", data_format=f), [(6, 6, 4)]),
    "PreActBottleneck": (lambda f: B.PreActBottleneck(4, strides=2, names="p_", data_format=f), [(6, 6, 16)]),
    "InceptionModule": (lambda f: B.InceptionModule.from_table(
        ((B.Conv(4),), (B.Pool("max"), B.Conv(3, 3)),
         (B.Conv(2), B.Fork(((B.Conv(5, (1, 3)),), (B.Conv(6, (3, 1)),))))),
        data_format=f, name="m", make_conv=lambda c: B.ConvBNAct(
            c.filters, c.kernel, c.strides, data_format=f, names=f"c{c.filters}_")), [(5, 5, 3)]),
    "LocalResponseNormalization": (lambda f: B.LocalResponseNormalization(data_format=f), [(4, 4, 6)]),
    "ConvClassifier": (lambda f: B.ConvClassifier(5, hidden_filters=8, data_format=f), [(5, 5, 4)]),
    "FlattenDenseClassifier": (lambda f: B.FlattenDenseClassifier(5, hidden_units=(6,), data_format=f),
                               [(3, 3, 2)]),
    "DecoderStage": (lambda f: B.DecoderStage(6, skip_filters=3, names="d_", data_format=f), [(3, 3, 8), (7, 7, 4)]),
    "ASPP": (lambda f: B.ASPP(6, rates=(2, 3), names="a_", data_format=f), [(5, 5, 4)]),
    "SegmentationHead": (lambda f: B.SegmentationHead(3, size=(10, 10), names="h_", data_format=f), [(5, 5, 4)]),
    "BasicBlock": (lambda f: B.BasicBlock(6, strides=2, conv_shortcut=True, names="r_", data_format=f), [(7, 7, 4)]),
    "FireModule": (lambda f: B.FireModule(3, 4, 5, names="f_", data_format=f), [(5, 5, 6)]),
    "ConvPoolClassifier": (lambda f: B.ConvPoolClassifier(5, data_format=f), [(5, 5, 4)]),
    "ShuffleUnit": (lambda f: B.Chain([B.ShuffleUnit(8, strides=2, names="s0_", data_format=f),
                                       B.ShuffleUnit(8, names="s1_", data_format=f)], name="s"), [(7, 7, 4)]),
}
to_first = lambda x: np.transpose(x, (0, 3, 1, 2)) if x.ndim == 4 else x
to_last = lambda y: np.transpose(y, (0, 2, 3, 1)) if y.ndim == 4 else y
result = {}
for name, (make, shapes) in cases.items():
    xs = [rng.normal(size=(2, *s)).astype("float32") for s in shapes]
    last, first = make("channels_last"), make("channels_first")
    feed_last = xs[0] if len(xs) == 1 else tuple(xs)
    feed_first = to_first(xs[0]) if len(xs) == 1 else tuple(map(to_first, xs))
    last(feed_last), first(feed_first)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in last.get_weights()]
    last.set_weights(weights)
    first.set_weights(weights)
    outputs = last(feed_last, training=False), first(feed_first, training=False)
    pairs = zip(*map(keras.tree.flatten, outputs))
    numpy = keras.ops.convert_to_numpy
    result[name] = max(float(np.max(np.abs(numpy(a) - to_last(numpy(b))))) / max(1.0, float(np.max(np.abs(numpy(a)))))
                       for a, b in pairs)  # relative: ASPP's five stacked branches reach magnitudes of 10-100
print(json.dumps(result))
"""


def test_channels_first_blocks_match_channels_last_on_transposed_inputs():
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(repo)}
    run = subprocess.run([sys.executable, "-c", CHANNELS_FIRST_CHECK], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    differences = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(differences) == 18
    assert max(differences.values()) <= 1e-5, differences


def test_image_data_format_is_read_at_construction_and_recorded():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        block = B.ConvBNAct(8, 3, strides=2, padding="pad_then_valid", names="s_")
        se = B.SqueezeExcite(8, 2, keep_dims_pool=False, names="se_")
    finally:
        keras.config.set_image_data_format(previous)
    assert block.get_config()["data_format"] == "channels_first"
    clone = B.ConvBNAct.from_config(block.get_config())  # built under channels_last, keeps its layout
    out = clone(keras.KerasTensor((None, 3, 9, 9)))
    assert tuple(out.shape) == (None, 8, 5, 5)
    assert clone.bn.axis == 1 and clone.conv.data_format == "channels_first"
    assert clone.pad.padding == ((1, 1), (1, 1)) and clone.pad.data_format == "channels_first"
    assert se.reshape.target_shape == (8, 1, 1) and se.pool.data_format == "channels_first"
    assert tuple(se(keras.KerasTensor((None, 8, 5, 5))).shape) == (None, 8, 5, 5)


def test_bad_data_format_names_the_argument():
    with pytest.raises(ValueError, match=r"`data_format` must be None \(the global keras.config.image_data_format\(\)\), "
                                         r"'channels_first' or 'channels_last'. Received: data_format='NHWC'"):
        B.ConvBNAct(8, data_format="NHWC")
    with pytest.raises(ValueError, match="`data_format` must be 'channels_last' for ConvNeXtBlock"):
        B.ConvNeXtBlock(8, data_format="channels_first")
