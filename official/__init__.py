"""The pretraining pipeline of keras_si, run from a checkout (like the TF Model Garden); not installed."""
