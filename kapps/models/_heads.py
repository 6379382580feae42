"""Spec heads shared by the families whose Keras pooling layers are named.

ResNet, ResNetV2, DenseNet, InceptionV3, InceptionResNetV2 and Xception name the
classifier's pooling ``avg_pool``; ResNet and DenseNet also name the no-top pooling
``avg_pool`` / ``max_pool``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapps.blocks import DenseClassifier, PoolingHead


def avg_pool_top(options: Mapping, classes: int, activation: Any) -> DenseClassifier:
    """The ImageNet top: ``avg_pool`` global average pooling, then ``predictions``."""
    return DenseClassifier(classes, activation=activation, pool_name="avg_pool")


def named_pool_no_top(options: Mapping, pooling: str | None) -> PoolingHead | None:
    """Without the top: global pooling named ``avg_pool`` or ``max_pool``, or none."""
    return None if pooling is None else PoolingHead(pooling, pool_name=f"{pooling}_pool")
