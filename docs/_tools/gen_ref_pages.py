"""Writes the API reference pages at build time (run by mkdocs-gen-files; see mkdocs.yml).

One page per public class and function (the list comes from api_inventory.public_symbols, so nothing here names a
symbol), one page per public module listing its symbols, and reference/SUMMARY.md, the reference's navigation
(read by mkdocs-literate-nav). The pages exist only inside the build: nothing is written into docs/.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_inventory  # noqa: E402


def _link(from_page, to_page):
    return os.path.relpath(to_page, os.path.dirname(from_page))


def _module_page(module, symbols):
    page = api_inventory.page_path(module)
    lines = [
        f"# `{module}`",
        "",
        # The module's docstring only: its members have pages of their own.
        f"::: {module}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "",
    ]
    members = [s for s in symbols if s.module == module]
    for title, kind in (("Classes", "class"), ("Functions", "function")):
        rows = [s for s in members if s.kind == kind]
        if rows:
            lines += [f"## {title}", ""]
            lines += [f"- [`{s.path}`]({_link(page, api_inventory.page_path(s))})" for s in rows]
            lines.append("")
    # Symbols whose page is under another module but that this module exports too (keras_si.optimizers.SGDClip).
    also = [s for s in symbols if s.module != module and any(a.rpartition(".")[0] == module for a in s.aliases)]
    if also:
        lines += ["## Also exported here", ""]
        lines += [f"- `{module}.{s.name}`: [`{s.path}`]({_link(page, api_inventory.page_path(s))})" for s in also]
        lines.append("")
    return page, "\n".join(lines)


def _symbol_page(symbol):
    # The public path, not the defining module's: the heading (the page's title, level 1) and the anchor that
    # cross-references resolve to are what users write; griffe follows the imports to the definition.
    text = f"::: {symbol.path}\n    options:\n      heading_level: 1\n"
    if symbol.aliases:
        text += "\nAlso available as " + ", ".join(f"`{a}`" for a in symbol.aliases) + ".\n"
    return api_inventory.page_path(symbol), text


def render_pages(symbols):
    """Returns {page path relative to docs/: Markdown} for the whole reference, SUMMARY.md included."""
    pages = {}
    nav = ["* [Overview](index.md)"]
    for module in api_inventory.PUBLIC_MODULES:
        page, text = _module_page(module, symbols)
        pages[page] = text
        nav.append(f"* [`{module}`]({page[len('reference/'):]})")
        for symbol in (s for s in symbols if s.module == module):
            page, text = _symbol_page(symbol)
            pages[page] = text
            nav.append(f"    * [`{symbol.name}`]({page[len('reference/'):]})")
    pages["reference/SUMMARY.md"] = "\n".join(nav) + "\n"
    return pages


def main():
    import mkdocs_gen_files  # only inside a docs build

    for page, text in render_pages(api_inventory.public_symbols()).items():
        with mkdocs_gen_files.open(page, "w") as f:
            f.write(text)
        # Generated: there is no source file to edit.
        mkdocs_gen_files.set_edit_path(page, None)


# mkdocs-gen-files runs this file with runpy.run_path, whose __name__ is "<run_path>".
if __name__ in ("__main__", "<run_path>"):
    main()
