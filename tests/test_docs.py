"""The documentation's inputs, checked cheaply (mkdocs itself runs in CI as `make docs`, not here).

- Every public class and function gets a reference page, and no two share one (docs/_tools/gen_ref_pages.py
  renders the pages from docs/_tools/api_inventory.py's introspection; these tests call the same code).
- Every `keras_si...` name the guides write in backticks exists, so a rename cannot leave a guide naming
  something that is gone.
- Every guide is in mkdocs.yml's nav.
"""

import importlib
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(DOCS, "_tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inventory():
    return _load("api_inventory")


@pytest.fixture(scope="module")
def symbols(inventory):
    return inventory.public_symbols()


def _resolve(dotted):
    """The object at a dotted path such as keras_si.layers.WSConv2D (modules imported as needed)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_public_symbol_has_one_page(inventory, symbols):
    import keras_si

    pages = _load("gen_ref_pages").render_pages(symbols)
    # What users reach first must be there (a regression in the introspection would drop whole modules).
    paths = {s.path for s in symbols}
    for expected in ("keras_si.SGDClip", "keras_si.layers.WSConv2D", "keras_si.losses.TiltedLoss",
                     "keras_si.schedules.LinearWarmup", "keras_si.callbacks.SGDClipMonitor"):
        if expected.rpartition(".")[2] in dir(_resolve(expected.rpartition(".")[0])):
            assert expected in paths or any(expected in s.aliases for s in symbols), expected
    for module in inventory.PUBLIC_MODULES:
        assert inventory.page_path(module) in pages
    for s in symbols:
        page = pages[inventory.page_path(s)]
        assert f"::: {s.path}\n" in page
        # The public path reaches the very object the page documents.
        obj = _resolve(s.path)
        assert f"{obj.__module__}.{obj.__qualname__}" == s.defined_at
        for alias in s.aliases:
            assert _resolve(alias) is obj
    # One page per object: no object under two pages, no two pages under one path (case-insensitively, for
    # macOS and Windows file systems).
    assert len({s.defined_at for s in symbols}) == len(symbols)
    assert len({inventory.page_path(s).lower() for s in symbols}) == len(symbols)
    # Every page is reachable from the reference's navigation.
    summary = pages["reference/SUMMARY.md"]
    for page in pages:
        if page != "reference/SUMMARY.md":
            assert f"]({page[len('reference/'):]})" in summary, page
    assert keras_si.SGDClip is _resolve("keras_si.SGDClip")


def test_the_inventory_skips_what_is_not_keras_si_own(symbols):
    # `keras_si.losses` imports `keras` and `math`; those must not get pages.
    for s in symbols:
        assert s.defined_at.startswith("keras_si."), s
        assert not s.name.startswith("_"), s


def _guides():
    for folder, _, files in os.walk(DOCS):
        if "_tools" in folder:
            continue
        for name in files:
            if name.endswith(".md"):
                yield os.path.join(folder, name)


def test_names_in_the_guides_exist():
    # `keras_si.X`, `keras_si.layers.Y(...)`, `keras_si.SGDClip.effective_learning_rate` in backticks.
    pattern = re.compile(r"`(keras_si(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
    missing = []
    for path in _guides():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for name in sorted(set(pattern.findall(text))):
            try:
                _resolve(name)
            except (ImportError, AttributeError):
                missing.append(f"{os.path.relpath(path, ROOT)}: {name}")
    assert not missing, "guides name what keras_si does not have:\n" + "\n".join(missing)


def test_every_guide_is_in_the_nav():
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        config = f.read()
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", config[config.index("\nnav:"):], flags=re.M))
    pages = {os.path.relpath(p, DOCS) for p in _guides()}
    pages = {p for p in pages if not p.startswith("reference" + os.sep) and p != "index.md"}
    assert pages - nav == set(), f"docs pages missing from mkdocs.yml's nav: {sorted(pages - nav)}"
