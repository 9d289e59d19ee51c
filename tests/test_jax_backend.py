"""Runs jax_backend_check.py in a subprocess with KERAS_BACKEND=jax, where JAX is installed."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("jax", reason="JAX is not installed (optional backend)")


def test_jax_backend():
    script = os.path.join(os.path.dirname(__file__), "jax_backend_check.py")
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
