"""Learning-rate schedules Keras lacks: linear warm-up around any schedule, cyclical rates, linear scaling.

The argument names are those of `keras.optimizers.schedules`
(`initial_learning_rate`, `warmup_steps`, `name`), and a schedule's default
`name` is its class name, as there.
"""

import numbers

import keras
from keras import ops


def _check_real(name, value, ok, expected):
    """`value` as a float if it is a real number (not a bool) with `ok(value)`; else a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="keras_si")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `initial_learning_rate` to `schedule(warmup_steps)`, then `schedule`.

    Goyal et al., 2017 ("Accurate, Large Minibatch SGD: Training ImageNet in
    1 Hour", Section 2.2): ramp the learning rate linearly over the first
    steps, then follow the wrapped schedule, which sees the true step count:

        lr(t) = initial + (schedule(warmup_steps) - initial) * t / warmup_steps   for t < warmup_steps
        lr(t) = schedule(t)                                                     after

    Keras's `CosineDecay(warmup_steps=, warmup_target=)` warms up into a
    cosine only; this wraps any schedule (or a constant). The names are
    Keras's: `initial_learning_rate` is where the warm-up starts, as in
    `CosineDecay`.

    Args:
        schedule: the learning rate after the warm-up: a float >= 0 (a
            constant), a `keras.optimizers.schedules.LearningRateSchedule`,
            or its serialised dict (as in a config).
        warmup_steps: the length of the warm-up in optimizer steps, an int
            >= 0; 0 means no warm-up.
        initial_learning_rate: the rate at step 0, >= 0 (default 0.0).
        name: the schedule's name (default "LinearWarmup").

    Returns:
        (when called with a step) a float32 scalar tensor: the learning rate.

    Raises:
        ValueError: if `schedule` is neither a number >= 0 nor a schedule, if
            `warmup_steps` is not an int >= 0, or if `initial_learning_rate`
            is negative.

    Example:

    >>> import keras
    >>> from keras_si.schedules import LinearWarmup
    >>> decay = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=1000)
    >>> lr = LinearWarmup(decay, warmup_steps=100)
    >>> [round(float(lr(t)), 5) for t in (0, 50, 100)]  # 0, half of decay(100), decay(100)
    [0.0, 0.04878, 0.09755]
    >>> float(lr(500)) == float(decay(500))
    True
    """

    def __init__(self, schedule, warmup_steps, initial_learning_rate=0.0, name="LinearWarmup"):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = _check_real("schedule", schedule, lambda v: v >= 0,
                                   "a number >= 0 or a keras.optimizers.schedules.LearningRateSchedule")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral) or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be an integer >= 0. Received: warmup_steps={warmup_steps!r}")
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)
        self.initial_learning_rate = _check_real("initial_learning_rate", initial_learning_rate,
                                                 lambda v: v >= 0, "a number >= 0")
        self.name = name

    def _after(self, step):
        if isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
            return ops.cast(self.schedule(step), "float32")
        return ops.cast(self.schedule, "float32")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.warmup_steps == 0:
            return self._after(step)
        target = self._after(ops.cast(self.warmup_steps, "float32"))
        frac = ops.minimum(step / self.warmup_steps, 1.0)
        warm = self.initial_learning_rate + (target - self.initial_learning_rate) * frac
        return ops.where(step < self.warmup_steps, warm, self._after(step))

    def get_config(self):
        """The constructor's arguments, the wrapped schedule serialised (Keras's schedule contract).

        Returns:
            dict: `schedule` (a float or a serialised schedule),
            `warmup_steps`, `initial_learning_rate`, `name`.
        """
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps,
                "initial_learning_rate": self.initial_learning_rate, "name": self.name}


@keras.saving.register_keras_serializable(package="keras_si")
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rates (Smith, WACV 2017, "Cyclical Learning Rates for Training Neural Networks").

    The rate goes linearly from `initial_learning_rate` up to
    `max_learning_rate` over `step_size` steps and back down over the next
    `step_size`, and so on (a cycle is `2 * step_size` steps):

        cycle = floor(1 + t / (2 step_size));  x = |t / step_size - 2 cycle + 1|
        lr(t) = initial + (max - initial) * max(0, 1 - x) * scale

    with scale = 1 ("triangular"), 1 / 2^(cycle - 1) ("triangular2": each
    cycle's amplitude halves), or gamma^t ("exp_range").

    Names: `initial_learning_rate` is Keras's word for a schedule's value at
    step 0 (Smith's "base_lr", the bottom of every cycle). Keras has no word
    for a schedule's peak (`CosineDecay`'s `warmup_target` is reached once),
    so `max_learning_rate` is Smith's "max_lr"; `step_size`, `mode` and
    `gamma` are Smith's too.

    Args:
        initial_learning_rate: the rate at step 0 and at the bottom of each
            cycle, >= 0.
        max_learning_rate: the top of the first cycle, >= `initial_learning_rate`.
        step_size: half a cycle, in steps, > 0 (Smith suggests 2-10 epochs'
            worth of steps).
        mode: "triangular" (default), "triangular2" or "exp_range".
        gamma: the per-step decay of the amplitude in "exp_range" mode, in
            (0, 1] (default 1.0; ignored by the other modes).
        name: the schedule's name (default "CyclicalLearningRate").

    Returns:
        (when called with a step) a float32 scalar tensor: the learning rate.

    Raises:
        ValueError: for an argument outside the ranges above.

    Example:

    >>> from keras_si.schedules import CyclicalLearningRate
    >>> lr = CyclicalLearningRate(initial_learning_rate=0.01, max_learning_rate=0.05, step_size=4)
    >>> [round(float(lr(t)), 4) for t in (0, 2, 4, 6, 8)]
    [0.01, 0.03, 0.05, 0.03, 0.01]
    >>> halving = CyclicalLearningRate(0.0, 1.0, step_size=4, mode="triangular2")
    >>> float(halving(4)), float(halving(12))  # the second cycle's peak is half the first's
    (1.0, 0.5)
    """

    MODES = ("triangular", "triangular2", "exp_range")

    def __init__(self, initial_learning_rate, max_learning_rate, step_size, mode="triangular", gamma=1.0,
                 name="CyclicalLearningRate"):
        initial_learning_rate = _check_real("initial_learning_rate", initial_learning_rate, lambda v: v >= 0,
                                            "a number >= 0")
        max_learning_rate = _check_real("max_learning_rate", max_learning_rate,
                                        lambda v: v >= initial_learning_rate,
                                        f"a number >= initial_learning_rate={initial_learning_rate!r}")
        step_size = _check_real("step_size", step_size, lambda v: v > 0, "a number > 0")
        if mode not in self.MODES:
            raise ValueError(f"`mode` must be one of {self.MODES}. Received: mode={mode!r}")
        gamma = _check_real("gamma", gamma, lambda v: 0 < v <= 1, "a number in (0, 1]")
        self.initial_learning_rate, self.max_learning_rate = initial_learning_rate, max_learning_rate
        self.step_size, self.mode, self.gamma, self.name = step_size, mode, gamma, name

    def __call__(self, step):
        t = ops.cast(step, "float32")
        cycle = ops.floor(1.0 + t / (2.0 * self.step_size))
        x = ops.abs(t / self.step_size - 2.0 * cycle + 1.0)
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 1.0 / ops.power(2.0, cycle - 1.0)
        else:
            scale = ops.power(self.gamma, t)
        return self.initial_learning_rate + (self.max_learning_rate - self.initial_learning_rate) * ops.maximum(
            0.0, 1.0 - x) * scale

    def get_config(self):
        """The constructor's arguments (Keras's schedule contract).

        Returns:
            dict: `initial_learning_rate`, `max_learning_rate`, `step_size`,
            `mode`, `gamma`, `name`.
        """
        return {"initial_learning_rate": self.initial_learning_rate, "max_learning_rate": self.max_learning_rate,
                "step_size": self.step_size, "mode": self.mode, "gamma": self.gamma, "name": self.name}


def linear_scaling(learning_rate, batch_size, base_batch_size=256):
    """The linear scaling rule: the learning rate for `batch_size`, given one tuned for `base_batch_size`.

    Goyal et al., 2017 ("Accurate, Large Minibatch SGD", Section 2.1): "when
    the minibatch size is multiplied by k, multiply the learning rate by k",
    i.e. `learning_rate * batch_size / base_batch_size`. Usually combined with
    a warm-up (`LinearWarmup`) at large k. Keras has no such helper; the
    argument is Keras's optimizers' `learning_rate`.

    Args:
        learning_rate: a learning rate tuned at `base_batch_size`, > 0 (a
            number; for a schedule, scale its own rates).
        batch_size: the batch size to train with, > 0.
        base_batch_size: the batch size `learning_rate` was tuned for, > 0
            (default 256, the paper's).

    Returns:
        float: the scaled learning rate.

    Raises:
        ValueError: naming the first argument that is not a number > 0.

    Example:

    >>> from keras_si.schedules import linear_scaling
    >>> linear_scaling(0.1, batch_size=1024)
    0.4
    """
    learning_rate = _check_real("learning_rate", learning_rate, lambda v: v > 0, "a number > 0")
    batch_size = _check_real("batch_size", batch_size, lambda v: v > 0, "a number > 0")
    base_batch_size = _check_real("base_batch_size", base_batch_size, lambda v: v > 0, "a number > 0")
    return learning_rate * batch_size / base_batch_size
