"""Segmentation on the two real datasets in ../shared: U-Net and DeepLabV3+ trained by ``kapps.fine_tune``.

For each dataset (a fixed train/validation split by file name), three runs of ``kapps.fine_tune``
with the same recipe:

* U-Net on MobileNetV2 carrying the real ImageNet weights in ../shared/weights;
* the same U-Net from random weights;
* DeepLabV3+ on one more backbone, MobileNet (alpha 1.0, real weights are not in ../shared for it,
  so random; ``--deeplab-backbone`` picks another).

It prints, and writes as JSON (``--out``), the foreground IoU (membrane: the membrane class, 0;
horses: the horse class, 1), mean IoU, pixel accuracy and wall time of each run.

Datasets (read their PROVENANCE.txt):
* ``membrane``: the U-Net paper's ISBI 2012 EM slices, 30 labelled 512x512 images; slices 0-23
  train, 24-29 validate.
* ``horses``: the Weizmann horses, 327 photos with masks; the stems sorted, then shuffled with
  seed 0, the first 20% validate.

    python benchmarks/segmentation.py                          # both datasets, 128 px
    python benchmarks/segmentation.py --datasets membrane --image-size 256
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("KAPPS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
MOBILENET_V2 = SHARED / "weights" / "mobilenet_v2_1.0_224_no_top.converted.h5"

#: dataset -> (image folder, mask folder, foreground class, foreground name) relative to ../shared/data/<name>
DATASETS = {
    "membrane": ("membrane/train/image", "membrane/train/label", 0, "membrane"),
    "horses": ("weizmann_horse/images", "weizmann_horse/masks", 1, "horse"),
}


def split_stems(name: str, stems: list[str]) -> tuple[list[str], list[str]]:
    """The fixed ``(train, validation)`` stems of a dataset."""
    if name == "membrane":
        ordered = sorted(stems, key=int)
        return ordered[:24], ordered[24:]
    ordered = sorted(stems)
    random.Random(0).shuffle(ordered)
    cut = len(ordered) // 5
    return ordered[cut:], ordered[:cut]


def link_split(name: str, root: Path) -> tuple[Path, Path]:
    """``root/<name>/{train,validation}/{images,masks}`` of symbolic links to the shared files."""
    images_dir, masks_dir, _, _ = DATASETS[name]
    images = {p.stem: p for p in (SHARED / "data" / images_dir).iterdir()}
    masks = {p.stem: p for p in (SHARED / "data" / masks_dir).iterdir()}
    train, validation = split_stems(name, sorted(images.keys() & masks.keys()))
    folders = []
    for part, stems in (("train", train), ("validation", validation)):
        folder = root / name / part
        for kind, files in (("images", images), ("masks", masks)):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            for stem in stems:
                (folder / kind / files[stem].name).symlink_to(files[stem])
        folders.append(folder)
    return folders[0], folders[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, nargs=2, default=[6, 3], metavar=("PHASE1", "PHASE2"))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--deeplab-backbone", default="mobilenet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()

    if not MOBILENET_V2.exists():
        print(f"missing {MOBILENET_V2}: set KAPPS_SHARED_DIR to the folder holding data/ and weights/", file=sys.stderr)
        return 2
    import functools

    import keras
    import tensorflow as tf

    import kapps
    from kapps import segmentation
    from kapps.registry import get_spec

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, "
          f"{args.image_size} px, epochs {args.epochs[0]}+{args.epochs[1]}, batch {args.batch_size}, lr {args.lr:g}")
    shape = (args.image_size, args.image_size, 3)
    runs = [
        ("U-Net, MobileNetV2, ImageNet encoder", "mobilenet_v2", functools.partial(
            segmentation.UNet, "mobilenet_v2", shape, 2, encoder_weights=str(MOBILENET_V2))),
        ("U-Net, MobileNetV2, random encoder", "mobilenet_v2", functools.partial(
            segmentation.UNet, "mobilenet_v2", shape, 2, encoder_weights=None)),
        (f"DeepLabV3+, {args.deeplab_backbone}, random encoder", args.deeplab_backbone, functools.partial(
            segmentation.DeepLabV3Plus, args.deeplab_backbone, shape, 2, encoder_weights=None)),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            train, validation = link_split(dataset, Path(tmp))
            _, _, foreground, what = DATASETS[dataset]
            for label, backbone, build in runs:
                print(f"\n=== {dataset}: {label} ===", flush=True)
                started = time.perf_counter()
                result = kapps.fine_tune(build, str(train), str(validation), image_size=args.image_size,
                                         batch_size=args.batch_size, epochs=args.epochs[0],
                                         fine_tune_epochs=args.epochs[1], learning_rate=args.lr, seed=args.seed,
                                         preprocessing=get_spec(backbone).preprocessing, verbose=args.verbose)
                report = result.report
                rows.append({
                    "dataset": dataset, "run": label, "foreground": what,
                    "foreground_iou": round(report.per_class[str(foreground)]["iou"], 4),
                    "mean_iou": round(report.mean_iou, 4), "pixel_accuracy": round(report.accuracy, 4),
                    "validation_images": report.num_samples, "wall_time_s": round(time.perf_counter() - started, 1),
                })
                print(json.dumps(rows[-1]), flush=True)
                del result
                keras.backend.clear_session()

    print(f"\n| dataset | run | foreground IoU | mean IoU | pixel accuracy | wall time |\n|---|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['dataset']} ({row['validation_images']} val.) | {row['run']} | {row['foreground_iou']:.3f} "
              f"({row['foreground']}) | {row['mean_iou']:.3f} | {row['pixel_accuracy']:.3f} | {row['wall_time_s']:.0f} s |")
    if args.out:
        from kapps.utils.files import write_json_atomic

        write_json_atomic(args.out, rows, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
