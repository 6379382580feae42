"""One test per shim in kapps._keras_compat: a Keras upgrade that breaks one fails here, by name."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kapps import _keras_compat as compat

# -- layers and naming -----------------------------------------------------------------


# -- functional graphs (optimize, flops) -----------------------------------------------


# -- training (fine_tune) -----------------------------------------------------------------


# -- saving and serialization ----------------------------------------------------------


# -- backends ---------------------------------------------------------------------------
