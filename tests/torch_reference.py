"""torch and torchvision for the tests whose reference is PyTorch (issue 12), imported safely beside TensorFlow.

torch 2.14.1 (PyPI) brings Triton, its GPU compiler, and importing torchvision reaches it
(``torchvision.ops`` imports ``torch._dynamo``, which probes for Triton). TensorFlow and Triton both
bundle LLVM: loading Triton's library into a process that has already loaded TensorFlow crashes
the process (a segmentation fault, measured here: ``import tensorflow; import torchvision``).
These tests run PyTorch on the CPU, eagerly, and need no compiler, so Triton is kept out of the
process (``import triton`` then raises ImportError, which torch reads as "no Triton"). A process
that imported Triton before TensorFlow is left as it is.

torch and torchvision are the ``.[torch]`` extra: a missing one is an ImportError, never a skip.

>>> tuple(torch_logits(torch.nn.Identity(), np.zeros((1, 2, 3, 4), "float32")).shape)
(1, 4, 2, 3)
"""

from __future__ import annotations

import sys

import numpy as np

sys.modules.setdefault("triton", None)  # see the module docs: Triton after TensorFlow crashes the process

import torch  # noqa: E402
import torchvision  # noqa: E402

__all__ = ["torch", "torchvision", "randomize", "torch_logits", "relative_difference", "converted_reference"]


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics and affine parameters (seeded), then eval mode; weights stay torch's own
    random initialisation, except those it sets to zero (ViT's classifier and class token, SqueezeNet's
    biases), which get small random values so that they are checked too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=generator) * 0.8 + 0.4)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(7)
    return model.eval()


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """``model`` on a channels-last batch (transposed to torch's NCHW)."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()


def relative_difference(got: np.ndarray, want: np.ndarray) -> float:
    """``max|got - want| / max|want|``."""
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def converted_reference(folder, name: str, torch_name: str, kind: str, seed: int, torch_kwargs: dict | None = None,
                        **options) -> tuple:
    """torchvision's ``torch_name`` with random weights and randomised BatchNorm (``seed``), its state
    dict saved with ``torch.save`` in ``kind`` (``"zip"`` or ``"legacy"``) format as ``folder/<name>.pth``
    and converted by ``kapps.convert`` for registry model ``name`` (``options``: its constructor's);
    returns ``(torch model, converted .weights.h5, checkpoint)``."""
    import kapps

    torch.manual_seed(seed)
    model = randomize(getattr(torchvision.models, torch_name)(weights=None, **(torch_kwargs or {})), seed=seed)
    checkpoint = folder / f"{name}.pth"
    torch.save(model.state_dict(), checkpoint, _use_new_zipfile_serialization=kind == "zip")
    return model, kapps.convert(checkpoint, name, folder / f"{name}.weights.h5", **options), checkpoint
