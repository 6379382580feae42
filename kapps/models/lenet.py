"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, Gradient-Based Learning Applied to
Document Recognition), the convolutional network for 32x32 grayscale digits.

Layers, named after the paper: C1 (6 5x5 convolutions) - S2 (2x2 subsampling) - C3 (16
5x5 convolutions) - S4 (2x2 subsampling) - C5 (120 units) - F6 (84 units) - output.

Where kapps departs from the 1998 paper, as every modern re-implementation does:

* C3 connects to all six S2 maps (the paper's partial connection table, Table I, gave
  1,516 parameters instead of 2,416, to break symmetry and save compute);
* S2/S4 are plain 2x2 average pooling (the paper's subsampling units also had a
  trainable coefficient and bias per map, then the squashing function);
* the activation is ``tanh`` (the paper's ``1.7159 * tanh(2/3 * a)`` up to scale);
* the output is a Dense softmax layer (the paper used Euclidean RBF units), and C5, a
  5x5 convolution over the 5x5 S4 maps, is the equivalent Dense layer on the flattened
  maps (``include_top=False`` returns the 5x5x16 S4 maps).

Input: 32x32x1 by default. **28x28 (MNIST) inputs are padded**, not adapted: any side
shorter than 32 pixels is zero-padded (layer ``pad``) to 32 - the paper's own setup,
where the 28x28 MNIST digits sit centered in a 32x32 field - so the network and its
parameter count are the same at 28 and 32 pixels. The padding is zero in the
preprocessed space (mid-gray with ``"tf"`` scaling). Larger inputs are used as they are.

Parameters at 32x32x1, 10 classes: C1 5*5*1*6+6 = 156, C3 5*5*6*16+16 = 2,416,
C5 400*120+120 = 48,120, F6 120*84+84 = 10,164, output 84*10+10 = 850; 61,706 in all.

Preprocessing: ``"tf"`` (pixels in [0, 255] to [-1, 1]), close to the paper's
normalization (background -0.1, ink 1.175). No ImageNet weights exist.
"""

from __future__ import annotations

from typing import Any

import keras

from kapps.blocks import ConvBNAct, FlattenDenseClassifier, Names
from kapps.factory import build_model
from kapps.imagenet import decode_predictions
from kapps.registry import ModelSpec, Options, family_preprocessor, register

__all__ = ["LeNet5", "preprocess_input", "decode_predictions"]

#: (filters, conv name, subsampling name) of the two feature stages; 5x5 kernels, 2x2 pooling.
STAGES: tuple[tuple[int, str, str], ...] = ((6, "c1", "s2"), (16, "c3", "s4"))
#: (units, name) of the hidden dense layers.
HIDDEN: tuple[tuple[int, str], ...] = ((120, "c5"), (84, "f6"))
FIELD = 32
ACTIVATION = "tanh"

preprocess_input = family_preprocessor("tf")


def _padding(input_shape: tuple) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Zero padding that brings sides shorter than 32 pixels to 32 (centered), or None."""
    pads = []
    for size in input_shape[:2]:
        missing = 0 if size is None else max(0, FIELD - size)
        pads.append((missing // 2, missing - missing // 2))
    return tuple(pads) if any(sum(p) for p in pads) else None


def body(options: Options, input_shape: tuple) -> list:
    blocks: list = []
    padding = _padding(input_shape)
    if padding is not None:
        blocks.append(keras.layers.ZeroPadding2D(padding, name="pad"))
    for filters, conv_name, pool_name in STAGES:
        blocks.append(ConvBNAct(
            filters, 5, padding="valid", use_bias=True, bn=False, activation=ACTIVATION,
            names=Names("", {"conv": conv_name, "act": f"{conv_name}_{ACTIVATION}", "block": f"{conv_name}_unit"}),
        ))
        blocks.append(keras.layers.AveragePooling2D(2, name=pool_name))
    return blocks


def top(options: Options, classes: int, activation: Any) -> FlattenDenseClassifier:
    return FlattenDenseClassifier(
        classes, hidden_units=[u for u, _ in HIDDEN], hidden_names=[n for _, n in HIDDEN],
        hidden_activation=ACTIVATION, activation=activation,
    )


SPEC = ModelSpec(
    name="lenet5", keras_name="LeNet5", family="lenet",
    body=body, top=top, default_size=32, min_size=28,
    params=61_706, flops=833_040, input_channels=1,
    reference="LeCun, Bottou, Bengio & Haffner 1998, Gradient-Based Learning Applied to Document Recognition",
)


@register(SPEC)
def LeNet5(input_shape=None, include_top=True, weights=None, input_tensor=None, pooling=None, classes=10,
           classifier_activation="softmax", name="lenet5", *, builder: str = "functional",
           features_only: bool = False, out_indices: tuple[int, ...] | None = None) -> keras.Model:
    """LeNet-5 for 32x32 grayscale images (28x28 are zero-padded to 32x32).

    The keras.applications argument pattern, with defaults fitted to a model that has no
    pretrained weights: ``weights=None`` (``"imagenet"`` raises: none exist), ``classes=10``
    (digits), input ``(32, 32, 1)``. ``include_top=False`` returns the 5x5x16 S4 maps
    (or their global ``pooling``). Keyword-only ``builder`` is ``"functional"`` or
    ``"sequential"``. See the module docs for the choices made against the 1998 paper.

    >>> import kapps
    >>> model = kapps.LeNet5()
    >>> model.output_shape, model.count_params()
    ((None, 10), 61706)
    >>> kapps.LeNet5(input_shape=(28, 28, 1)).count_params()
    61706
    """
    return build_model(**SPEC.bind(locals()))
