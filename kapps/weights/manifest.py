"""Reads ``weights_manifest.json``: every official weight file, its URL, size and hash.

Files come from three sources: Keras' own HDF5 files (``source`` ``"keras"``, loaded as they are),
torchvision's PyTorch checkpoints (``source`` ``"torchvision"``: a ``.pth`` whose file name carries the
first hex digits of its sha256, recorded as a ``sha256-prefix`` hash, converted once into a Keras
``.weights.h5``; see :mod:`kapps.weights.converted`) and timm's ``.safetensors`` files on the Hugging
Face hub (``source`` ``"timm"``, converted the same way; timm publishes no hash, so none is recorded).
A checkpoint holds the whole network, so its one entry (``include_top=True``) also serves
``include_top=False``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources
from typing import Any

from kapps.errors import KappsError

#: Where Keras' official files live; ``KAPPS_WEIGHTS_MIRROR`` may replace this prefix.
KERAS_BUCKET = "https://storage.googleapis.com/tensorflow/keras-applications/"
#: Where torchvision's checkpoints live; ``KAPPS_TORCHVISION_MIRROR`` may replace this prefix.
TORCHVISION_URL = "https://download.pytorch.org/models/"
#: Where timm's checkpoints live (the Hugging Face hub); ``KAPPS_TIMM_MIRROR`` may replace this prefix.
TIMM_URL = "https://huggingface.co/"
#: Weight sources: Keras' HDF5 files, torchvision's PyTorch checkpoints, timm's safetensors files.
SOURCES = ("keras", "torchvision", "timm")


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One official weight file as the manifest describes it."""

    file: str
    model: str
    include_top: bool
    variant: tuple[tuple[str, Any], ...]
    url: str
    size: int | None
    hash_algorithm: str | None
    hash_value: str | None
    hash_source: str | None
    #: How the published accuracy is reproduced (classifier files; :mod:`kapps.transforms`).
    eval_transform: dict[str, Any] | None = dataclasses.field(default=None, hash=False, compare=False)
    #: Who publishes the file (:data:`SOURCES`): ``"torchvision"`` files are PyTorch checkpoints to convert.
    source: str = "keras"
    #: The accuracy the source publishes for the file (torchvision: ``{"acc@1": ..., "acc@5": ...}``).
    accuracy: dict[str, float] | None = dataclasses.field(default=None, hash=False, compare=False)
    #: Checkpoint keys the converted model leaves out (GoogLeNet's untrained auxiliary heads: ``"aux1."``).
    ignored_key_prefixes: tuple[str, ...] = dataclasses.field(default=(), hash=False, compare=False)

    @property
    def is_checkpoint(self) -> bool:
        """A PyTorch checkpoint (converted to Keras before it is loaded), not a Keras HDF5 file."""
        return self.source != "keras"

    @property
    def variant_dict(self) -> dict[str, Any]:
        return dict(self.variant)

    def describe(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.variant]
        parts.append(f"include_top={self.include_top}")
        return f"{self.model}({', '.join(parts)})"


@functools.lru_cache(maxsize=1)
def load_manifest() -> dict[str, Any]:
    """The parsed manifest shipped inside the package."""
    text = resources.files("kapps").joinpath("weights_manifest.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def all_files() -> tuple[WeightFile, ...]:
    files = []
    for entry in load_manifest()["files"]:
        digest = entry.get("hash") or {}
        files.append(
            WeightFile(
                file=entry["file"],
                model=entry["model"],
                include_top=bool(entry["include_top"]),
                variant=tuple(sorted(entry.get("variant", {}).items())),
                url=entry["url"],
                size=entry.get("size"),
                hash_algorithm=digest.get("algorithm"),
                hash_value=digest.get("value"),
                hash_source=entry.get("hash_source"),
                eval_transform=entry.get("eval_transform"),
                source=entry.get("source", "keras"),
                accuracy=entry.get("accuracy"),
                ignored_key_prefixes=tuple(entry.get("ignored_key_prefixes", ())),
            )
        )
    return tuple(files)


def files_for(model: str) -> list[WeightFile]:
    """Every official file of one registry model."""
    return [f for f in all_files() if f.model == model]


def by_file_name(file_name: str) -> WeightFile:
    for entry in all_files():
        if entry.file == file_name:
            return entry
    raise KappsError(
        f"`name` must be a weight file listed in weights_manifest.json or a model name. "
        f"Received: name={file_name!r} (see `kapps weights list`)"
    )


def model_entry(model: str) -> dict[str, Any]:
    models = load_manifest()["models"]
    if model not in models:
        raise KappsError(f"weights_manifest.json has no model {model!r}; known: {', '.join(sorted(models))}")
    return models[model]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 1e-9
    return a == b


def find(model: str, include_top: bool, variant: dict[str, Any] | None = None) -> WeightFile:
    """The official file for a model variant, or a ValueError listing those that exist.

    >>> find("mobilenet", False, {"alpha": 0.25, "resolution": 224}).file
    'mobilenet_2_5_224_tf_no_top.h5'
    """
    variant = variant or {}
    info = model_entry(model)
    if not info.get("imagenet"):
        note = info.get("note", "")
        raise ValueError(
            f"`weights` must be None or a file path for {model}: it has no official ImageNet weights. "
            f"{note} Received: weights='imagenet'"
        )
    candidates = [f for f in files_for(model) if f.include_top == include_top]
    if not candidates and not include_top:  # a checkpoint of the whole network serves include_top=False too
        candidates = [f for f in files_for(model) if f.is_checkpoint]
    for entry in candidates:
        wanted = entry.variant_dict
        if wanted.keys() == variant.keys() and all(_same(wanted[k], variant[k]) for k in wanted):
            return entry
    asked = ", ".join(f"{k}={v!r}" for k, v in variant.items())
    existing = "; ".join(
        ", ".join(f"{k}={v!r}" for k, v in f.variant) for f in candidates
    )
    raise ValueError(
        f"No official ImageNet weight file exists for {model} with {asked}, include_top={include_top}. "
        f"Combinations that exist: {existing}. Choose one of them, or use weights=None."
    )
