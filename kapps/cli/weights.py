"""``kapps weights list|path|fetch|verify``: the official weight files of weights_manifest.json.

A NAME is a manifest file name (``mobilenet_2_5_224_tf_no_top.h5``) or a model name, which
means its default file; ``--no-top`` and ``--variant KEY=VALUE`` choose another one.
"""

from __future__ import annotations

import argparse
import inspect
import os
from typing import Any

from kapps.cli.common import EXIT_OK

__all__ = ["add_parser", "run_list", "run_path", "run_fetch", "run_verify"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``kapps weights`` and its four actions on ``subparsers``."""
    w = subparsers.add_parser("weights", help="list, locate, fetch and verify weight files",
                              description="Official weight files from weights_manifest.json.")
    actions = w.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="every official file and where it is on disk",
                           description="Every official file and where it is on disk.")
    p.add_argument("model", nargs="?", help="only this model's files")
    p.set_defaults(func=run_list)
    for action, func, text in (
        ("path", run_path, "print the local path of a weight file"),
        ("fetch", run_fetch, "download a weight file into the kapps cache"),
        ("verify", run_verify, "check a weight file against the manifest's size and hash"),
    ):
        p = actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
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
    return w


def _spec(name: str) -> Any:
    import kapps.models  # noqa: F401  (registers every family)
    from kapps.registry import get_spec

    return get_spec(name)


def _weight_entries(args: argparse.Namespace) -> list:
    """The manifest entries NAME selects, the constructor's default variant first."""
    from kapps.weights import manifest

    if args.name.endswith((".h5", ".pth")):
        return [manifest.by_file_name(args.name)]
    files = manifest.files_for(_spec(args.name).name)
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
    from kapps.registry import model_function

    params = inspect.signature(model_function(name)).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    defaults["resolution"] = _spec(name).default_size
    return defaults


def _num_equal(a: Any, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return False


def run_list(args: argparse.Namespace) -> int:
    """``kapps weights list [MODEL]``: file, variant, hash kind and local path (or ``-``)."""
    from kapps.weights import manifest, store

    files = manifest.files_for(_spec(args.model).name) if args.model else manifest.all_files()
    for f in files:
        local = "-"
        for _, directory in store.search_dirs():
            if os.path.isfile(os.path.join(directory, f.file)):
                local = os.path.join(directory, f.file)
                break
        digest = f"{f.hash_algorithm}" if f.hash_value else "no hash"
        print(f"{f.file:70} {f.describe():55} {digest:7} {local}")
    return EXIT_OK


def run_path(args: argparse.Namespace) -> int:
    """``kapps weights path NAME``: the local path, or WeightsNotFoundError (exit 3)."""
    from kapps.errors import WeightsNotFoundError
    from kapps.weights import store

    entry = _weight_entries(args)[0]
    path = store.locate(entry)
    if path is None:
        raise WeightsNotFoundError(store.not_found_message(entry, "not downloaded (`kapps weights fetch`)"))
    print(path)
    return EXIT_OK


def run_fetch(args: argparse.Namespace) -> int:
    """``kapps weights fetch NAME``: download (or find) the file(s) and print their paths."""
    from kapps.weights import store

    for entry in _weight_entries(args)[: None if args.all_variants else 1]:
        print(store.resolve(entry, progress=not args.no_progress))
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """``kapps weights verify NAME|PATH``: size, HDF5 and published hash, or exit 3."""
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
