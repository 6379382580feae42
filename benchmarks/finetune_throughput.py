"""Training throughput of kapps.fine_tune against a plain hand-written Keras fine-tuning loop.

Both train the same model (MobileNetV2 base with the real ImageNet weights, global
average pooling, dropout, Dense softmax) on the same images (hymenoptera/train, center
crop and resize to the same size, batches of the same size), in two phases with the same
epochs, learning rates and unfrozen layers, and validate on hymenoptera/val after every
epoch. Throughput is images per second over the training batches of each epoch (from
the epoch's start to its last training batch; validation excluded), leaving out the
first epoch of each phase (graph tracing); and, more robust on a shared machine, from the
median time between consecutive training batches (one callback, the same on both sides).
The baseline and fine_tune alternate ``--repeats`` times so that slow drifts of a shared
machine hit both alike; the ratio fine_tune / baseline is printed (target >= 0.95).

    python benchmarks/finetune_throughput.py --image-size 160 --epochs 3 3 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

SHARED = Path(os.environ.get("KAPPS_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
TARGET = 0.95


def step_clock():
    """A Keras callback that records the time between consecutive training batches (first of each epoch left out)."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps, self.epoch, self.last = [], 0, None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.last = epoch, None

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if self.last is not None and self.epoch > 0:  # not across epochs, not in an epoch that traces
                self.steps.append(now - self.last)
            self.last = now

    return StepClock()


def plain_keras_run(paths, labels, val_paths, val_labels, args, timer) -> list[tuple[int, int, float]]:
    """The hand-written loop: tf.data + keras.Model.fit, phase 1 then phase 2. Returns (phase, epoch, img/s)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import kapps

    size = (args.image_size, args.image_size)

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)
        return tf.image.resize(image, size, antialias=True), label

    train = (tf.data.Dataset.from_tensor_slices((paths, labels)).shuffle(len(paths), seed=args.seed)
             .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(args.batch_size, drop_remainder=True)
             .prefetch(tf.data.AUTOTUNE))
    val = (tf.data.Dataset.from_tensor_slices((val_paths, val_labels)).map(load, num_parallel_calls=tf.data.AUTOTUNE)
           .batch(args.batch_size).prefetch(tf.data.AUTOTUNE))

    keras.utils.set_random_seed(args.seed)
    base = kapps.MobileNetV2(input_shape=(*size, 3), include_top=False, weights=args.weights)
    inputs = keras.Input((*size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # MobileNetV2's preprocessing
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))

    class Clock(keras.callbacks.Callback):
        def __init__(self, phase):
            super().__init__()
            self.phase, self.rows = phase, []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = self.end = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            steps = len(paths) // args.batch_size
            self.rows.append((self.phase, epoch + 1, steps * args.batch_size / (self.end - self.start)))

    rows = []
    base.trainable = False
    model.compile(keras.optimizers.Adam(args.lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = Clock(1)
    model.fit(train, epochs=args.epochs[0], validation_data=val, callbacks=[clock, timer], verbose=args.verbose)
    rows += clock.rows

    base.trainable = True
    weighted = [layer for layer in base.layers if layer.weights]
    cut = len(weighted) - int(np.ceil(0.3 * len(weighted)))
    for i, layer in enumerate(weighted):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    steps = len(paths) // args.batch_size
    schedule = keras.optimizers.schedules.CosineDecay(args.lr / 10, steps * args.epochs[1], alpha=0.01)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = Clock(2)
    model.fit(train, epochs=args.epochs[1], validation_data=val, callbacks=[clock, timer], verbose=args.verbose)
    rows += clock.rows
    return rows


def fine_tune_run(args, timer) -> list[tuple[int, int, float]]:
    import kapps

    result = kapps.fine_tune(
        "mobilenet_v2", args.train, args.val, weights=args.weights, image_size=args.image_size,
        batch_size=args.batch_size, epochs=args.epochs[0], fine_tune_epochs=args.epochs[1], learning_rate=args.lr,
        unfreeze=0.3, patience=None, seed=args.seed, callbacks=[timer], verbose=args.verbose)
    h = result.history
    return [(p, e, n / s) for p, e, n, s in zip(h["phase"], h["epoch"], h["images"], h["seconds"])]


def throughput(rows) -> float:
    """Images per second over all epochs but the first of each phase (harmonic: total images / total time)."""
    kept = [ips for phase, epoch, ips in rows if epoch > 1]
    return len(kept) / sum(1 / ips for ips in kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "data" / "hymenoptera"))
    parser.add_argument("--weights", default=str(SHARED / "weights" / "mobilenet_v2_1.0_224_no_top.converted.h5"))
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--epochs", type=int, nargs=2, default=[3, 3], metavar=("PHASE1", "PHASE2"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=2, help="baseline/fine_tune pairs, alternating")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()
    if min(args.epochs) < 2:
        parser.error("--epochs: at least 2 per phase (the first epoch of each phase is left out of the timing)")
    args.train, args.val = os.path.join(args.data, "train"), os.path.join(args.data, "val")

    import keras
    import tensorflow as tf

    from kapps.finetune import data as data_lib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one GIF of hymenoptera/train: both runs leave it out
        train = data_lib.scan_folder(args.train)
        val = data_lib.scan_folder(args.val, argument="validation")
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores; "
          f"{len(train.paths)} training images, {args.image_size} px, batch {args.batch_size}, "
          f"epochs {args.epochs[0]}+{args.epochs[1]}", flush=True)
    labels = ("plain Keras loop", "kapps.fine_tune")
    epoch_ips = {label: [] for label in labels}
    step_ips = {label: [] for label in labels}
    for repeat in range(args.repeats):
        for label in labels:
            started = time.perf_counter()
            timer = step_clock()
            if label == "kapps.fine_tune":
                rows = fine_tune_run(args, timer)
            else:
                rows = plain_keras_run(train.paths, train.labels, val.paths, val.labels, args, timer)
            epoch_ips[label].append(throughput(rows))
            step_ips[label].append(args.batch_size / statistics.median(timer.steps))
            print(f"run {repeat + 1} {label:<18} {epoch_ips[label][-1]:7.1f} train img/s over epochs, "
                  f"{step_ips[label][-1]:7.1f} img/s from the median step   (per epoch: "
                  f"{', '.join(f'{ips:.1f}' for _, _, ips in rows)}; wall {time.perf_counter() - started:.0f} s)",
                  flush=True)
            keras.backend.clear_session()
    summary = {}
    for name, table in (("epochs", epoch_ips), ("median step", step_ips)):
        ratios = [ft / base for ft, base in zip(table["kapps.fine_tune"], table["plain Keras loop"])]
        summary[name] = statistics.median(ratios)
        print(f"throughput ratio fine_tune / plain Keras loop ({name}): {summary[name]:.3f} "
              f"(per pair: {', '.join(f'{r:.3f}' for r in ratios)})")
    ratio = summary["median step"]
    print(f"target >= {TARGET} (median-step ratio): {'met' if ratio >= TARGET else 'NOT met'}")
    print(json.dumps({"epoch_img_s": {k: [round(v, 2) for v in vs] for k, vs in epoch_ips.items()},
                      "median_step_img_s": {k: [round(v, 2) for v in vs] for k, vs in step_ips.items()},
                      "ratios": {k: round(v, 4) for k, v in summary.items()}}))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
