"""The registry's metadata is exact: parameter counts and FLOPs are recomputed on built models.

The keras.applications models are checked on the model tests/test_parity.py builds at
their smallest size with the top (the same parameters, FLOPs counted at the default
size), RegNet and ResNet-RS on the one tests/test_tf_keras_families.py builds the same way
against tf.keras; here the others, built at their default size: models without a twin, models
whose top depends on the input size, and the families whose graph depends on it (FLOPs).
"""

from __future__ import annotations

import keras
import pytest

import kapps
from kapps.tools.flops import count_flops
from kapps.registry import get_spec
from parity import SIZE_DEPENDENT_GRAPH, SIZE_DEPENDENT_TOP, TF_KERAS_FAMILIES

#: Models with no reference twin: neither in keras.applications nor in tf.keras (whose RegNet and
#: ResNet-RS tests/test_tf_keras_families.py checks the same way tests/test_parity.py does).
NOT_IN_KERAS = [n for n in kapps.list_models() if not hasattr(keras.applications, get_spec(n).keras_name)
                and get_spec(n).family not in TF_KERAS_FAMILIES]


#: Parity cannot count these: no Keras twin, a top that depends on the input size, or (FLOPs only)
#: a graph that depends on it.
REBUILT = [n for n in kapps.list_models()
           if n in NOT_IN_KERAS or n in SIZE_DEPENDENT_TOP or get_spec(n).family in SIZE_DEPENDENT_GRAPH]


@pytest.mark.parametrize("name", REBUILT)
def test_params_and_flops_match_the_built_model(name):
    spec = get_spec(name)
    model = kapps.get_model(name, weights=None)
    assert model.count_params() == spec.params
    assert count_flops(model) == spec.flops
    keras.backend.clear_session()
