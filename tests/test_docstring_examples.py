"""Runs every `>>>` example in keras_si's docstrings with doctest, one test per module (TensorFlow backend).

Each docstring's examples run in a namespace of their own that starts with `numpy as np`, `keras` and `keras_si`
imported, as in a user's session; anything else an example needs it imports itself. Outputs are compared with
ELLIPSIS and NORMALIZE_WHITESPACE, so an example may elide with `...`. Modules without examples are not collected.
"""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_si

_GLOBS = {"np": np, "keras": keras, "keras_si": keras_si}


def _examples(module):
    # The finder looks only at objects defined in the module (not at what it imports).
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__, globs=_GLOBS)
    return [t for t in tests if t.examples]


def _modules_with_examples():
    names = ["keras_si"] + [m.name for m in pkgutil.walk_packages(keras_si.__path__, "keras_si.")]
    return [name for name in sorted(names) if _examples(importlib.import_module(name))]


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples(module_name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = _examples(importlib.import_module(module_name))
    for test in tests:
        runner.run(test)  # prints each failing example, with what it got, to the captured stdout
    results = runner.summarize(verbose=False)
    assert results.attempted == sum(len(t.examples) for t in tests) > 0
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {module_name} failed"
