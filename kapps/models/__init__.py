"""Model families: importing this package registers every model in :mod:`kapps.registry`.

Each module is named like its keras.applications counterpart (``mobilenet_v2``,
``resnet``, ...) and is also reachable as ``kapps.<module>``. The imports below are
explicit (a new family is added here, in ``FAMILY_MODULES`` and in ``kapps/__init__.py``;
``tests/test_imports.py`` fails until all three agree).

>>> import kapps.models
>>> "mobilenet_v2" in kapps.models.FAMILY_MODULES
True
"""

from __future__ import annotations

from types import ModuleType

from kapps.models import (
    alexnet,
    convnext,
    densenet,
    efficientnet,
    efficientnet_v2,
    googlenet,
    inception_resnet_v1,
    inception_resnet_v2,
    inception_v3,
    inception_v4,
    lenet,
    mobilenet,
    mobilenet_v2,
    mobilenet_v3,
    nasnet,
    regnet,
    resnet,
    resnet50,
    resnet_basic,
    resnet_rs,
    resnet_v2,
    shufflenet_v2,
    squeezenet,
    swin_transformer,
    vgg16,
    vgg19,
    vision_transformer,
    xception,
)

#: Every family module, by name (``kapps.<name>`` is the same module).
FAMILIES: dict[str, ModuleType] = {
    "alexnet": alexnet,
    "convnext": convnext,
    "densenet": densenet,
    "efficientnet": efficientnet,
    "efficientnet_v2": efficientnet_v2,
    "googlenet": googlenet,
    "inception_resnet_v1": inception_resnet_v1,
    "inception_resnet_v2": inception_resnet_v2,
    "inception_v3": inception_v3,
    "inception_v4": inception_v4,
    "lenet": lenet,
    "mobilenet": mobilenet,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3": mobilenet_v3,
    "nasnet": nasnet,
    "regnet": regnet,
    "resnet": resnet,
    "resnet50": resnet50,
    "resnet_basic": resnet_basic,
    "resnet_rs": resnet_rs,
    "resnet_v2": resnet_v2,
    "shufflenet_v2": shufflenet_v2,
    "squeezenet": squeezenet,
    "swin_transformer": swin_transformer,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "vision_transformer": vision_transformer,
    "xception": xception,
}
FAMILY_MODULES: tuple[str, ...] = tuple(FAMILIES)

__all__ = ["FAMILIES", "FAMILY_MODULES", *FAMILY_MODULES]


def load_all() -> dict[str, ModuleType]:
    """Every family module, by name (they are imported with this package)."""
    return dict(FAMILIES)
