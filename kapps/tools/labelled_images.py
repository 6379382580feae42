"""ImageNet-style labelled image folders, in the layouts people have on disk.

* a folder of WordNet-id sub-folders (``n01440764/*.JPEG``, torchvision's ImageFolder);
* a flat folder plus a labels CSV with a ``file`` column and a ``class_index`` and/or
  ``wnid`` column (``labels.csv``, the layout of ``../shared/data/imagenet_samples``);
* a flat folder plus the classic ``val.txt`` (``ILSVRC2012_val_00000001.JPEG 65`` per
  line, Keras' class indices) or Kaggle's ``LOC_val_solution.csv`` (``ImageId`` and a
  ``PredictionString`` that starts with the wnid).

Images in the folder that no label names are *unlabelled*, labels whose file is absent
are *missing*: both are listed by path and never counted.

>>> import os, tempfile
>>> root = tempfile.mkdtemp(); os.makedirs(os.path.join(root, "n01440764"))
>>> open(os.path.join(root, "n01440764", "a.jpg"), "wb").close()
>>> found = find_labelled_images(root)
>>> found.layout, found.labels, found.wnids
('wnid folders', [0], ['n01440764'])
"""

from __future__ import annotations

__all__ = ["IMAGE_EXTENSIONS", "LabelledImages", "find_labelled_images"]

import csv
import dataclasses
import os
import re
from typing import Iterable

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
_WNID = re.compile(r"^n\d{8}$")
_LABEL_FILES = ("labels.csv", "val.txt", "LOC_val_solution.csv")


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """Image paths with their ImageNet class index, and what could not be paired."""

    paths: list[str]
    labels: list[int]
    layout: str
    unlabelled: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)

    @property
    def wnids(self) -> list[str]:
        from kapps.imagenet import class_index

        index = class_index()
        return [index[label][0] for label in self.labels]

    def head(self, limit: int | None) -> "LabelledImages":
        """The first ``limit`` images (all when None)."""
        if limit is None:
            return self
        return dataclasses.replace(self, paths=self.paths[:limit], labels=self.labels[:limit])


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _wnid_to_index() -> dict[str, int]:
    from kapps.imagenet import class_index

    return {wnid: i for i, (wnid, _) in class_index().items()}


def _index_of(wnid: str, where: str) -> int:
    index = _wnid_to_index().get(wnid)
    if index is None:
        raise ValueError(f"`data`: {where} names {wnid!r}, which is not one of the 1000 ImageNet WordNet ids "
                         "(like 'n01440764').")
    return index


def _flat_images(folder: str) -> list[str]:
    return sorted(name for name in os.listdir(folder) if _is_image(name) and os.path.isfile(os.path.join(folder, name)))


def _pair(folder: str, rows: Iterable[tuple[str, int]], layout: str) -> LabelledImages:
    on_disk = set(_flat_images(folder))
    labels = dict(rows)
    present = sorted(name for name in labels if name in on_disk)
    return LabelledImages(
        paths=[os.path.join(folder, name) for name in present], labels=[labels[name] for name in present],
        layout=layout, unlabelled=[os.path.join(folder, n) for n in sorted(on_disk - labels.keys())],
        missing=[os.path.join(folder, n) for n in sorted(labels.keys() - on_disk)])


def _read_labels_csv(path: str) -> list[tuple[str, int]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        if "file" not in columns or not columns & {"class_index", "wnid"}:
            raise ValueError(f"`labels`: {path!r} must have a 'file' column and a 'class_index' or 'wnid' column. "
                             f"Received columns: {sorted(columns)}")
        rows = []
        for number, row in enumerate(reader, start=2):
            where = f"{os.path.basename(path)} line {number}"
            index = _index_of(row["wnid"], where) if row.get("wnid") else None
            if row.get("class_index"):
                given = int(row["class_index"])
                if not 0 <= given < 1000 or (index is not None and given != index):
                    raise ValueError(f"`data`: {where} has class_index {given} for wnid {row.get('wnid')!r} "
                                     f"(expected {index if index is not None else 'a value in [0, 999]'}).")
                index = given
            rows.append((row["file"], index))
        return rows


def _read_val_txt(path: str) -> list[tuple[str, int]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit() or not 0 <= int(parts[1]) < 1000:
                raise ValueError(f"`labels`: {os.path.basename(path)} line {number} must be 'FILE CLASS_INDEX' "
                                 f"with an index in [0, 999]. Received: {line.strip()!r}")
            rows.append((parts[0], int(parts[1])))
    return rows


def _read_loc_solution(path: str) -> list[tuple[str, int]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"ImageId", "PredictionString"} <= set(reader.fieldnames or ()):
            raise ValueError(f"`labels`: {path!r} must have the columns ImageId and PredictionString.")
        return [(row["ImageId"] + ".JPEG", _index_of((row["PredictionString"].split() or [""])[0],
                                                     f"{os.path.basename(path)} line {n}"))
                for n, row in enumerate(reader, start=2)]


def _read_any(path: str) -> tuple[list[tuple[str, int]], str]:
    name = os.path.basename(path)
    if name.endswith(".txt"):
        return _read_val_txt(path), "folder + val.txt"
    with open(path, encoding="utf-8") as f:
        header = f.readline()
    if "PredictionString" in header:
        return _read_loc_solution(path), "folder + LOC_val_solution.csv"
    return _read_labels_csv(path), "folder + labels CSV"


def _wnid_folders(folder: str) -> LabelledImages:
    subfolders = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    paths, labels = [], []
    for sub in subfolders:
        index = _index_of(sub, f"the sub-folder {os.path.join(folder, sub)!r}")
        for name in _flat_images(os.path.join(folder, sub)):
            paths.append(os.path.join(folder, sub, name))
            labels.append(index)
    return LabelledImages(paths, labels, "wnid folders", unlabelled=[os.path.join(folder, n) for n in _flat_images(folder)])


def find_labelled_images(data: str | os.PathLike, *, labels: str | os.PathLike | None = None) -> LabelledImages:
    """The labelled images of ``data`` (a folder), in sorted order; ``labels`` names the labels
    file when it is not ``labels.csv``, ``val.txt`` or ``LOC_val_solution.csv`` inside ``data``.

    Raises ValueError naming the argument for a missing folder or labels file, an unknown
    wnid, a malformed labels file or a folder without images.
    """
    folder = os.fspath(data)
    if not os.path.isdir(folder):
        raise ValueError(f"`data` must be a folder of images. Received: data={folder!r} (no such folder)")
    if labels is not None:
        labels = os.fspath(labels)
        if not os.path.isfile(labels):
            raise ValueError(f"`labels` must be an existing labels file. Received: labels={labels!r} (no such file)")
        found = _pair(folder, *_read_any(labels))
    elif any(os.path.isfile(os.path.join(folder, n)) for n in _LABEL_FILES):
        name = next(n for n in _LABEL_FILES if os.path.isfile(os.path.join(folder, n)))
        found = _pair(folder, *_read_any(os.path.join(folder, name)))
    elif any(_WNID.match(d) and os.path.isdir(os.path.join(folder, d)) for d in os.listdir(folder)):
        found = _wnid_folders(folder)
    elif _flat_images(folder):
        raise ValueError(
            f"`labels`: {folder!r} holds images but no labels: add labels.csv (file, class_index or wnid), val.txt "
            "or LOC_val_solution.csv, sort the images into WordNet-id sub-folders, or pass `labels`.")
    else:
        found = LabelledImages([], [], "empty")
    if not found.paths:
        raise ValueError(f"`data`: no labelled images (JPEG, PNG, GIF, BMP) found in {folder!r}."
                         + (f" {len(found.missing)} labelled files are missing, e.g. {found.missing[0]!r}."
                            if found.missing else ""))
    return found
