"""Reusable building blocks, shared by every kapps architecture and open to users.

Each block is a Keras layer made of named sub-layers. Use it as a layer (for example
inside ``keras.Sequential``) or spread it flat into a Functional graph with
``block.apply_flat(tensor)``; see :class:`Block`. Every public name of every module in
this package (its ``__all__``) is exported here.

>>> import keras, numpy as np
>>> from kapps import blocks
>>> net = keras.Sequential([
...     keras.Input((32, 32, 3)),
...     blocks.ConvBNAct(16, 3, strides=2, activation="relu6", names="stem_"),
...     blocks.InvertedResidual(16, 24, expansion=6, strides=2, names="ir1_"),
...     blocks.DenseClassifier(10),
... ])
>>> tuple(net(np.zeros((1, 32, 32, 3), "float32")).shape)
(1, 10)
"""

from __future__ import annotations

import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
