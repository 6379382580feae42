"""The ``variant`` argument of the classics torchvision also trained (AlexNet, GoogLeNet).

``variant="paper"`` is the paper's network (no ImageNet weights exist for it),
``variant="torchvision"`` torchvision's re-implementation, whose ImageNet checkpoint kapps
converts. ``variant=None`` (the default) means ``"torchvision"`` with ``weights="imagenet"`` and
``"paper"`` otherwise, so ``kapps.AlexNet()`` stays the paper's network and
``kapps.AlexNet(weights="imagenet")`` works.

>>> resolve_variant(None, "imagenet"), resolve_variant(None, None), resolve_variant("paper", "w.weights.h5")
('torchvision', 'paper', 'paper')
"""

from __future__ import annotations

from typing import Any

VARIANTS = ("paper", "torchvision")


def resolve_variant(variant: Any, weights: Any) -> Any:
    """The variant to build: ``variant`` itself, or for None the one ``weights`` needs."""
    if variant is None:
        return "torchvision" if isinstance(weights, str) and weights == "imagenet" else "paper"
    return variant


def check_variant(model: str, variant: Any, weights: Any) -> None:
    """A ValueError naming ``variant`` for a value that is not one of :data:`VARIANTS`, or for
    ``weights="imagenet"`` asked of the paper's variant."""
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"`variant` must be None, 'paper' or 'torchvision'. Received: variant={variant!r}")
    if variant == "paper" and isinstance(weights, str) and weights == "imagenet":
        raise ValueError(
            f"`weights='imagenet'` needs variant='torchvision' (or variant=None, which then selects it): {model}'s "
            "paper variant has no ImageNet weights; its ImageNet weights are torchvision's, for torchvision's "
            "architecture. Use variant='paper' with weights=None or a file path. "
            "Received: variant='paper', weights='imagenet'"
        )
