"""The registry's metadata is exact: parameter counts and FLOPs are recomputed here."""

from __future__ import annotations

import keras
import pytest

import kapps
from kapps.tools.flops import count_flops
from kapps.registry import get_spec


@pytest.mark.parametrize("name", kapps.list_models())
def test_params_and_flops_match_the_built_model(name):
    spec = get_spec(name)
    model = kapps.get_model(name, weights=None)
    assert model.count_params() == spec.params
    assert count_flops(model) == spec.flops
    keras.backend.clear_session()
