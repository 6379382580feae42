"""``kapps predict [IMAGE ...]``: classify images with an ImageNet model (the top-k labels).

Without IMAGE it classifies scikit-image's sample photos. Images go through the weight
file's evaluation transform (``kapps.eval_transform``); ``--option alpha=0.25`` passes the
model's own arguments; ``--runtime litert`` (``litert-int8``, ``onnxruntime``) runs the model
compiled by ``kapps.compile`` and prints its check against Keras. Keras is imported only when it runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kapps.cli.common import EXIT_OK, add_model_options, add_runtime_options, model_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps predict`` on ``subparsers``."""
    p = subparsers.add_parser("predict", help="classify images with an ImageNet model",
                              description="Classify images; without IMAGE, scikit-image's sample photos.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (JPEG, PNG, GIF, BMP)")
    p.add_argument("--model", default="mobilenet_v2", help="registry name (default: %(default)s)")
    p.add_argument("--top", type=int, default=5, help="labels per image (default: %(default)s)")
    p.add_argument("--weights", help="weights file instead of the official ImageNet file")
    p.add_argument("--builder", choices=("functional", "sequential"), default="functional")
    add_runtime_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_model_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build the model, classify the images and print (or ``--json``) the top labels."""
    import numpy as np

    import kapps
    from kapps.images import DEFAULT_SAMPLES, SAMPLE_PHOTOS, fit_image, read_image, sample_photo
    from kapps.registry import get_spec

    kapps.list_models()  # the registry holds every family from here on
    spec = get_spec(args.model)
    options = model_options(spec.name, args.option)
    raw = [np.asarray(read_image(p)) for p in args.images] if args.images else \
        [sample_photo(n) for n in SAMPLE_PHOTOS[:DEFAULT_SAMPLES]]
    labels = list(args.images) if args.images else [f"skimage.data.{n}" for n in SAMPLE_PHOTOS[:DEFAULT_SAMPLES]]
    try:  # the weight file's evaluation transform (resize, centre crop, preprocessing)
        transform = kapps.eval_transform(spec.name, **options)
    except ValueError:  # no classifier file states one: stretch to the default size
        transform = None
    if transform is not None:
        batch = np.concatenate([transform(image) for image in raw])
    else:
        module = getattr(kapps, spec.family)
        batch = module.preprocess_input(np.stack([np.clip(np.asarray(fit_image(i, spec.default_size)), 0, 255)
                                                  for i in raw]))
    model = kapps.get_model(spec.name, weights=args.weights or "imagenet", builder=args.builder, **options)
    if args.runtime == "keras":
        preds = np.asarray(model.predict(batch, verbose=0))
    else:
        predictor = kapps.compile(model, args.runtime, calibration=args.calibration,
                                  calibration_samples=args.calibration_samples, keep_float=args.keep_float,
                                  preprocessing=transform.preprocess if transform is not None else spec.name)
        if not args.json:
            print(predictor.describe())
        preds = predictor.predict(batch)
    decoded = kapps.decode_predictions(preds, top=args.top)
    if args.json:
        print(json.dumps([{"image": l, "top": [{"wnid": w, "label": n, "score": s} for w, n, s in d]}
                          for l, d in zip(labels, decoded)], indent=1))
        return EXIT_OK
    for label, rows in zip(labels, decoded):
        print(label)
        for rank, (_, name, score) in enumerate(rows, 1):
            print(f"  {rank}. {name:30} {score:.4f}")
    return EXIT_OK
