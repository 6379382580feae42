"""``kapps fine-tune``: fine-tune a model on a folder of images from the command line.

    kapps fine-tune DATA_DIR --model mobilenet_v2 --epochs 5 5 --out runs/ants
    kapps fine-tune DATA_DIR --segmentation unet --backbone mobilenet_v2 --classes 2 --out runs/cells

DATA_DIR holds one sub-folder per class, or ``train/`` and ``val/`` (or
``validation/``) folders that do. For segmentation it holds ``images/`` and ``masks/``
(or ``image/`` and ``label/``) sub-folders, or train/ and val/ folders that do: each mask
a PNG of class indices (or 0/255) named like its image; such a folder trains a U-Net
unless --segmentation says otherwise. The run writes ``model.keras``, ``report.json``,
``report.txt``, ``history.json`` and the plots to ``--out``, keeps crash-safe
checkpoints in ``--out``/checkpoints (rerun the same command to resume), and shows
Keras' progress bars.

``add_parser(subparsers)`` registers the subcommand on the main ``kapps`` parser;
``python -m kapps.cli.fine_tune ...`` runs it on its own.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, Sequence

from kapps.cli.common import EXIT_OK, EXIT_USAGE, add_model_options, error, model_options

__all__ = ["add_parser", "run", "main", "split_data_dir", "segmentation_model"]

VALIDATION_NAMES = ("val", "validation", "valid")
#: ``--segmentation`` choices: the kapps.segmentation architectures.
SEGMENTATION_MODELS = ("unet", "deeplabv3plus")
#: The input size of a segmentation model when --image-size is not given.
SEGMENTATION_SIZE = 256


def _unfreeze(text: str) -> Any:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _weights(text: str) -> Any:
    return None if text.lower() in ("none", "random") else text


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``fine-tune`` on ``subparsers`` (from ``parser.add_subparsers()``); its handler is
    ``args.func(args)``, which returns the exit status."""
    parser = subparsers.add_parser(
        "fine-tune", help="fine-tune an ImageNet model on a folder of class sub-folders (or of images and masks)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("data_dir", metavar="DATA_DIR",
                        help="folder of class sub-folders, or of images/ and masks/ sub-folders, or holding "
                             "train/ and val/ folders of either")
    parser.add_argument("--val", metavar="DIR", default=None,
                        help="validation folder (default: DATA_DIR/val if present, else a split of the training data)")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (model, report, plots)")
    parser.add_argument("--model", default="mobilenet_v2",
                        help="registry name (see `kapps list`) or a .keras file of a base model without top")
    parser.add_argument("--weights", type=_weights, default="imagenet",
                        help="'imagenet', 'none' (random) or the path of a weights file (of the encoder, for "
                             "--segmentation)")
    parser.add_argument("--segmentation", choices=SEGMENTATION_MODELS, default=None,
                        help="train this kapps.segmentation model on images with masks (unet, when not given, for "
                             "data that are images/ and masks/)")
    parser.add_argument("--backbone", default=None,
                        help="encoder of the segmentation model: a registry name, or 'none' for the plain U-Net "
                             "(None: the --model name)")
    parser.add_argument("--classes", type=int, default=2,
                        help="classes of the segmentation model (0/255 binary masks: 2)")
    parser.add_argument("--alpha", type=float, default=None, help="width multiplier of MobileNet families")
    add_model_options(parser)
    parser.add_argument("--preprocessing", choices=("auto", "tf", "caffe", "torch", "none"), default="auto",
                        help="pixel preprocessing (auto: the model family's; needed for a .keras base of your own)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[5], metavar="N",
                        help="epochs of phase 1 (head), and of phase 2 (fine-tuning) if a second number is given")
    parser.add_argument("--fine-tune-epochs", type=int, default=None, metavar="N",
                        help="epochs of phase 2 (default: the second --epochs number, else the first)")
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"input size in pixels (default: the model's; {SEGMENTATION_SIZE} for segmentation)")
    parser.add_argument("--stretch", action="store_true",
                        help="stretch images to the input size (default: center crop to its aspect ratio, then resize)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size per replica")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of phase 1")
    parser.add_argument("--fine-tune-lr", type=float, default=None, help="learning rate of phase 2 (default: lr/10)")
    parser.add_argument("--unfreeze", type=_unfreeze, default=0.3,
                        help="phase 2 trains this fraction of the base, this many layers, 'all', or from this layer/block")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--augment", action="store_true",
                        help="flip, rotation, zoom and contrast augmentation (masks move with their images)")
    parser.add_argument("--class-weight", choices=("none", "balanced"), default="none")
    parser.add_argument("--validation-split", type=float, default=None,
                        help="share of each class held out when there is no validation folder (default 0.2)")
    parser.add_argument("--patience", type=int, default=3, help="early stopping patience (0: never stop early)")
    parser.add_argument("--strategy", default="auto",
                        help="auto, default, one_device, mirrored, tpu or multi_worker (TF_CONFIG)")
    parser.add_argument("--mixed-precision", default="auto",
                        help="auto, float32, mixed_float16 or mixed_bfloat16")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="crash-safe checkpoints (default: OUT/checkpoints; 'none' to keep none)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--deterministic", action="store_true", help="enable TensorFlow op determinism")
    parser.add_argument("--on-bad-file", choices=("skip", "error"), default="skip")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--samples", type=int, default=16,
                        help="images in the prediction grid (in the overlay grid, for segmentation)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    parser.set_defaults(func=run)
    return parser


def split_data_dir(data_dir: str, val: str | None) -> tuple[str, str | None]:
    """``(train folder, validation folder or None)`` for DATA_DIR (see the module docstring)."""
    if val is not None:
        return data_dir, val
    train = os.path.join(data_dir, "train")
    if os.path.isdir(train):
        for name in VALIDATION_NAMES:
            if os.path.isdir(os.path.join(data_dir, name)):
                return train, os.path.join(data_dir, name)
        return train, None
    return data_dir, None


def segmentation_model(args: argparse.Namespace, architecture: str) -> tuple[Any, int, str]:
    """``(function building the model, input size, preprocessing)`` of ``--segmentation ARCHITECTURE``."""
    from kapps import segmentation
    from kapps.registry import get_spec

    if args.alpha is not None or args.option:
        raise ValueError("`--alpha` and `--option` apply to classifier bases; kapps.segmentation builds its encoder "
                         f"with the family's defaults. Received: --alpha {args.alpha} --option {args.option}")
    backbone = args.backbone or args.model
    backbone = None if backbone.lower() == "none" else get_spec(backbone).name
    if backbone is None and architecture != "unet":
        raise ValueError(f"`--backbone none` (the plain U-Net) goes with --segmentation unet only. "
                         f"Received: --segmentation {architecture}")
    size = args.image_size or SEGMENTATION_SIZE
    preprocessing = args.preprocessing
    if preprocessing == "auto":
        preprocessing = get_spec(backbone).preprocessing if backbone else "tf"
    build = segmentation.UNet if architecture == "unet" else segmentation.DeepLabV3Plus
    model = functools.partial(build, backbone, input_shape=(size, size, 3), classes=args.classes,
                              encoder_weights=args.weights if backbone else None)
    return model, size, preprocessing


def run(args: argparse.Namespace) -> int:
    """Run ``kapps fine-tune`` with parsed ``args``; returns the exit status."""
    from kapps.errors import KappsError

    try:
        return _run(args)
    except (KappsError, ValueError, FileNotFoundError) as e:
        error(e, "kapps fine-tune")
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    import keras

    import kapps.models  # noqa: F401  (registers every family for the name lookup)
    from kapps.finetune import fine_tune
    from kapps.finetune.segmentation_data import is_mask_data

    train, validation = split_data_dir(args.data_dir, args.val)
    epochs = args.epochs
    if len(epochs) > 2:
        raise ValueError(f"`--epochs` takes one or two numbers (phase 1 [phase 2]). Received: --epochs {epochs}")
    fine_tune_epochs = args.fine_tune_epochs if args.fine_tune_epochs is not None else epochs[-1]
    model: Any = args.model
    image_size, preprocessing, options, weights = args.image_size, args.preprocessing, {}, args.weights
    architecture = args.segmentation or ("unet" if is_mask_data(train) else None)
    if architecture and not model.endswith(".keras"):
        model, image_size, preprocessing = segmentation_model(args, architecture)
        weights = "imagenet"  # the encoder's weights are the model function's
    else:
        options = {} if model.endswith(".keras") else model_options(model, args.option)
        if args.alpha is not None:
            options["alpha"] = args.alpha
    if isinstance(model, str) and model.endswith(".keras"):
        if not os.path.isfile(model):
            raise ValueError(f"`--model` names a .keras file that does not exist. Received: --model {model}")
        model = keras.saving.load_model(model)
        weights = "imagenet"  # the file's own weights are used
    checkpoint_dir = args.checkpoint_dir or os.path.join(args.out, "checkpoints")
    if checkpoint_dir.lower() == "none":
        checkpoint_dir = None
    validation_split: Any = "auto" if args.validation_split is None else args.validation_split
    if args.verbose:
        print(f"kapps fine-tune: training data {train}" + (f", validation data {validation}" if validation else ""))
    result = fine_tune(
        model, train, validation, weights=weights, model_options=options or None, image_size=image_size,
        crop_to_aspect_ratio=not args.stretch, batch_size=args.batch_size, epochs=epochs[0],
        fine_tune_epochs=fine_tune_epochs, learning_rate=args.lr,
        fine_tune_learning_rate=args.fine_tune_lr, unfreeze=args.unfreeze, dropout=args.dropout,
        augmentation=args.augment, class_weight=None if args.class_weight == "none" else args.class_weight,
        validation_split=validation_split, patience=args.patience or None, strategy=args.strategy,
        mixed_precision=None if args.mixed_precision == "float32" else args.mixed_precision,
        checkpoint_dir=checkpoint_dir, seed=args.seed, deterministic=args.deterministic,
        on_bad_file=args.on_bad_file, top_k=args.top_k, verbose=args.verbose, preprocessing=preprocessing,
    )
    if not result.chief:  # other workers of a multi-worker run: the chief writes the outputs
        return EXIT_OK
    written = result.save(args.out, samples=args.samples)
    if args.verbose:
        print(result.summary())
        for what, path in written.items():
            print(f"  {what:<17}{path}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kapps.cli.fine_tune DATA_DIR --out DIR ...``"""
    parser = argparse.ArgumentParser(prog="kapps")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fine-tune", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
