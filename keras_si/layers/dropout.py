"""`HashedDropout`: Keras's Dropout with a mask generator that XLA compiles well on every device."""

import math

import keras
from keras import ops

from keras_si._backend_utils import in_xla_context

# Two odd 32-bit multipliers of "lowbias32" (C. Wellons, "Prospecting for hash
# functions", 2018): a bijective integer hash with near-ideal avalanche.
_MUL1, _MUL2 = 0x7FEB352D, 0x846CA68B
_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio: decorrelates the two seed words


def _mix32(x):
    """lowbias32 on a uint32 tensor: `x ^= x >> 16; x *= M1; x ^= x >> 15; x *= M2; x ^= x >> 16`."""
    x = ops.bitwise_xor(x, ops.right_shift(x, 16))
    x = ops.multiply(x, ops.cast(_MUL1, "uint32"))
    x = ops.bitwise_xor(x, ops.right_shift(x, 15))
    x = ops.multiply(x, ops.cast(_MUL2, "uint32"))
    return ops.bitwise_xor(x, ops.right_shift(x, 16))


def hash_keep_mask(shape, seed, rate):
    """Boolean keep-mask of `shape`, each entry kept with probability `1 - rate`.

    A counter-based generator, like Philox or ThreeFry, with a cheaper round
    function: entry `i` (its row-major index) is kept iff
    `mix(mix(i + k1) ^ k2) >= round(rate * 2**32)`, where `mix` is lowbias32
    (C. Wellons, "Prospecting for hash functions", 2018) and `(k1, k2)` are
    the two words of `seed` (low 32 bits of each) hashed together. The drop
    probability is `rate` to within 2**-33. Everything is elementwise over an
    iota, so XLA fuses the mask into the op that consumes it instead of
    writing it out (see `HashedDropout`). Indices wrap at 2**32 entries, so
    `HashedDropout` uses it only below that.

    Args:
        shape: the mask's shape, a tuple of ints; under TensorFlow it may hold
            scalar int tensors (dynamic dimensions).
        seed: two integers (a `[2]` tensor or sequence, any integer dtype;
            e.g. what `keras.random.SeedGenerator.next()` returns). The same
            seed gives the same mask.
        rate: the drop probability, in [0, 1].

    Returns:
        A bool tensor of `shape`: True where the entry is kept.

    Example:

    >>> import numpy as np
    >>> from keras_si.layers.dropout import hash_keep_mask
    >>> keep = np.asarray(hash_keep_mask((256, 256), np.array([1, 2]), 0.25))
    >>> keep.dtype, bool(abs(keep.mean() - 0.75) < 0.01)  # 65,536 draws: 0.01 is 6 standard deviations
    (dtype('bool'), True)
    >>> bool((np.asarray(hash_keep_mask((256, 256), np.array([1, 2]), 0.25)) == keep).all())
    True
    """
    seed = ops.cast(seed, "uint32")
    k1 = _mix32(ops.bitwise_xor(seed[0], ops.cast(_GOLDEN, "uint32")))
    k2 = _mix32(seed[1] + k1)
    index, stride = None, ops.cast(1, "uint32")
    for axis in reversed(range(len(shape))):
        along = ops.cast(ops.arange(shape[axis], dtype="int32"), "uint32") * stride
        along = ops.reshape(along, [-1 if a == axis else 1 for a in range(len(shape))])
        index = along if index is None else index + along
        stride = stride * ops.cast(shape[axis], "uint32")
    bits = _mix32(ops.bitwise_xor(_mix32(index + k1), k2))
    threshold = min(round(rate * 2.0**32), 2**32 - 1)
    return ops.greater_equal(bits, ops.cast(threshold, "uint32"))


@keras.saving.register_keras_serializable(package="keras_si")
class HashedDropout(keras.layers.Dropout):
    """Keras's `Dropout` (same arguments, state and rescaling) drawing its mask from an integer hash.

    Named for what differs from `keras.layers.Dropout`: the generator of the
    mask. The generator behind Keras's dropout mask is, in two common
    settings, the most expensive elementwise op of a transformer step.

    - TensorFlow backend under XLA: Keras draws the mask with
      `tf.nn.experimental.stateless_dropout`, i.e. `stateless_uniform` with
      the algorithm left to "auto_select". Compiled by XLA for the CPU that
      choice is pathologically slow: a 32 x 128 x 1024 mask took 1.2-1.4 s
      (TF 2.21, 2 cores), against 5.6 ms with ThreeFry named explicitly and
      3.0 ms here, which is what scaling the tensor alone takes.
    - JAX backend: Keras draws with JAX's ThreeFry key, some 20 rounds of
      integer arithmetic per pair of words, and XLA computes all the masks
      of a step up front and keeps them in memory. Here BERT-base on an H100
      (bf16, batch 512) trains at 29.7% MFU against 27.9% with Keras's
      dropout (docs/benchmarks.md). JAX's "rbg" key (XLA's RngBitGenerator)
      measured no faster than ThreeFry there: it writes the words out.

    Here the mask is `hash_keep_mask`: two rounds of a 32-bit integer hash
    over each entry's index, which XLA fuses into the select that applies
    it. The masks differ from Keras's, with the same distribution and the
    same seeding contract: a given seed gives the same masks, and each call
    advances the layer's seed. Without XLA on TensorFlow (where Keras's
    kernels are fast), on other backends, with `noise_shape` and for
    tensors of 2**32 entries or more it is Keras's Dropout unchanged.

    Args:
        rate: the fraction of entries dropped, in [0, 1].
        noise_shape: as `keras.layers.Dropout` (default None); when given,
            Keras's own generator draws the mask.
        seed: an int seeding the layer's `SeedGenerator` (default None: a
            random seed).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Raises:
        ValueError: from Keras, if `rate` is outside [0, 1].

    Call args:
        inputs: a tensor of any shape and floating dtype.
        training: bool (default False): drop only when True.

    Returns:
        A tensor of the inputs' shape and dtype: when training, each entry
        zeroed with probability `rate` and the others divided by
        `1 - rate`; otherwise the inputs.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from keras_si.layers import HashedDropout
    >>> layer = HashedDropout(0.5, seed=1)
    >>> x = np.ones((64, 64), "float32")
    >>> bool((np.asarray(layer(x)) == x).all())  # not training: the inputs
    True
    >>> step = tf.function(lambda x: layer(x, training=True), jit_compile=True)  # the hashed mask
    >>> y = np.asarray(step(x))
    >>> sorted(set(y.ravel().tolist())), bool(abs((y == 0).mean() - 0.5) < 0.03)  # 0.03: 4 standard deviations
    ([0.0, 2.0], True)
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        # Keras's own arguments, spelled out so that the signature documents them.
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or self.noise_shape is not None or not self._compiled_or_jax():
            return super().call(inputs, training=training)
        shape = ops.shape(inputs)
        if all(isinstance(d, int) for d in shape) and math.prod(shape) >= 2**32:
            return super().call(inputs, training=training)
        if self.rate == 1.0:
            return ops.zeros_like(inputs)
        keep = hash_keep_mask(shape, self.seed_generator.next(), self.rate)
        return ops.where(keep, inputs / ops.cast(1.0 - self.rate, inputs.dtype), ops.zeros_like(inputs))

    @staticmethod
    def _compiled_or_jax():
        backend = keras.backend.backend()
        return backend == "jax" or (backend == "tensorflow" and in_xla_context())
