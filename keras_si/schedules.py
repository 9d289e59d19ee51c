"""Learning-rate schedules Keras lacks: a linear warm-up around any schedule."""

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
