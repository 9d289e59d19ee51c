"""The backend-neutral suites again on JAX and PyTorch, each in its own process.

`make test` runs the whole suite on TensorFlow; Keras fixes its backend when
it is first imported, so the other backends need fresh interpreters with
KERAS_BACKEND set. Each run here is a pytest (or script) subprocess:

- the optimizer and layer conformance suites and SAM/ASAM against its float64
  reference (tests/keras_si/test_sam.py);
- the optimizers against their float64 references
  (tests/backend_reference_check.py);
- an import of keras_si with TensorFlow hidden, as a JAX/PyTorch user
  without TensorFlow has it;
- on JAX, `keras.distribution.DataParallel` over 2 host CPU devices
  (tests/keras_si/optimizers/test_jax_distribution.py).

A backend that is not installed is skipped with the reason (the CI installs
both: requirements-jax.txt, requirements-torch.txt). See docs/backends.md.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = [
    "tests/keras_si/optimizers/test_conformance.py",
    "tests/keras_si/layers/test_layer_conformance.py",
    "tests/keras_si/test_sam.py",
]
EXTRA = {"jax": ["tests/keras_si/optimizers/test_jax_distribution.py"], "torch": []}
TIMEOUT = 1200  # seconds; measured ~4 min (jax) and ~6 min (torch) on a busy 2-core machine


def _needs(backend):
    module = {"jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -r requirements-{backend}.txt)")


def _run(args, backend, **env):
    env = dict(os.environ, KERAS_BACKEND=backend, **env)
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{' '.join(args)} under KERAS_BACKEND={backend}:\n" + (
        result.stdout[-6000:] + result.stderr[-3000:])
    return result.stdout


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_suites(backend):
    _needs(backend)
    out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                *SUITES, *EXTRA[backend]], backend)
    assert " passed" in out and " failed" not in out, out[-3000:]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_float64_references(backend):
    _needs(backend)
    out = _run([sys.executable, "tests/backend_reference_check.py"], backend)
    assert "match their float64 references" in out, out


_HIDE_TENSORFLOW = """
import importlib.abc, sys
class HideTensorFlow(importlib.abc.MetaPathFinder):
    # As if TensorFlow were not installed: importing it fails. find_spec
    # still answers None for probes (torch._dynamo looks for it).
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            if any(f.filename.endswith(("importlib/util.py", "<frozen importlib.util>"))
                   for f in __import__("traceback").extract_stack()[-3:]):
                return None
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None
sys.meta_path.insert(0, HideTensorFlow())
try:
    import tensorflow
    raise SystemExit("the finder did not hide tensorflow")
except ModuleNotFoundError:
    pass
import numpy as np, keras, keras_si
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
m.compile(optimizer=keras_si.SGDClip(0.1), loss="mse")
m.fit(np.ones((8, 4), "float32"), np.zeros((8, 2), "float32"), verbose=0)
sam = keras_si.SAM(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), rho=0.05)
sam.compile(optimizer="sgd", loss="mse")
sam.fit(np.ones((8, 4), "float32"), np.zeros((8, 2), "float32"), verbose=0)
assert not any(n == "tensorflow" or n.startswith("tensorflow.") for n in sys.modules)
print("imported and trained without tensorflow on", keras.backend.backend())
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_library_needs_no_tensorflow(backend):
    _needs(backend)
    out = _run([sys.executable, "-c", _HIDE_TENSORFLOW], backend)
    assert "without tensorflow" in out, out
