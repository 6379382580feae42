"""The one door to Keras internals: every use of ``keras.src`` or of an underscore attribute.

Public Keras API is used everywhere else in kapps. What public API cannot do yet is done
here, one small function per need, each with its own test in ``tests/test_keras_compat.py``
so that a Keras upgrade that breaks a shim fails one named test. The tested Keras versions
are the ones ``setup.cfg`` accepts.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []

# -- layers and naming -----------------------------------------------------------------


# -- functional graphs (optimize, flops) -----------------------------------------------


# -- training (fine_tune) -----------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------
