"""The test tree's layout: tests/keras_si/ mirrors keras_si/ and never imports official/.

keras_si is the installable library and official/ a pipeline built on it; a
library test that reached into official/ would test the library only through
the pipeline (as keras_si.invariance once was, through SIBERT), and would break
for a user who installs keras_si alone. The float64 references in
tests/references/ are shared by the library's tests, so they are held to the
same rule.
"""

import ast
import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
LIBRARY_TESTS = [TESTS / "keras_si", TESTS / "references"]


def _official_imports(source, filename="<string>"):
    """Line numbers of the imports of `official` (or a submodule) in `source`, by static or importlib import."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__", "importorskip")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        else:
            continue
        if any(name == "official" or name.startswith("official.") for name in names):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("source,lines", [
    ("import official.nlp.modeling", [1]),
    ("from official.nlp import pretrain", [1]),
    ("import os\nfrom official import nlp", [2]),
    ("import importlib\nimportlib.import_module('official.nlp')", [2]),
    ("import officially\nfrom keras_si import official_names\nfrom . import official", []),
])
def test_the_detector(source, lines):
    assert _official_imports(source) == lines


def test_library_tests_never_import_official():
    files = sorted(p for d in LIBRARY_TESTS for p in d.rglob("*.py"))
    assert len(files) > 10, files  # the folders exist and hold the suite
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in files
                 for line in _official_imports(p.read_text(), str(p))]
    assert not offenders, "library tests import official/ (move the check to tests/official/): " + ", ".join(offenders)


def test_every_test_folder_is_a_package():
    # Same-named test files in different folders (test_base.py, ...) need distinct module names under pytest's
    # default import mode, and `from tests.references import ...` needs the packages.
    folders = [d for d in [TESTS, *TESTS.rglob("*")] if d.is_dir() and d.name != "__pycache__"
               and any(d.glob("*.py"))]
    missing = [str(d.relative_to(ROOT)) for d in folders if not (d / "__init__.py").exists()]
    assert not missing, f"test folders without __init__.py: {missing}"


def test_tests_keras_si_mirrors_the_package():
    folders = [d for d in (TESTS / "keras_si").rglob("*") if d.is_dir() and d.name != "__pycache__"]
    assert folders
    unmatched = [str(d.relative_to(TESTS)) for d in folders
                 if not (ROOT / d.relative_to(TESTS) / "__init__.py").exists()]
    assert not unmatched, f"tests/ folders with no keras_si package of the same path: {unmatched}"
