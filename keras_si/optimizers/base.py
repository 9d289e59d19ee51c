"""The base class of keras_si's optimizers: global gradients, path-based selection.

Keras 3 (3.15) runs an optimizer's gradient clipping *before* the
cross-replica all-reduce under `tf.distribute`, so any norm taken there is the
norm of one replica's gradient, not of the global batch's (with
`global_clipnorm` a 2-replica MirroredStrategy run takes a different step from
one device on the same batch). keras_si optimizers instead sum the gradients
across replicas *first*, exactly once, and every hook that needs a norm sees
the global-batch gradient:

    apply(grads)                                   replica context
      -> _backend_update_step(grads, vars, lr)
           grads = all_reduce_sum(grads)            one all-reduce
           grads = Keras clipnorm / clipvalue / global_clipnorm (now global)
           grads = self.transform_gradients(grads, vars, lr)   subclass hook
           per-variable update_step(grad, var, lr)  (Keras's second all-reduce
                                                     is skipped: already summed)

Weight decay is folded into each subclass's `update_step` (read the rate with
`self.weight_decay_for(variable)`), so that a hook can see the weights
*before* decay, as the paper's clipping threshold requires.

Every gradient is first brought to its variable's form (`_prepare_gradient`):
cast to the variable's dtype (a float32 gradient of a float64 variable, as
Keras's own optimizers accept), and a sparse `tf.IndexedSlices` gradient (an
embedding lookup's) is densified, duplicate indices summed, unless the
optimizer declares it can step on rows (`_keeps_sparse_gradients`). So a step
on a sparse gradient equals the step on the same gradient densified, for every
subclass, and `update_step` only ever sees one dtype.

Variables are selected by regular expressions searched in `variable.path`
(e.g. "dense_1/bias"), which is the same on every backend and is written into
`get_config`, unlike Keras's `exclude_from_weight_decay(var_names=...)`, which
matches the scoped TF name on TensorFlow and the short name elsewhere.
"""

import math
import re

import keras

from keras_si import backend
from keras_si.optimizers import _norms

# The argument checks below are shared with keras_si's other modules, not public API.
__all__ = ["Optimizer"]


def check_positive_number(name, value, allow_zero=False, allow_none=False):
    """Raises a ValueError naming `name` unless `value` is a finite number > 0."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {bound}. Received: {name}={value!r}")


def check_patterns(name, patterns):
    """`patterns` (None, a regular expression or a list of them) as a list.

    Raises a ValueError naming the argument `name` if a pattern is not a valid regular expression.
    """
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    patterns = list(patterns)
    for p in patterns:
        try:
            re.compile(p)
        except (re.error, TypeError) as e:
            raise ValueError(f"`{name}` holds an invalid regular expression {p!r}: {e}") from None
    return patterns


def check_fraction(name, value):
    """Raises a ValueError naming `name` unless `value` is a number in [0, 1) (momentum, betas)."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0):
        raise ValueError(f"`{name}` must be in [0, 1). Received: {name}={value!r}")


def concrete_scalar(fn):
    """`fn()` (a scalar tensor) evaluated now, as a Python float, outside any traced function.

    Lets a step run a Python-side check on the values it starts from at no
    cost to the compiled step (XLA included): on TensorFlow `tf.init_scope`
    leaves the function being traced and reads the variables' current values
    eagerly, which at the first trace are the values the first step starts
    from. Returns None where the values are not concrete (inside `jax.jit`,
    where Keras's JAX trainer runs the step). Each backend's way is its
    `concrete_scalar` in `keras_si/backend/<name>.py`.
    """
    return backend.optimizer_backend().concrete_scalar(fn)


def _unique_default_name(cls):
    """`stem`, then `stem_1`, `stem_2`, ...: the names Keras gives its own optimizers.

    Shares Keras's per-stem counter (`keras.backend.get_uid`), so that two
    instances never share a name (their variables' paths start with it) and
    `keras.utils.clear_session()` restarts the count, as for Keras's own.
    Returns None (Keras then names it after the class) without a stem.
    """
    stem = cls.__dict__.get("_default_name")
    if stem is None:
        return None
    uid = keras.backend.get_uid(stem)
    return stem if uid == 1 else f"{stem}_{uid - 1}"


@keras.saving.register_keras_serializable(package="keras_si")
class Optimizer(keras.optimizers.Optimizer):
    """The base class of keras_si's optimizers: global-batch gradients, selection by variable path.

    A `keras.optimizers.Optimizer` with two differences that its subclasses
    (`SGDClip`, `SGDP`, `AdamP`, `LARS`, `RAdam`) rely on:

    1. Under `tf.distribute` the gradients are summed across replicas
       *before* Keras's `clipnorm`/`clipvalue`/`global_clipnorm` and before
       the `transform_gradients` hook, so every norm is the global batch's
       (Keras 3.15 clips each replica's gradient before its all-reduce).
    2. Weight decay is not applied by Keras's separate decay pass but inside
       each subclass's `update_step`, at the rate `weight_decay_for(variable)`,
       so that a hook sees the weights before they decay. Per step, for a
       variable `w` with learning rate `lr` and decay `weight_decay`:

    ```python
    grads = all_reduce_sum(grads)                 # once, over replicas
    grads = keras_clip(grads)                     # clipnorm / clipvalue / global_clipnorm
    grads = transform_gradients(grads, variables, lr)
    w = update_step(g, w, lr)                     # includes w -= lr * weight_decay * w
    ```

    Variables are excluded from weight decay by regular expressions searched
    (`re.search`) in `variable.path` (e.g. "dense_1/bias"), the same string on
    every backend. Keras 3.15's own optimizers search the name of the
    variable they update, which depends on the backend: the scoped
    TensorFlow name on TensorFlow ("dense_1/bias:0"), the short name
    elsewhere ("bias"). So in Keras a pattern naming a layer ("dense_1/") or
    anchored at the end ("bias$") means different things on different
    backends; here it means the same on all. A pattern naming a variable
    ("bias") matches in both.

    Args:
        learning_rate: a float > 0, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no argument and returning the rate. Required.
        weight_decay: the decay rate `>= 0` (decoupled and multiplied by the
            learning rate, as Keras's: `w <- w - lr * weight_decay * w`), or
            None (default) for none.
        exclude_from_weight_decay: None (default), a regular expression, or a
            list of them, searched in `variable.path`; matching variables are
            not decayed. Saved in `get_config` (Keras's method of the same
            name saves nothing).
        name: the optimizer's name. Default None: a name unique in the
            session, as Keras gives its own optimizers ("sgdp", then "sgdp_1",
            ...); the optimizer's variables' paths start with it.
        **kwargs: the other `keras.optimizers.Optimizer` arguments
            (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
            `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`,
            `gradient_accumulation_steps`), with Keras's meaning.

    Raises:
        ValueError: if `learning_rate` (a number) is not > 0, `weight_decay`
            is negative or not finite, `exclude_from_weight_decay` holds an
            invalid regular expression, or, under a `tf.distribute` strategy,
            `gradient_accumulation_steps` or `ema_overwrite_frequency` is set
            (Keras 3.15 runs both in a `cond` that the strategy cannot
            synchronise); at `build`, if a variable is not floating point.

    Example:

    A subclass writes `update_step`, folding in the decay:

    >>> import keras
    >>> import keras_si
    >>> class SignSGD(keras_si.optimizers.Optimizer):
    ...     def update_step(self, gradient, variable, learning_rate):
    ...         lr = keras.ops.cast(learning_rate, variable.dtype)
    ...         decay = lr * self.weight_decay_for(variable)
    ...         self.assign_sub(variable, lr * keras.ops.sign(gradient) + decay * variable)
    >>> w = keras.Variable([1.0, -1.0], name="kernel")
    >>> b = keras.Variable([1.0, 1.0], name="bias")
    >>> opt = SignSGD(learning_rate=0.5, weight_decay=0.1, exclude_from_weight_decay="bias")
    >>> opt.apply([keras.ops.convert_to_tensor([3.0, -0.1])] * 2, [w, b])
    >>> [round(float(v), 4) for v in w.numpy()]  # 1 - 0.5 - 0.05, -1 + 0.5 + 0.05
    [0.45, -0.45]
    >>> [round(float(v), 4) for v in b.numpy()]  # not decayed
    [0.5, 1.5]
    """

    # The default name's stem; None: Keras's (the class name in snake case).
    # Read from the class itself only, so a user's subclass gets its own stem.
    _default_name = None

    def __init__(
        self,
        learning_rate,
        weight_decay=None,
        exclude_from_weight_decay=None,
        name=None,
        **kwargs,
    ):
        if name is None:
            name = _unique_default_name(type(self))
        if isinstance(learning_rate, int) and not isinstance(learning_rate, bool):
            learning_rate = float(learning_rate)
        if isinstance(learning_rate, float):
            check_positive_number("learning_rate", learning_rate)
        check_positive_number("weight_decay", weight_decay, allow_zero=True, allow_none=True)
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )
        self._weight_decay_patterns = []
        self._weight_decay_excluded_ids = set()
        self._add_weight_decay_patterns(exclude_from_weight_decay)
        self._check_distribution_support()

    # ----------------------------------------------------------- selection
    def _add_weight_decay_patterns(self, patterns):
        self._weight_decay_patterns.extend(check_patterns("exclude_from_weight_decay", patterns))

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Excludes variables from weight decay; call it before the optimizer is built.

        Keras's signature, with two differences in meaning:

        - `var_names` are regular expressions searched (`re.search`) in
          `variable.path` ("dense_1/bias"), the same on every backend, where
          Keras searches the backend's variable name ("dense_1/bias:0" on
          TensorFlow, "bias" on JAX and PyTorch). So `"dense_1/"` excludes one
          layer's variables and `"bias$"` every bias, on every backend.
        - Each call adds to the exclusions made so far (including the
          constructor's `exclude_from_weight_decay`); Keras's replaces them.
          The patterns are saved in `get_config`; `var_list` is not (it holds
          objects), so prefer `var_names` for a model you save.

        Args:
            var_list: None (default) or a list of variables to exclude.
            var_names: None (default), a regular expression, or a list of
                them, searched in `variable.path`.

        Raises:
            ValueError: if the optimizer is already built (Keras's rule), or a
                pattern is not a valid regular expression.

        Example:

        >>> import keras
        >>> import keras_si
        >>> layer = keras.layers.Dense(2, name="head")
        >>> layer.build((None, 3))
        >>> opt = keras_si.SGDClip(weight_decay=0.1)
        >>> opt.exclude_from_weight_decay(var_names=["head/bias$"])
        >>> opt.build(layer.trainable_variables)
        >>> [(v.path, opt.weight_decay_for(v)) for v in layer.trainable_variables]
        [('head/kernel', 0.1), ('head/bias', 0.0)]
        """
        if self.built:
            raise ValueError(
                "`exclude_from_weight_decay()` must be called before the optimizer "
                "is built (before the first training step)."
            )
        if var_list:
            self._weight_decay_excluded_ids |= {self._var_key(v) for v in var_list}
        if var_names:
            self._add_weight_decay_patterns(var_names)

    def _matches_weight_decay_exclusion(self, variable):
        if self._var_key(variable) in self._weight_decay_excluded_ids:
            return True
        path = getattr(variable, "path", variable.name)
        return any(re.search(p, path) for p in self._weight_decay_patterns)

    def weight_decay_for(self, variable):
        """The weight decay rate that applies to `variable` in this optimizer's step.

        Args:
            variable: one of the variables the optimizer was built with.

        Returns:
            A Python float: `weight_decay`, or 0.0 if the variable is excluded
            (by `exclude_from_weight_decay`) or `weight_decay` is None or 0.

        Raises:
            KeyError: if the optimizer was built without `variable`.
        """
        if not self.weight_decay:
            return 0.0
        return self._decay_rates[self._get_variable_index(variable)]

    # --------------------------------------------------------------- build
    def _check_distribution_support(self):
        # Keras 3.15 runs these two features inside an `ops.cond` whose branch
        # calls `merge_call`, which tf.distribute forbids: the failure would
        # come from deep inside the traced train step. Say so up front.
        if not backend.optimizer_backend().has_strategy():
            return
        if self.gradient_accumulation_steps:
            raise ValueError(
                f"{type(self).__name__}: `gradient_accumulation_steps` is not supported "
                "under a tf.distribute strategy (Keras 3 runs the accumulation in a "
                "`cond` that tf.distribute cannot synchronise). Increase the global "
                "batch size instead, or train without a strategy."
            )
        if self.use_ema and self.ema_overwrite_frequency:
            raise ValueError(
                f"{type(self).__name__}: `ema_overwrite_frequency` is not supported under "
                "a tf.distribute strategy (Keras 3 overwrites the weights inside a "
                "`cond` that tf.distribute cannot synchronise). Keep `use_ema=True` "
                "without it: the EMA weights are written to the model when `fit` ends."
            )

    def build(self, variables):
        if self.built:
            return
        for v in variables:
            dtype = keras.backend.standardize_dtype(v.dtype)
            if not ("float" in dtype):
                raise ValueError(
                    f"{type(self).__name__} can only update floating-point variables; "
                    f"variable {getattr(v, 'path', v.name)!r} has dtype {dtype}."
                )
        self._check_distribution_support()
        super().build(variables)
        lam = float(self.weight_decay or 0.0)
        self._decay_rates = [
            0.0 if self._matches_weight_decay_exclusion(v) else lam for v in variables
        ]

    # ----------------------------------------------------- the update path
    def _clip_gradients(self, grads):
        # Keras calls this before the all-reduce; clipping moves to
        # `_backend_update_step`, after it.
        return grads

    def _apply_weight_decay(self, variables):
        # Folded into `update_step` (see `weight_decay_for`), so that
        # `transform_gradients` sees the weights before decay.
        return

    def _all_reduce_sum_gradients(self, grads_and_vars):
        # TF backend hook: the gradients were summed in `_backend_update_step`.
        return list(grads_and_vars)

    def _keeps_sparse_gradients(self):
        """Hook: True if `update_step` takes `tf.IndexedSlices` gradients as they are.

        Such an optimizer gets them with duplicate indices summed (each row
        once, so that norms are right) and must step only on their rows
        where that is exact. The default, False, densifies them first: every
        update that keeps dense state (momentum, Adam's moments) or takes
        dense norms is exact only on the dense gradient.
        """
        return False

    def _prepare_gradient(self, grad, variable):
        """`grad` in `variable`'s dtype; densified unless `_keeps_sparse_gradients()`."""
        if grad is None:
            return None
        dtype = keras.backend.standardize_dtype(variable.dtype)
        be = backend.optimizer_backend()
        if be.is_sparse(grad):
            # Indices may be a Python tuple (Keras's built-ins accept it); the
            # sparse ops below need a tensor, which `cast_sparse` makes.
            grad = be.cast_sparse(grad, dtype)
            if self._keeps_sparse_gradients():
                return be.combine_duplicate_rows(grad)
            # The dense form sums the rows that share an index.
            return be.densify(grad)
        grad = keras.ops.convert_to_tensor(grad, sparse=False)
        if keras.backend.standardize_dtype(grad.dtype) != dtype:
            grad = keras.ops.cast(grad, dtype)
        return grad

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        grads = [
            self._prepare_gradient(g, v)
            for g, v in zip(_norms.all_reduce_sum(grads), trainable_variables)
        ]
        grads = keras.optimizers.Optimizer._clip_gradients(self, grads)
        grads = self.transform_gradients(grads, trainable_variables, learning_rate)
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def transform_gradients(self, grads, variables, learning_rate):
        """Hook: transforms the global-batch gradients of one step, before any update.

        Called once per step (inside the traced train step), after the
        all-reduce and Keras's clipping, with every gradient of the step at
        once: the place for a transformation that needs norms over many
        variables, like `SGDClip`'s relative clip.

        Args:
            grads: a list of gradients (tensors, `tf.IndexedSlices` for an
                embedding's, or None for a variable without one), summed over
                replicas and cast to their variables' dtypes.
            variables: the variables of `grads`, in the same order, holding
                their values before this step's update and decay.
            learning_rate: this step's learning rate, a scalar tensor.

        Returns:
            A list of the same length: the gradients `update_step` receives.
            The default returns `grads` unchanged.
        """
        return grads

    # -------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config["exclude_from_weight_decay"] = list(self._weight_decay_patterns) or None
        return config
