"""keras_si.optimizers.Optimizer: weight-decay exclusion by `variable.path`, against Keras's own by `variable.name`.

The exclusion lives in the base class; SGDClip stands in for every subclass here.
"""

import keras
import numpy as np
import pytest

import keras_si
from tests import testing_utils as tu

LR, LAM = 0.5, 0.1


def two_layers():
    """Variables with paths head/kernel, head/bias, body/kernel, body/bias (ones, so a decay step is 1 - LR * LAM)."""
    variables = []
    for name in ("head", "body"):
        layer = keras.layers.Dense(2, name=name, kernel_initializer="ones", bias_initializer="ones")
        layer.build((None, 2))
        variables += layer.trainable_variables
    return variables


def decay_step(opt, variables):
    """One step with zero gradients: only the decay moves a variable. Returns {path: new value[0]}."""
    opt.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    return {v.path: float(np.ravel(v.numpy())[0]) for v in variables}


DECAYED, KEPT = 1.0 - LR * LAM, 1.0


def test_var_names_match_the_path():
    variables = two_layers()
    opt = keras_si.SGDClip(LR, weight_decay=LAM, clip_factor=None)
    opt.exclude_from_weight_decay(var_names=["head/", "kernel$"])
    got = decay_step(opt, variables)
    assert got == pytest.approx({"head/kernel": KEPT, "head/bias": KEPT, "body/kernel": KEPT, "body/bias": DECAYED})


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="Keras's TensorFlow variable names")
def test_keras_matches_the_tensorflow_name_instead():
    # What the docstrings say of Keras 3.15 on TensorFlow: its method searches the scoped TF name
    # ("body/kernel:0"), so an anchored "kernel$" excludes nothing there, while it matches the path here.
    variables = two_layers()
    keras_opt = keras.optimizers.SGD(LR, weight_decay=LAM)
    keras_opt.exclude_from_weight_decay(var_names=["kernel$"])
    assert list(decay_step(keras_opt, variables).values()) == pytest.approx([DECAYED] * 4)


def test_one_string_is_one_pattern_and_calls_add_up():
    # A string once went through list(): "bias" became the patterns b, i, a, s, which matched "head/kernel" too.
    variables = two_layers()
    opt = keras_si.SGDClip(LR, weight_decay=LAM, clip_factor=None, exclude_from_weight_decay="body/")
    opt.exclude_from_weight_decay(var_names="bias")  # adds to the constructor's (Keras's method replaces)
    got = decay_step(opt, variables)
    assert got == pytest.approx({"head/kernel": DECAYED, "head/bias": KEPT, "body/kernel": KEPT, "body/bias": KEPT})
    assert opt.get_config()["exclude_from_weight_decay"] == ["body/", "bias"]


def test_var_list_excludes_those_variables():
    variables = two_layers()
    opt = keras_si.SGDClip(LR, weight_decay=LAM, clip_factor=None)
    opt.exclude_from_weight_decay(var_list=variables[:1])
    assert list(decay_step(opt, variables).values()) == pytest.approx([KEPT, DECAYED, DECAYED, DECAYED])


def test_exclusion_errors_name_the_argument():
    with pytest.raises(ValueError, match="exclude_from_weight_decay.*invalid regular expression"):
        keras_si.SGDP(exclude_from_weight_decay=["(bias"])
    opt = keras_si.SGDP()
    with pytest.raises(ValueError, match="exclude_from_weight_decay.*invalid regular expression"):
        opt.exclude_from_weight_decay(var_names=["[kernel"])
    variables = two_layers()
    opt.build(variables)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["bias"])


def test_exclude_from_weight_decay_matches_variable_path():
    model = tu.small_model(seed=0)
    opt = keras_si.SGDClip(0.1, weight_decay=0.5, clip_factor=None, exclude_from_weight_decay=["norm/"])
    before = {v.path: v.numpy() for v in model.trainable_variables}
    opt.apply([keras.ops.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    for v in model.trainable_variables:
        if "/norm/" in v.path:
            np.testing.assert_array_equal(v.numpy(), before[v.path])
        else:
            np.testing.assert_allclose(v.numpy(), before[v.path] * (1 - 0.1 * 0.5), rtol=1e-6)
    assert keras_si.SGDClip.from_config(opt.get_config())._weight_decay_patterns == ["norm/"]


def test_keras_method_exclusion_also_matches_path():
    model = tu.small_model(seed=0)
    opt = keras_si.SGDClip(0.1, weight_decay=0.5, clip_factor=None)
    opt.exclude_from_weight_decay(var_names=["hidden/bias"])
    bias = [v for v in model.trainable_variables if v.path.endswith("/hidden/bias")][0]
    bias.assign(np.ones(bias.shape, "float32"))
    opt.apply([keras.ops.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    np.testing.assert_array_equal(bias.numpy(), np.ones(bias.shape))
    assert opt.get_config()["exclude_from_weight_decay"] == ["hidden/bias"]
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["x"])
