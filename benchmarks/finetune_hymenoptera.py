"""Real transfer learning: MobileNetV2 (real ImageNet weights) fine-tuned on hymenoptera.

Runs ``kapps.fine_tune`` on ../shared/data/hymenoptera (train: 244 usable photos of
ants and bees plus one GIF that is skipped; val: 153 photos) with the real
MobileNetV2 no-top weights in ../shared/weights, then the very same run from random
weights, and prints the validation accuracy and wall time of each. The target is
>= 95% validation accuracy with the pretrained weights.

    python benchmarks/finetune_hymenoptera.py            # both runs, 224 px, lr 3e-3 then 1e-4
    python benchmarks/finetune_hymenoptera.py --lr 1e-3  # fine_tune's default rates
    python benchmarks/finetune_hymenoptera.py --skip-random --out runs/hymenoptera
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("KAPPS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
TARGET = 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "data" / "hymenoptera"))
    parser.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2_1.0_224_no_top.converted.h5"))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, nargs=2, default=[5, 5], metavar=("PHASE1", "PHASE2"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate of phase 1 (fine_tune's default: 1e-3)")
    parser.add_argument("--fine-tune-lr", type=float, default=1e-4, help="learning rate of phase 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--skip-random", action="store_true", help="only the pretrained run")
    parser.add_argument("--out", default=None, help="save the pretrained run's model, report and plots here")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()

    import tensorflow as tf

    import kapps

    for path in (args.data, args.weights):
        if not os.path.exists(path):
            print(f"missing {path}: set KAPPS_SHARED_DIR to the folder holding data/ and weights/", file=sys.stderr)
            return 2
    print(f"TensorFlow {tf.__version__}, Keras {__import__('keras').__version__}, "
          f"{os.cpu_count()} CPU cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}")
    runs = [("pretrained (ImageNet)", args.weights)] + ([] if args.skip_random else [("random weights", None)])
    rows = []
    for label, weights in runs:
        print(f"\n=== {label} ===", flush=True)
        started = time.perf_counter()
        result = kapps.fine_tune(
            "mobilenet_v2", os.path.join(args.data, "train"), os.path.join(args.data, "val"), weights=weights,
            image_size=args.image_size, batch_size=args.batch_size, epochs=args.epochs[0],
            fine_tune_epochs=args.epochs[1], learning_rate=args.lr, fine_tune_learning_rate=args.fine_tune_lr,
            augmentation=args.augment, seed=args.seed, verbose=args.verbose,
        )
        wall = time.perf_counter() - started
        rows.append({
            "run": label, "val_accuracy": round(result.report.accuracy, 4),
            "val_accuracy_per_epoch": [round(v, 4) for v in result.history["val_accuracy"]],
            "phase_epochs": list(result.phase_epochs), "best_epochs": list(result.best_epochs),
            "wall_time_s": round(wall, 1), "train_images_per_s": round(result.train_images_per_second(), 1),
        })
        if args.out and weights is not None:
            result.save(args.out)
        del result
        __import__("keras").backend.clear_session()

    print("\nMobileNetV2 fine-tuned on hymenoptera "
          f"({args.image_size} px, epochs {args.epochs[0]}+{args.epochs[1]}, batch {args.batch_size}, lr {args.lr:g}"
          f"/{args.fine_tune_lr:g}, augmentation {args.augment}, seed {args.seed}):")
    print(f"{'run':<24}{'val accuracy':>14}{'wall time':>12}{'train img/s':>13}")
    for row in rows:
        print(f"{row['run']:<24}{row['val_accuracy']:>14.4f}{row['wall_time_s']:>11.1f}s{row['train_images_per_s']:>13.1f}")
    print(json.dumps(rows))
    reached = rows[0]["val_accuracy"] >= TARGET
    print(f"target >= {TARGET:.0%} with pretrained weights: {'reached' if reached else 'NOT reached'}")
    return 0 if reached else 1


if __name__ == "__main__":
    sys.exit(main())
