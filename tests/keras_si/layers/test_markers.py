"""The scale-invariance marker (keras_si.layers.markers) and the invariance tools' argument errors."""

import keras
import numpy as np
import pytest

import keras_si
from keras_si import layers as L


def _model():
    return keras.Sequential([keras.Input((3, 8)), L.SIFeedForward(16, name="ffn"),
                             L.layer_normalization_without_affine("norm"), keras.layers.Dense(2, name="head")])


def test_marking_and_unmarking_decide_the_group():
    model = _model()
    ffn = model.get_layer("ffn")
    assert L.is_marked_scale_invariant(ffn)  # the SI layers mark themselves
    assert [v.name for v in keras_si.scale_invariant_variables(model)[0]] == ["kernel", "bias", "kernel"]
    assert L.mark_scale_invariant(ffn, False) is ffn
    assert keras_si.scale_invariant_variables(model)[0] == []
    L.mark_scale_invariant(model.get_layer("head"))
    assert [v.path.split("/")[-2:] for v in keras_si.scale_invariant_variables(model)[0]] == [
        ["head", "kernel"], ["head", "bias"]]
    assert not L.is_marked_scale_invariant(object())


def test_marker_survives_saving_through_the_class():
    """The marker is not in the config: keras_si's layers set it in __init__, so a loaded layer is marked."""
    clone = L.SIFeedForward.from_config(L.SIFeedForward(8).get_config())
    assert L.is_marked_scale_invariant(clone)


@pytest.mark.parametrize("c", [1.0, 0.0, -10.0, True])
def test_homogeneity_report_refuses_a_useless_factor(c):
    with pytest.raises(ValueError, match=r"^`c` must be a number > 0 other than 1\. Received: c="):
        keras_si.homogeneity_report(_model(), np.ones((1, 3, 8), "float32"), c=c)


def test_check_scale_invariance_names_a_bad_scale():
    with pytest.raises(ValueError, match=r"^`scales` must all be > 0\. Received: scales=\(2\.0, 0\.0\)"):
        keras_si.check_scale_invariance(_model(), np.ones((1, 3, 8), "float32"), scales=(2.0, 0.0))


def test_no_group_is_named():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no layer marked as scale invariant"):
        keras_si.check_scale_invariance(plain, np.ones((1, 4), "float32"))
    with pytest.raises(ValueError, match="has no variables in a layer marked"):
        keras_si.scale_invariant_optimizer(plain, keras.optimizers.SGD(), keras.optimizers.SGD())
