"""The ConvNeXt block (Liu et al. 2022) with layer scale (Touvron et al. 2021) and stochastic depth.

``x + drop_path(gamma * pw2(gelu(pw1(layernorm(dwconv7x7(x))))))``: a 7x7 depthwise
convolution, LayerNorm, an inverted-bottleneck MLP (4x) applied per position with Dense
layers, a learned per-channel scale and stochastic depth on the residual branch.

Layer names follow keras.applications' ConvNeXt: a block with prefix
``"convnext_tiny_stage_0_block_0_"`` owns ``..._depthwise_conv``, ``..._layernorm``,
``..._pointwise_conv_1``, ``..._gelu``, ``..._pointwise_conv_2``, ``..._layer_scale`` and
``..._stochastic_depth`` (or ``..._identity`` when the drop rate is 0).
"""

from __future__ import annotations

__all__ = ["ConvNeXtBlock", "LayerScale"]

from typing import Any

import keras

from kapps._keras_compat import keras_layer_scale
from kapps.blocks.base import Block, Names, as_names
from kapps.blocks.residual import run_layer
from kapps.blocks.stochastic_depth import drop_path_or_identity


#: ``x * gamma`` over the last axis, ``gamma`` learned and initialized to ``init_values``:
#: ``LayerScale(init_values, projection_dim, name=...)``. It is keras.applications' own class
#: (Keras exports it nowhere public), so that kapps' ConvNeXt files reload in plain Keras.
#:
#: >>> import numpy as np
#: >>> np.asarray(LayerScale(0.5, 3, name="scale")(np.ones((1, 3), "float32"))).tolist()
#: [[0.5, 0.5, 0.5]]
LayerScale = keras_layer_scale()


@keras.saving.register_keras_serializable(package="kapps")
class ConvNeXtBlock(Block):
    """One ConvNeXt block on ``projection_dim`` channels (input and output alike).

    Args:
        projection_dim: channels of the block (the paper's ``C`` of the stage).
        drop_path_rate: stochastic depth probability of the residual branch (0: none;
            then an identity layer ``{prefix}identity`` stands where Keras puts one).
        layer_scale_init_value: initial layer-scale value, or None for no layer scale.
        expansion: width of the MLP's hidden layer, in multiples of ``projection_dim``.
        layer_norm_epsilon: LayerNorm epsilon.
        data_format: must resolve to ``"channels_last"`` (None: Keras' setting): the
            pointwise layers are Dense layers over the last axis, as in keras.applications.

    Roles (for :class:`~kapps.blocks.Names`): ``depthwise_conv``, ``layernorm``,
    ``pointwise_conv_1``, ``gelu``, ``pointwise_conv_2``, ``layer_scale``,
    ``stochastic_depth``, ``identity``, ``add``.

    >>> import numpy as np
    >>> block = ConvNeXtBlock(32, drop_path_rate=0.1, names="stage_0_block_0_")
    >>> tuple(block(np.zeros((1, 8, 8, 32), "float32")).shape)
    (1, 8, 8, 32)
    >>> block.drop.name
    'stage_0_block_0_stochastic_depth'
    """

    def __init__(
        self,
        projection_dim: int,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float | None = 1e-6,
        *,
        expansion: int = 4,
        kernel_size: int = 7,
        layer_norm_epsilon: float = 1e-6,
        names: Names | str | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ):
        names = as_names(names, "convnext_block_")
        kwargs.setdefault("name", names("block"))
        super().__init__(**kwargs)
        if self.use_data_format(data_format) != "channels_last":
            raise ValueError(
                "`data_format` must be 'channels_last' for ConvNeXtBlock (its pointwise layers are Dense layers "
                f"over the last axis). Received: data_format={self.data_format!r}"
            )
        self.depthwise = keras.layers.Conv2D(
            projection_dim, kernel_size, padding="same", groups=projection_dim, name=names("depthwise_conv"),
        )
        self.norm = keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=names("layernorm"))
        self.pointwise1 = keras.layers.Dense(expansion * projection_dim, name=names("pointwise_conv_1"))
        self.act = keras.layers.Activation("gelu", name=names("gelu"))
        self.pointwise2 = keras.layers.Dense(projection_dim, name=names("pointwise_conv_2"))
        self.scale = (
            None if layer_scale_init_value is None
            else LayerScale(layer_scale_init_value, projection_dim, name=names("layer_scale"))
        )
        self.drop = drop_path_or_identity(drop_path_rate, names("stochastic_depth"), names("identity"))
        self.add = keras.layers.Add(name=names("add"))

    def compose(self, inputs: Any, training: bool | None = None) -> Any:
        x = self.norm(self.depthwise(inputs))
        x = self.pointwise2(self.act(self.pointwise1(x)))
        if self.scale is not None:
            x = self.scale(x)
        x = run_layer(self.drop, x, training)
        return self.add([inputs, x])
