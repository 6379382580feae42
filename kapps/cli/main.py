"""The ``kapps`` command line.

Exit codes: 0 success, 1 failure while running, 2 bad usage or arguments,
3 weights unavailable or failing their integrity check.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Sequence

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_WEIGHTS = 0, 1, 2, 3

#: Sub-commands defined in their own modules: each has ``add_parser(subparsers)``.
PLUGIN_MODULES = ("kapps.cli.fine_tune", "kapps.cli.bench", "kapps.cli.export")


# -- list / info --------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    import kapps

    names = kapps.list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return EXIT_FAILURE
    rows = [kapps.model_info(n) for n in names]
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    print(f"{'name':24} {'keras name':20} {'params':>12} {'GFLOPs':>8} {'size':>5} {'top-1':>6} {'weights':>8}")
    for r in rows:
        top1 = "-" if r["top1"] is None else f"{r['top1']:.1f}"
        gflops = "-" if r["gflops"] is None else f"{r['gflops']:.2f}"
        params = "-" if r["params"] is None else f"{r['params']:,}"
        print(f"{r['name']:24} {r['keras_name']:20} {params:>12} {gflops:>8} {r['default_size']:>5} {top1:>6} "
              f"{len(r['weight_files']):>8}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    import kapps

    info = kapps.model_info(args.name)
    if args.json:
        print(json.dumps(info, indent=1))
        return EXIT_OK
    for key, value in info.items():
        if key != "weight_files":
            print(f"{key:17} {value}")
    print(f"{'weight_files':17} {len(info['weight_files'])}")
    for f in info["weight_files"]:
        variant = ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("file", "url", "hash"))
        print(f"  {f['file']}  ({variant})")
    return EXIT_OK


# -- predict -------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    import kapps
    from kapps.images import load_image, sample_photos
    from kapps.registry import get_spec

    spec = get_spec(args.model)
    size = spec.default_size
    if args.images:
        labels = list(args.images)
        batch = np.stack([load_image(p, size) for p in args.images])
    else:
        labels, batch = sample_photos(size)
    weights = args.weights or "imagenet"
    model = kapps.get_model(spec.name, weights=weights, builder=args.builder)
    module = getattr(kapps, spec.family)
    preds = np.asarray(model.predict(module.preprocess_input(batch), verbose=0))
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


# -- weights -------------------------------------------------------------------------
def _weight_entries(args: argparse.Namespace):
    from kapps.weights import manifest

    if args.name.endswith(".h5"):
        return [manifest.by_file_name(args.name)]
    from kapps.registry import get_spec

    files = manifest.files_for(get_spec(args.name).name)
    if not files:
        raise ValueError(f"`name` {args.name!r} has no official ImageNet weight files (see `kapps info {args.name}`).")
    variant = dict(item.split("=", 1) for item in (args.variant or []))
    chosen = [f for f in files if f.include_top == args.include_top]
    for key, value in variant.items():
        chosen = [f for f in chosen if str(f.variant_dict.get(key)) == value or
                  (key in f.variant_dict and _num_equal(f.variant_dict[key], value))]
    if not chosen:
        raise ValueError(
            f"no weight file of {args.name} matches include_top={args.include_top} and "
            f"{variant or 'the default variant'} (see `kapps weights list {args.name}`)."
        )
    defaults = _default_variant(args.name)
    return sorted(chosen, key=lambda f: -sum(_num_equal(defaults.get(k), str(v)) or defaults.get(k) == v
                                             for k, v in f.variant))


def _default_variant(name: str) -> dict:
    """The constructor's defaults for variant keys (``alpha=1.0``, resolution = default size)."""
    import inspect

    from kapps.registry import get_spec, model_function

    params = inspect.signature(model_function(name)).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    defaults["resolution"] = get_spec(name).default_size
    return defaults


def _num_equal(a, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return False


def cmd_weights_list(args: argparse.Namespace) -> int:
    from kapps.weights import manifest, store

    files = manifest.all_files()
    if args.model:
        from kapps.registry import get_spec

        files = manifest.files_for(get_spec(args.model).name)
    for f in files:
        local = "-"
        for _, directory in store.search_dirs():
            if os.path.isfile(os.path.join(directory, f.file)):
                local = os.path.join(directory, f.file)
                break
        digest = f"{f.hash_algorithm}" if f.hash_value else "no hash"
        print(f"{f.file:70} {f.describe():55} {digest:7} {local}")
    return EXIT_OK


def cmd_weights_path(args: argparse.Namespace) -> int:
    from kapps.errors import WeightsNotFoundError
    from kapps.weights import store

    for entry in _weight_entries(args)[:1]:
        path = store.locate(entry)
        if path is None:
            raise WeightsNotFoundError(store.not_found_message(entry, "not downloaded (`kapps weights fetch`)"))
        print(path)
    return EXIT_OK


def cmd_weights_fetch(args: argparse.Namespace) -> int:
    from kapps.weights import store

    for entry in _weight_entries(args)[: None if args.all_variants else 1]:
        print(store.resolve(entry, progress=not args.no_progress))
    return EXIT_OK


def cmd_weights_verify(args: argparse.Namespace) -> int:
    from kapps.errors import KappsError, WeightsNotFoundError
    from kapps.weights import manifest, store

    if os.path.isfile(args.name):
        path = args.name
        try:
            entry = manifest.by_file_name(os.path.basename(path))
        except KappsError:
            raise KappsError(
                f"{path}: its file name {os.path.basename(path)!r} is not an official file of weights_manifest.json, "
                "so there is no published hash to verify it against."
            ) from None
    else:
        entry = _weight_entries(args)[0]
        path = store.locate(entry)
        if path is None:
            raise WeightsNotFoundError(store.not_found_message(entry, "not on disk, nothing to verify"))
    store.verify(entry, path)
    what = f"{entry.hash_algorithm} {entry.hash_value}" if entry.hash_value else "size/HDF5 only (no published hash)"
    print(f"OK {path} ({what})")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from kapps import __version__

    parser = argparse.ArgumentParser(prog="kapps", description="The kapps model zoo on the command line.")
    parser.add_argument("--version", action="version", version=f"kapps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list registered models", description="List registered models.")
    p.add_argument("pattern", nargs="?", help="glob filter, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="show a model's metadata", description="Show a model's metadata.")
    p.add_argument("name", help="registry name (mobilenet_v2) or Keras name (MobileNetV2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="classify images with an ImageNet model",
                       description="Classify images; without IMAGE, scikit-image's sample photos.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (JPEG, PNG, GIF, BMP)")
    p.add_argument("--model", default="mobilenet_v2", help="registry name (default: %(default)s)")
    p.add_argument("--top", type=int, default=5, help="labels per image (default: %(default)s)")
    p.add_argument("--weights", help="weights file instead of the official ImageNet file")
    p.add_argument("--builder", choices=("functional", "sequential"), default="functional")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)

    w = sub.add_parser("weights", help="list, locate, fetch and verify weight files",
                       description="Official weight files from weights_manifest.json.")
    wsub = w.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    p = wsub.add_parser("list", help="every official file and where it is on disk")
    p.add_argument("model", nargs="?", help="only this model's files")
    p.set_defaults(func=cmd_weights_list)
    for action, func, text in (
        ("path", cmd_weights_path, "print the local path of a weight file"),
        ("fetch", cmd_weights_fetch, "download a weight file into the kapps cache"),
        ("verify", cmd_weights_verify, "check a weight file against the manifest's size and hash"),
    ):
        p = wsub.add_parser(action, help=text, description=text)
        p.add_argument("name", metavar="NAME",
                       help="a manifest file name, or a model name (its default file; see --no-top, --variant)"
                       + (", or a file path" if action == "verify" else ""))
        p.add_argument("--no-top", dest="include_top", action="store_false", help="the file without top")
        p.add_argument("--variant", action="append", metavar="KEY=VALUE",
                       help="select a variant, e.g. --variant alpha=0.35 --variant resolution=96")
        if action == "fetch":
            p.add_argument("--all-variants", action="store_true", help="every matching file, not only the first")
            p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=func)

    for module_name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kapps`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from kapps.errors import DownloadError, KappsError, WeightsIntegrityError, WeightsNotFoundError

    try:
        return int(args.func(args) or 0)
    except (WeightsNotFoundError, WeightsIntegrityError, DownloadError) as e:
        print(f"kapps: error: {e}", file=sys.stderr)
        return EXIT_WEIGHTS
    except (KappsError, ValueError) as e:
        print(f"kapps: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kapps: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
