"""``kapps.convert``: a PyTorch or safetensors checkpoint you have -> a Keras ``.weights.h5`` for a kapps model.

The checkpoint is read without torch (:mod:`kapps.weights.torch_checkpoint`, a restricted
unpickler), mapped onto the registered model by layer name
(:mod:`kapps.weights.torch_mapping`: torch's ``layer1.0.conv1.weight`` is Keras'
``layer1_0_conv1`` kernel) and written atomically. The file loads into either builder with
``weights=FILE``, with or without the top.
"""

from __future__ import annotations

import os
from typing import Any

from kapps.registry import get_model, get_spec
from kapps.weights.store import file_hash
from kapps.weights.torch_checkpoint import read_checkpoint, state_dict
from kapps.weights.torch_mapping import convert_state_dict

__all__ = ["convert"]


def convert(checkpoint: str | os.PathLike, model: str, out: str | os.PathLike, *, classes: int = 1000,
            **options: Any) -> str:
    """Convert ``checkpoint`` (``.pth``/``.pt`` in either torch format, or ``.safetensors``) for
    registered ``model`` into the Keras weights file ``out`` (``*.weights.h5``); returns ``out``.

    Args:
        checkpoint: the file; a state dict, possibly under ``"state_dict"``/``"model"``, keys
            possibly prefixed ``module.``.
        model: registry or Keras name (``"resnet18"``, ``"ResNet18"``).
        out: where to write (``.weights.h5``); replaced only once the new file is complete.
        classes: the classifier's size in the checkpoint (1000 for ImageNet).
        **options: the model's own constructor options.

    Raises :class:`~kapps.errors.CheckpointError` naming the key and the reason (missing,
    unexpected, or shape ``A`` where the model needs ``B``) when the checkpoint does not fit,
    or naming the global for a pickle that could run code.

    Usage: ``kapps.convert("resnet18-f37072fd.pth", "resnet18", "resnet18.weights.h5")``, then
    ``kapps.ResNet18(weights="resnet18.weights.h5")``.

    >>> import kapps
    >>> try:
    ...     kapps.convert("no_such_file.pth", "resnet18", "resnet18.weights.h5")
    ... except FileNotFoundError as error:
    ...     print(error)
    `checkpoint`: no such file. Received: checkpoint='no_such_file.pth'
    """
    path = os.fspath(checkpoint)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`checkpoint`: no such file. Received: checkpoint={path!r}")
    spec = get_spec(model)
    out = os.fspath(out)
    if not out.endswith(".weights.h5"):
        raise ValueError(f"`out` must end in '.weights.h5' (a Keras 3 weights file). Received: out={out!r}")
    state = state_dict(read_checkpoint(path), path)
    network = get_model(spec.name, weights=None, classes=classes, classifier_activation=None, **options)
    return convert_state_dict(state, network, out, source=f"checkpoint {path!r}", attributes={
        "kapps_source_sha256": file_hash(path), "kapps_source_file": os.path.basename(path),
        "kapps_model": spec.name})
