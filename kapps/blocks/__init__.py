"""Reusable building blocks, shared by every kapps architecture and open to users.

Each block is a Keras layer made of named sub-layers. Use it as a layer (for example
inside ``keras.Sequential``) or spread it flat into a Functional graph with
``block.apply_flat(tensor)``; see :class:`Block`. Every public name of every module in
this package (its ``__all__``) is imported here explicitly; ``tests/test_imports.py``
keeps this list complete.

>>> import keras, numpy as np
>>> from kapps import blocks
>>> net = keras.Sequential([
...     keras.Input((32, 32, 3)),
...     blocks.ConvBNAct(16, 3, strides=2, activation="relu6", names="stem_"),
...     blocks.InvertedResidual(16, 24, expansion=6, strides=2, names="ir1_"),
...     blocks.DenseClassifier(10),
... ])
>>> tuple(net(np.zeros((1, 32, 32, 3), "float32")).shape)
(1, 10)
"""

from __future__ import annotations

from kapps.blocks.activations import make_activation, relu6
from kapps.blocks.attention import (
    MultiHeadSelfAttention, SelfAttentionCore, TransformerMLP, check_heads, merge_heads, scaled_dot_product_attention,
    split_heads,
)
from kapps.blocks.base import Block, Names, apply
from kapps.blocks.conv import ConvBNAct, DepthwiseSeparable, batch_norm
from kapps.blocks.convnext import ConvNeXtBlock, LayerScale
from kapps.blocks.decoder import ASPP, DecoderStage, SegmentationHead, conv_stack
from kapps.blocks.dense import DenseLayer, DenseBlock, Transition, DENSENET_BN_EPSILON
from kapps.blocks.fire import FireModule
from kapps.blocks.grouped import GroupedBottleneck
from kapps.blocks.heads import (
    ConvClassifier, ConvPoolClassifier, DenseClassifier, PoolingHead, global_pool, POOLING_CHOICES,
)
from kapps.blocks.inception import (
    Conv, Pool, Fork, InceptionModule, ScaleAdd, ScaledResidual, inception_conv, output_channels, pool_layer,
)
from kapps.blocks.inverted_residual import InvertedResidual
from kapps.blocks.losses import SegmentationLoss
from kapps.blocks.mbconv import FusedMBConv, MBConv, MBCONV_NAMES, FUSED_MBCONV_NAMES
from kapps.blocks.naming import AutoNames, reserved_names
from kapps.blocks.nasnet import (
    NASNetNormalCell, NASNetReductionCell, FactorizedReduction, nasnet_separable_branch,
)
from kapps.blocks.normalization import LocalResponseNormalization
from kapps.blocks.padding import same_padding_for_stride
from kapps.blocks.pooling import ceil_max_pool
from kapps.blocks.preprocessing import ImagePreprocessing, is_serializable_function
from kapps.blocks.residual import Chain, Residual, run_layer
from kapps.blocks.resnet import BasicBlock, Bottleneck, PreActBottleneck, BNAct, RESNET_BN_EPSILON, TORCH_BN_EPSILON
from kapps.blocks.separable import SeparableConvBN, SeparableStack, separable_units
from kapps.blocks.shuffle import ChannelShuffle, ChannelSplit, ShuffleUnit, shuffle_permutation
from kapps.blocks.squeeze_excite import SqueezeExcite, squeeze_channels
from kapps.blocks.stochastic_depth import drop_path, drop_path_or_identity
from kapps.blocks.swin import (
    PatchGather, PatchMerging, ShiftedWindowAttention, SwinBlock, WindowAttentionCore, WindowPadShift,
    WindowUnshiftCrop, effective_shift, relative_position_index, roll, shifted_window_mask,
)
from kapps.blocks.vgg import ConvPoolStage, FlattenDenseClassifier
from kapps.blocks.vit import ClassToken, EncoderBlock, PatchEmbedding, PositionEmbedding, TokenPooling, TOKEN_POOLING
from kapps.blocks.widths import make_divisible

__all__ = [
    "make_activation", "relu6", "scaled_dot_product_attention", "SelfAttentionCore", "MultiHeadSelfAttention",
    "TransformerMLP", "split_heads", "merge_heads", "check_heads", "Block", "Names", "apply", "ConvBNAct",
    "DepthwiseSeparable", "batch_norm", "ConvNeXtBlock", "LayerScale", "ASPP", "DecoderStage", "SegmentationHead",
    "conv_stack", "DenseLayer", "DenseBlock", "Transition", "DENSENET_BN_EPSILON", "FireModule",
    "GroupedBottleneck", "ConvClassifier", "ConvPoolClassifier", "DenseClassifier", "PoolingHead", "global_pool",
    "POOLING_CHOICES", "Conv", "Pool", "Fork", "InceptionModule", "ScaleAdd", "ScaledResidual", "inception_conv",
    "output_channels", "pool_layer", "InvertedResidual", "SegmentationLoss", "FusedMBConv", "MBConv",
    "MBCONV_NAMES", "FUSED_MBCONV_NAMES", "AutoNames", "reserved_names", "NASNetNormalCell", "NASNetReductionCell",
    "FactorizedReduction", "nasnet_separable_branch", "LocalResponseNormalization", "same_padding_for_stride",
    "ceil_max_pool", "ImagePreprocessing", "is_serializable_function", "Chain", "Residual", "run_layer",
    "BasicBlock", "Bottleneck", "PreActBottleneck", "BNAct", "RESNET_BN_EPSILON", "TORCH_BN_EPSILON",
    "SeparableConvBN", "SeparableStack", "separable_units", "ChannelShuffle", "ChannelSplit", "ShuffleUnit",
    "shuffle_permutation", "SqueezeExcite", "squeeze_channels", "drop_path", "drop_path_or_identity",
    "WindowPadShift", "WindowUnshiftCrop",
    "WindowAttentionCore", "ShiftedWindowAttention", "SwinBlock", "PatchGather", "PatchMerging",
    "relative_position_index", "shifted_window_mask", "effective_shift", "roll", "ConvPoolStage",
    "FlattenDenseClassifier", "PatchEmbedding", "ClassToken", "PositionEmbedding", "EncoderBlock", "TokenPooling",
    "TOKEN_POOLING", "make_divisible",
]
