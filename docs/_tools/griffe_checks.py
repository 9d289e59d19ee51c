"""Griffe extensions for the reference: Keras-style examples rendered as code, and undocumented arguments failing.

`KerasExamples`: Keras writes a docstring's examples as unindented `>>>` lines after "Example:" (the test suite runs
them, tests/test_docstring_examples.py); Google style, which griffe parses, wants them indented under the section.
Left as they are, they would render as prose, and an output such as `[0.95, 2.1]` after a bracket would read as a
broken Markdown cross-reference. The extension fences every such block as a `pycon` code block before rendering.

`UndocumentedArgs` makes `mkdocs build --strict` fail on an argument missing from a docstring's Args.

Griffe itself warns about an Args entry that names no parameter (`warn_unknown_params`), not about a parameter that
no Args entry names. This extension adds the second check, for what the reference renders: every public class
(its constructor's arguments, documented in the class docstring or in `__init__`'s, as Keras does) and function
listed by api_inventory, and every public method of those classes that has a docstring of its own (a method without
one is not rendered; Keras's `call`, `build`, ... are documented by Keras). `self`/`cls` need no entry; `*args` and
`**kwargs` do, as `*args`/`**kwargs` or without the stars.

Warnings go to a logger under "mkdocs", which `--strict` counts.
"""

import logging
import os
import sys

import griffe

sys.path.insert(0, os.path.dirname(__file__))
import api_inventory  # noqa: E402

_log = logging.getLogger("mkdocs.plugins.keras_si_docs")


def _documented_names(*objects):
    names = set()
    for obj in objects:
        if obj is None or not obj.docstring:
            continue
        # warnings=False: the docstring's own problems are reported when mkdocstrings renders it.
        for section in obj.docstring.parse("google", warnings=False):
            if section.kind is griffe.DocstringSectionKind.parameters:
                names.update(p.name.lstrip("*") for p in section.value)
    return names


def _where(obj):
    try:
        return f"{obj.relative_filepath}:{obj.lineno}"
    except Exception:  # noqa: BLE001 - a location is a courtesy; the check must not fail on it
        return "?"


def _check(public_path, obj, documented):
    missing = [
        p.name
        for p in obj.parameters
        if p.name not in ("self", "cls") and p.name.lstrip("*") not in documented
    ]
    for name in missing:
        _log.warning(f"{public_path} ({_where(obj)}): argument '{name}' is not documented in the Args section")
    return len(missing)


def _fence_doctests(text):
    """Returns `text` with each unindented run of `>>>` lines and their output wrapped in a ```pycon fence."""
    out, in_fence, lines, i = [], False, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith(">>>"):
            # An example runs until a blank line, as doctest reads it.
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += ["```pycon", *block, "```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _objects(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


class KerasExamples(griffe.Extension):
    """Fences Keras-style `>>>` examples as code (see the module docstring)."""

    def on_package(self, *, pkg, loader, **kwargs):
        for obj in _objects(pkg):
            if obj.docstring and ">>>" in obj.docstring.value:
                obj.docstring.value = _fence_doctests(obj.docstring.value)


class UndocumentedArgs(griffe.Extension):
    """Warns once per public argument that no `Args:` entry documents (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self._symbols = [s for s in api_inventory.public_symbols()]
        self._checked = set()

    def on_package(self, *, pkg, loader, **kwargs):
        if pkg.name != "keras_si":
            return
        for symbol in self._symbols:
            if symbol.path in self._checked:
                continue
            self._checked.add(symbol.path)
            try:
                obj = loader.modules_collection[symbol.defined_at]
            except KeyError:
                _log.warning(f"{symbol.path}: griffe did not find its definition {symbol.defined_at}")
                continue
            if symbol.kind == "function":
                _check(symbol.path, obj, _documented_names(obj))
                continue
            init = obj.members.get("__init__")
            if init is not None and not init.is_alias:
                _check(symbol.path, init, _documented_names(obj, init))
            for name, member in obj.members.items():
                if name.startswith("_") or member.is_alias or not member.is_function or not member.docstring:
                    continue
                _check(f"{symbol.path}.{name}", member, _documented_names(member))
