"""Reload time of Sequential-builder models: kapps' BlockSequential against plain keras.Sequential.

``keras.Sequential.from_config`` adds the layers one at a time and rebuilds the stack after
each, so reloading a Sequential of n blocks runs the blocks' graph about n(n+1)/2 times;
``kapps.builders.BlockSequential`` (the Sequential builder's class) deserializes the blocks
and builds once. Both sides reload the same saved config: kapps' own, and the same config with
its class name changed to ``Sequential`` (the blocks are identical). Each model is saved once
(``weights=None``, small input), then the two sides reload it in turns, ``--repeats`` times,
in this process; the median of each side and the ratio keras.Sequential / BlockSequential
are printed (and written as JSON with ``--out``).

    python benchmarks/sequential_reload.py --models mobilenet_v2 inception_resnet_v2 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DEFAULT_MODELS = ("mobilenet_v2", "efficientnet_v2_b0", "nasnet_mobile", "inception_resnet_v2")


def reload_seconds(config: dict, repeats: int) -> dict[str, float]:
    """Median seconds to rebuild ``config`` as BlockSequential and as plain keras.Sequential."""
    import keras

    plain = {**config, "class_name": "Sequential", "module": "keras", "registered_name": None}
    times: dict[str, list[float]] = {"BlockSequential": [], "keras.Sequential": []}
    for _ in range(repeats):
        for side, cfg in (("BlockSequential", config), ("keras.Sequential", plain)):
            keras.backend.clear_session()
            start = time.perf_counter()
            model = keras.saving.deserialize_keras_object(cfg)
            times[side].append(time.perf_counter() - start)
            assert type(model).__name__ == side.rsplit(".", 1)[-1], type(model)
    return {side: statistics.median(values) for side, values in times.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registered model names")
    parser.add_argument("--repeats", type=int, default=3, help="reloads per side and model (median reported)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    import keras

    import kapps
    from kapps.registry import get_spec

    results = {}
    for name in args.models:
        size = max(get_spec(name).min_size, 32)
        model = kapps.get_model(name, builder="sequential", weights=None, input_shape=(size, size, 3))
        config = keras.saving.serialize_keras_object(model)
        blocks = len(model.layers)
        del model
        seconds = reload_seconds(config, args.repeats)
        ratio = seconds["keras.Sequential"] / seconds["BlockSequential"]
        results[name] = {"blocks": blocks, "input_size": size, **seconds, "ratio": ratio}
        print(f"{name:22s} {blocks:3d} blocks  BlockSequential {seconds['BlockSequential']:6.2f} s  "
              f"keras.Sequential {seconds['keras.Sequential']:6.2f} s  ratio {ratio:5.2f}x", flush=True)
    if args.out:
        from kapps.utils.files import write_json_atomic

        write_json_atomic(args.out, results, indent=2)
    return results


if __name__ == "__main__":
    main()
