"""keras_si.invariance on small models built from keras_si.layers alone, and on a counterexample.

The SIBERT-specific checks (the pretrainer is invariant, BERT is not) stay in
tests/official/test_modeling.py; the library's tests import nothing from official/.

The invariant model is the paper's recipe in miniature: a LayerNorm without affine
(degree 0 in the parameters), a marked `SIFeedForward` (degree 2: two kernels,
no bias on the way out of the group), and a LayerNorm without affine again, so
that scaling the group by any c > 0 leaves the output unchanged; an unmarked
Dense head is the rest. The counterexample drops the last normalisation: the
head then sees c^2 times its input, and its bias is not scaled with it.
"""

import keras
import numpy as np
import pytest

import keras_si
from keras_si import layers as L
from keras_si.invariance import scaled_variables

WIDTH, OUT = 6, 3
X = np.random.RandomState(0).randn(8, WIDTH).astype("float32")


def invariant_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((WIDTH,)),
        L.layer_normalization_without_affine(name="norm_in"),
        L.mark_scale_invariant(L.SIFeedForward(16, name="ffn")),
        L.layer_normalization_without_affine(name="norm_out"),
        keras.layers.Dense(OUT, name="head"),
    ])


def counterexample():
    """The same group with no normalisation after it: not scale invariant."""
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((WIDTH,)),
        L.layer_normalization_without_affine(name="norm_in"),
        L.mark_scale_invariant(L.SIFeedForward(16, name="ffn")),
        keras.layers.Dense(OUT, name="head", bias_initializer="ones"),
    ])


def test_the_group_is_the_marked_layers_variables():
    model = invariant_model()
    si, rest = keras_si.scale_invariant_variables(model)
    ffn, head = model.get_layer("ffn"), model.get_layer("head")
    assert [v.path for v in si] == [v.path for v in ffn.trainable_variables] and si
    assert [v.path for v in rest] == [v.path for v in head.trainable_variables]


def test_invariant_model_passes_and_the_counterexample_fails():
    changes = keras_si.check_scale_invariance(invariant_model(), X, scales=(1e-2, 0.5, 1e2))
    assert sorted(changes) == [1e-2, 0.5, 1e2]
    # float32 rounding through two normalisations: ~1e-7 to 1e-6 relative.
    assert max(changes.values()) < 1e-5, changes
    keras_si.assert_scale_invariant(invariant_model(), X)

    bad = counterexample()
    changes = keras_si.check_scale_invariance(bad, X, scales=(1e-2, 1e2))
    # The head's input scales by c^2 (1e-4 and 1e4): the output changes by order 1 and more.
    assert changes[1e-2] > 0.1 and changes[1e2] > 10.0, changes
    with pytest.raises(AssertionError, match="homogeneity_report"):
        keras_si.assert_scale_invariant(bad, X)


def test_explicit_variables_a_ws_conv_kernel():
    """WSConv2D standardises its kernel: the kernel alone (not its gain or bias) is scale invariant."""
    keras.utils.set_random_seed(1)
    conv = L.WSConv2D(4, 3, epsilon=0.0, name="conv")
    model = keras.Sequential([keras.Input((7, 7, 2)), conv, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(OUT)])
    images = np.random.RandomState(1).randn(2, 7, 7, 2).astype("float32")
    assert max(keras_si.check_scale_invariance(model, images, variables=[conv.kernel]).values()) < 1e-4
    # The whole layer (gain and bias too) is not: the output moves with c.
    assert max(keras_si.check_scale_invariance(model, images, variables=conv.trainable_variables).values()) > 0.1


def test_no_group_and_bad_scales_are_refused():
    plain = keras.Sequential([keras.Input((WIDTH,)), keras.layers.Dense(OUT)])
    with pytest.raises(ValueError):
        keras_si.check_scale_invariance(plain, X)
    with pytest.raises(ValueError, match="scale"):
        keras_si.check_scale_invariance(invariant_model(), X, scales=(0.0,))


def test_homogeneity_report_finds_the_degrees_and_the_culprit():
    report = keras_si.homogeneity_report(invariant_model(), X)
    # SIFeedForward on a degree-0 input is 2-homogeneous (two kernels); LayerNorm without affine has degree 0.
    assert report.degree("ffn") == pytest.approx(2.0, abs=0.05)
    assert report.degree("norm_out") == pytest.approx(0.0, abs=0.05)
    assert all(row["homogeneous"] for row in report.rows), str(report)

    bad = keras_si.homogeneity_report(counterexample(), X)
    head = [row for row in bad.rows if row["path"].endswith("head")]
    # c^2 x W + b: two different degrees on the two sides, flagged as not homogeneous.
    assert head and not head[0]["homogeneous"], str(bad)
    assert bad.degree("ffn") == pytest.approx(2.0, abs=0.05)


def test_scaled_variables_restores_exactly_also_after_an_error():
    model = invariant_model()
    si, _ = keras_si.scale_invariant_variables(model)
    before = [np.array(v.numpy()) for v in si]
    with scaled_variables(si, 3.0):
        for v, b in zip(si, before):
            np.testing.assert_allclose(v.numpy(), 3.0 * b, rtol=1e-6)
    with pytest.raises(RuntimeError):
        with scaled_variables(si, 1e3):
            raise RuntimeError("inside the block")
    for v, b in zip(si, before):
        np.testing.assert_array_equal(v.numpy(), b)


def test_scale_invariant_optimizer_gives_the_group_to_sgdclip():
    model = invariant_model()
    si, rest = keras_si.scale_invariant_variables(model)
    group_norm = float(np.sqrt(sum(np.sum(np.asarray(v.numpy(), np.float64) ** 2) for v in si)))
    all_norm = float(np.sqrt(sum(np.sum(np.asarray(v.numpy(), np.float64) ** 2) for v in si + rest)))
    sgdclip = keras_si.SGDClip(0.1, weight_decay=0.01)
    model.compile(optimizer=keras_si.scale_invariant_optimizer(model, sgdclip, keras.optimizers.Adam(1e-3)),
                  loss="mse")
    head_before = [np.array(v.numpy()) for v in rest]
    model.fit(X, np.zeros((len(X), OUT), "float32"), batch_size=len(X), verbose=0)
    # SGDClip's norm is over the group only, read before its first step (float32 sum of ~200 squares).
    assert keras_si.callbacks.find_optimizers(model.optimizer) == [sgdclip]
    np.testing.assert_allclose(float(sgdclip.weight_norm.numpy()), group_norm, rtol=1e-5)
    assert abs(group_norm - all_norm) > 1e-3
    # The rest moved too, by Adam (its first step is about lr per entry in size).
    assert all(not np.allclose(v.numpy(), b) for v, b in zip(rest, head_before))
