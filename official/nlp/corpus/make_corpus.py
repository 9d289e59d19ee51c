"""Rebuilds the shipped corpus from the Python 3.11 documentation's reST sources.

    apt-get install python3.11-doc     # Debian 12; the sources are in its HTML build
    python official/nlp/corpus/make_corpus.py [--sources DIR]

Writes train.txt and heldout.txt here: one sentence per line, a blank line
between documents (one document per documentation page). The conversion is
rule based and documented in SOURCE.md: directives, code blocks, tables and
headings are dropped; inline markup is reduced to its text; paragraphs are
split into sentences at '.', '!' or '?' followed by a space and a capital.
"""

import argparse
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SOURCES = "/usr/share/doc/python3.11/html/_sources"
# Prose-heavy parts of the documentation, in this order.
SECTIONS = ["tutorial", "howto", "faq", "reference", "library", "whatsnew"]
HELDOUT_SECTION = "faq"
MAX_BYTES = 3_000_000  # "a few MB at most"

_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_+")
_LITERAL = re.compile(r"``([^`]+)``")
_EMPH = re.compile(r"\*\*?([^*]+)\*\*?")
_REF = re.compile(r"`([^`]+)`_*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def clean_inline(text):
    text = _ROLE.sub(lambda m: m.group(1).strip().lstrip("~!").strip(), text)
    text = _LINK.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = _REF.sub(r"\1", text)
    text = _EMPH.sub(r"\1", text)
    text = re.sub(r"\[[#*\w-]*\]_", "", text)  # footnote references
    text = re.sub(r"(^|(?<=\s))[*-] ", " ", text)  # list bullets
    text = text.replace("|", " ").replace("\\", "")
    return re.sub(r"\s+", " ", text).strip()


def paragraphs(rst):
    """Yields the prose paragraphs of a reST document."""
    lines = rst.splitlines()
    para = []
    skip_indent = None  # inside a directive or literal block: skip lines indented deeper
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if stripped == "" or indent > skip_indent:
                continue
            skip_indent = None
        if stripped.startswith(".."):  # directive, comment, target
            if para:
                yield " ".join(para)
                para = []
            skip_indent = indent
            continue
        if stripped == "":
            if para:
                yield " ".join(para)
                para = []
            continue
        if re.fullmatch(r"([=\-~^\"'`#*+.:_])\1{2,}", stripped) or stripped.startswith(("+-", "|", ">>>", "...")):
            para = []  # heading underline (the heading was collected: drop it), tables, prompts
            continue
        if indent > 0 and not para:
            continue  # indented block not continuing a paragraph (quotes, definitions, code)
        para.append(stripped)
        if stripped.endswith("::"):
            para[-1] = stripped[:-2] + ("." if not stripped[:-2].endswith(":") else "")
            yield " ".join(para)
            para = []
            skip_indent = indent
    if para:
        yield " ".join(para)


def sentences(paragraph):
    text = clean_inline(paragraph)
    for s in _SENTENCE_END.split(text):
        s = s.strip()
        words = s.split()
        letters = sum(ch.isalpha() for ch in s)
        if len(words) >= 4 and letters >= 0.6 * len(s) and s[-1] in ".!?:" and "`" not in s:
            yield s


def document(path):
    with open(path, encoding="utf-8") as f:
        rst = f.read()
    return [s for p in paragraphs(rst) for s in sentences(p)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", default=DEFAULT_SOURCES)
    args = parser.parse_args()
    train, heldout, size = [], [], 0
    for section in SECTIONS:
        folder = os.path.join(args.sources, section)
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".rst.txt"):
                continue
            doc = document(os.path.join(folder, name))
            if len(doc) < 3:
                continue
            text = "\n".join(doc) + "\n"
            if section == HELDOUT_SECTION:
                heldout.append(text)
            elif size + len(text) <= MAX_BYTES:
                train.append(text)
                size += len(text)
    for name, docs in (("train.txt", train), ("heldout.txt", heldout)):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write("\n".join(docs))
        print(f"{name}: {len(docs)} documents, {sum(d.count(chr(10)) for d in docs)} sentences")


if __name__ == "__main__":
    main()
