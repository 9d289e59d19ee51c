"""Learning-rate schedules Keras lacks: linear warm-up around any schedule, cyclical rates, linear scaling."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_si")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `initial_learning_rate` to `schedule(warmup_steps)`, then `schedule`.

    Goyal et al., 2017 ("Accurate, Large Minibatch SGD"): ramp the learning
    rate linearly over the first steps, then follow the wrapped schedule
    (a float for a constant, or any `LearningRateSchedule`), which sees the
    true step count.

        lr(t) = initial + (schedule(warmup_steps) - initial) * t / warmup_steps   for t < warmup_steps
        lr(t) = schedule(t)                                                     after
    """

    def __init__(self, schedule, warmup_steps, initial_learning_rate=0.0, name="linear_warmup"):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if int(warmup_steps) < 0:
            raise ValueError(f"`warmup_steps` must be >= 0. Received: {warmup_steps}")
        if not initial_learning_rate >= 0:
            raise ValueError(f"`initial_learning_rate` must be >= 0. Received: {initial_learning_rate}")
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)
        self.initial_learning_rate = float(initial_learning_rate)
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
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps,
                "initial_learning_rate": self.initial_learning_rate, "name": self.name}


@keras.saving.register_keras_serializable(package="keras_si")
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rates (Smith, WACV 2017, "Cyclical Learning Rates for Training Neural Networks").

        cycle = floor(1 + t / (2 step_size));  x = |t / step_size - 2 cycle + 1|
        lr(t) = base + (max - base) * max(0, 1 - x) * scale

    with scale = 1 ("triangular"), 1 / 2^(cycle - 1) ("triangular2"), or
    gamma^t ("exp_range").
    """

    MODES = ("triangular", "triangular2", "exp_range")

    def __init__(self, base_learning_rate, max_learning_rate, step_size, mode="triangular", gamma=1.0,
                 name="cyclical"):
        if not base_learning_rate >= 0:
            raise ValueError(f"`base_learning_rate` must be >= 0. Received: {base_learning_rate}")
        if not max_learning_rate >= base_learning_rate:
            raise ValueError(f"`max_learning_rate` must be >= base_learning_rate. Received: {max_learning_rate}")
        if not step_size > 0:
            raise ValueError(f"`step_size` must be > 0. Received: {step_size}")
        if mode not in self.MODES:
            raise ValueError(f"`mode` must be one of {self.MODES}. Received: {mode!r}")
        if not 0 < gamma <= 1:
            raise ValueError(f"`gamma` must be in (0, 1]. Received: {gamma}")
        self.base_learning_rate, self.max_learning_rate = float(base_learning_rate), float(max_learning_rate)
        self.step_size, self.mode, self.gamma, self.name = float(step_size), mode, float(gamma), name

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
        return self.base_learning_rate + (self.max_learning_rate - self.base_learning_rate) * ops.maximum(
            0.0, 1.0 - x) * scale

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "max_learning_rate": self.max_learning_rate,
                "step_size": self.step_size, "mode": self.mode, "gamma": self.gamma, "name": self.name}


def linear_scaling(base_learning_rate, batch_size, base_batch_size=256):
    """The linear scaling rule (Goyal et al., 2017): lr = base_lr * batch_size / base_batch_size."""
    if not (base_learning_rate > 0 and batch_size > 0 and base_batch_size > 0):
        raise ValueError("base_learning_rate, batch_size and base_batch_size must be > 0. Received: "
                         f"{base_learning_rate}, {batch_size}, {base_batch_size}")
    return base_learning_rate * batch_size / base_batch_size
