"""The public API of keras_si, found by introspection: the one list behind the reference pages.

`make docs` (docs/_tools/gen_ref_pages.py) writes one page per symbol listed here, the griffe extension
(docs/_tools/griffe_checks.py) checks the Args sections of exactly these symbols, and tests/test_docs.py checks
that the list is not empty and holds what the guides name. A new public class or function therefore gets a page
and a check without any hand edit.

What counts as public: a class or function reachable as `<module>.<name>` for one of `PUBLIC_MODULES`, where
`<name>` is in the module's `__all__` if it defines one, and otherwise does not start with an underscore, and the
object is defined inside keras_si (so `keras_si.losses.keras` or a re-exported NumPy function is not). An object
reachable under several names (`keras_si.SGDClip` and `keras_si.optimizers.SGDClip`, or the alias `keras_si.SAM`)
gets one page, under the first public path in `PUBLIC_MODULES` order, preferring the object's own `__name__`.
"""

import dataclasses
import importlib
import inspect
import os

# The modules whose public names make up the API, in the order a name is attributed to one of them.
PUBLIC_MODULES = (
    "keras_si",
    "keras_si.layers",
    "keras_si.optimizers",
    "keras_si.losses",
    "keras_si.schedules",
    "keras_si.callbacks",
)


@dataclasses.dataclass(frozen=True)
class Symbol:
    """One public class or function.

    Attributes:
        path: the public dotted path the page is named after, e.g. "keras_si.SGDClip".
        defined_at: module and qualified name of the definition, e.g. "keras_si.optimizers.sgd_clip.SGDClip"
            (what griffe, which reads the source, knows it by).
        kind: "class" or "function".
        module: the public module of `path` ("keras_si").
        aliases: the other public paths of the same object.
    """

    path: str
    defined_at: str
    kind: str
    module: str
    aliases: tuple

    @property
    def name(self):
        return self.path.rpartition(".")[2]


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(names)


def public_symbols():
    """Returns the public classes and functions of keras_si as a list of `Symbol`, in `PUBLIC_MODULES` order."""
    # Importing keras_si imports Keras; the reference documents the TensorFlow backend's view of the package.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    found = {}  # id(obj) -> [obj, [(module, name), ...]]
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith("keras_si"):
                continue
            found.setdefault(id(obj), [obj, []])[1].append((module_name, name))
    symbols = []
    for obj, places in found.values():
        own = [p for p in places if p[1] == obj.__name__]
        module_name, name = (own or places)[0]
        path = f"{module_name}.{name}"
        symbols.append(
            Symbol(
                path=path,
                defined_at=f"{obj.__module__}.{obj.__qualname__}",
                kind="class" if inspect.isclass(obj) else "function",
                module=module_name,
                aliases=tuple(f"{m}.{n}" for m, n in places if f"{m}.{n}" != path),
            )
        )
    order = {m: i for i, m in enumerate(PUBLIC_MODULES)}
    symbols.sort(key=lambda s: (order[s.module], s.kind != "class", s.name.lower()))
    return symbols


def page_path(symbol_or_module):
    """The reference page (relative to docs/) of a `Symbol` or of a public module's dotted name."""
    if isinstance(symbol_or_module, str):
        return "reference/" + symbol_or_module.replace(".", "/") + "/index.md"
    return "reference/" + symbol_or_module.path.replace(".", "/") + ".md"
