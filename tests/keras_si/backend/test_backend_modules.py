"""keras_si/backend/: the only place that imports a backend, and one interface in every backend module (issue 12).

Static checks of the source (Python's `ast`, so comments and docstrings, e.g.
a doctest's `import tensorflow as tf`, do not count): fast, and they run
without importing JAX or PyTorch. The entry points' numbers are checked by the
optimizer tests, which call them on every backend.
"""

import ast
import pathlib
import textwrap

import keras
import numpy as np
import pytest

from keras_si import backend

PACKAGE = pathlib.Path(backend.__file__).resolve().parent.parent  # keras_si/
BACKEND_DIR = PACKAGE / "backend"
FRAMEWORKS = ("tensorflow", "jax", "jaxlib", "torch")


def _framework(module_name):
    """The framework a dotted module name belongs to, else None."""
    top = (module_name or "").split(".")[0]
    return top if top in FRAMEWORKS else None


def framework_imports(source, filename="<source>"):
    """(line, framework) of every import of a framework in `source`.

    Counts `import x`, `from x import y` and `importlib.import_module("x")` /
    `__import__("x")` with a literal name, wherever they are (also inside
    functions, where a guarded import hides); relative imports are keras_si's own.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [(node.lineno, _framework(n)) for n in names if _framework(n)]
    return found


def test_the_check_sees_every_form_of_import_and_ignores_comments_and_docstrings():
    source = textwrap.dedent('''\
        """Docstring.

        >>> import tensorflow as tf
        """
        # import torch
        import os, jax.numpy as jnp
        from tensorflow.python.ops import math_ops
        from .tensorflow import x
        def f():
            import torch
            return importlib.import_module("jax"), __import__("numpy")
    ''')
    assert framework_imports(source) == [(6, "jax"), (7, "tensorflow"), (10, "torch"), (11, "jax")]


def test_no_module_outside_keras_si_backend_imports_a_framework():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if BACKEND_DIR in path.parents:
            continue
        for line, name in framework_imports(path.read_text(), str(path)):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not offenders, (
        "Backend-specific code belongs in keras_si/backend/<name>.py, reached through "
        "keras_si.backend.optimizer_backend() / current(); found: " + "; ".join(offenders)
    )


def test_each_backend_module_imports_only_its_own_framework():
    allowed = {"tensorflow": {"tensorflow"}, "jax": {"jax", "jaxlib"}, "torch": {"torch"}}
    for name in backend.BACKENDS:
        path = BACKEND_DIR / f"{name}.py"
        wrong = [(line, fw) for line, fw in framework_imports(path.read_text(), str(path)) if fw not in allowed[name]]
        assert not wrong, f"keras_si/backend/{name}.py imports another backend: {wrong}"
    for path in (BACKEND_DIR / "common.py", BACKEND_DIR / "__init__.py", BACKEND_DIR / "keras_private.py"):
        found = framework_imports(path.read_text(), str(path))
        assert not found, f"{path.name} is backend-neutral but imports {found}"


def _module_level_names(path):
    """Names a module defines or imports at its top level (what `module.<name>` reaches)."""
    names = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("module", ["tensorflow", "jax", "torch", "common"])
def test_every_backend_module_has_the_optimizer_entry_points(module):
    names = _module_level_names(BACKEND_DIR / f"{module}.py")
    missing = [n for n in backend.OPTIMIZER_ENTRY_POINTS if n not in names]
    assert not missing, f"keras_si/backend/{module}.py lacks the optimizer entry points {missing}"


def test_the_sparse_entry_points_exist_where_gradients_can_be_sparse():
    names = _module_level_names(BACKEND_DIR / "tensorflow.py")
    missing = [n for n in backend.SPARSE_ENTRY_POINTS if n not in names]
    assert not missing, f"keras_si/backend/tensorflow.py lacks the sparse entry points {missing}"


def test_optimizer_backend_is_the_module_of_the_backend_in_use():
    module = backend.optimizer_backend()
    assert module is backend.current()
    assert module.__name__ == f"keras_si.backend.{keras.backend.backend()}"
    assert backend.optimizer_backend() is module  # cached


def test_dense_defaults():
    """What JAX and PyTorch (and Keras's "numpy" backend, through the fallback) get: dense global gradients."""
    from keras_si.backend import common

    grads = [keras.ops.ones((2,)), None]
    assert common.all_reduce_sum(grads) == grads
    assert common.replicas_to_reduce() == 1
    assert not common.has_strategy() and not common.in_xla_context() and not common.reductions_are_serial()
    assert not common.is_sparse(grads[0])
    x = np.arange(6, dtype="float32").reshape(2, 3)
    # 0 + 1 + 4 + 9 + 16 + 25, exact in float32.
    assert float(keras.ops.convert_to_numpy(common.sum_of_squares(keras.ops.convert_to_tensor(x)))) == 55.0
    assert common.concrete_scalar(lambda: keras.ops.sum(keras.ops.convert_to_tensor(x))) == 15.0
