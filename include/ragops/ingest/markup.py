"""A linear-time HTML tokenizer for text extraction: start tags, end tags and text, never a tree.

The standard library's html.parser rescans unterminated constructs (a page of `</` takes minutes) and raises
AssertionError on some malformed declarations (`<![`), on the Python this project pins; a tree builder lets a
document choose its own nesting depth. This scanner moves forward only: every search starts where the previous one
ended and an unterminated construct ends the document, so its work is linear in the input whatever it holds.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Iterator

START, END, DATA = "start", "end", "data"
_NAME = re.compile(r"[A-Za-z][^\s/>\x00]*")  # anchored with .match: one pass over the name
_TAG_STOP = re.compile(r"[>\"']")  # a single character class: one pass to the next stop
# Elements whose content is text up to their end tag, not markup (decoded where browsers decode it).
RAW_TEXT = {"script": False, "style": False, "xmp": False, "iframe": False, "noembed": False, "noframes": False,
            "textarea": True, "title": True}


@lru_cache(maxsize=None)
def _closer(name: str) -> re.Pattern:
    return re.compile("</" + re.escape(name), re.IGNORECASE)


def _tag_end(text: str, pos: int) -> int:
    """Index of the `>` closing a start tag, skipping quoted attribute values; -1 when the document ends first."""
    while True:
        stop = _TAG_STOP.search(text, pos)
        if stop is None:
            return -1
        if stop.group() == ">":
            return stop.start()
        closing_quote = text.find(stop.group(), stop.end())
        if closing_quote < 0:
            return -1
        pos = closing_quote + 1


def tokens(text: str, check=None, every: int = 4096) -> Iterator[tuple[str, str]]:
    """(kind, value) pairs: (START, tag), (END, tag), (DATA, decoded text). `check()` runs every `every` tokens."""
    i, n, steps = 0, len(text), 0
    while i < n:
        steps += 1
        if check is not None and steps % every == 0:
            check()
        lt = text.find("<", i)
        if lt < 0:
            yield DATA, html.unescape(text[i:])
            return
        if lt > i:
            yield DATA, html.unescape(text[i:lt])
        i = lt
        if text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            i = n if end < 0 else end + 3
            continue
        if text.startswith(("<!", "<?"), i):  # doctype, CDATA, processing instruction: nothing to read
            end = text.find(">", i + 2)
            i = n if end < 0 else end + 1
            continue
        closing = text.startswith("</", i)
        name = _NAME.match(text, i + 2 if closing else i + 1)
        if name is None:
            if closing:  # `</ ...>` is a bogus comment
                end = text.find(">", i + 2)
                i = n if end < 0 else end + 1
            else:  # a lone `<` is text
                yield DATA, "<"
                i += 1
            continue
        tag = name.group().lower()
        end = text.find(">", name.end()) if closing else _tag_end(text, name.end())
        if end < 0:
            return  # the document ends inside a tag: dropped, as browsers do
        i = end + 1
        yield (END if closing else START), tag
        if not closing and tag in RAW_TEXT:
            close = _closer(tag).search(text, i)
            stop = n if close is None else close.start()
            if stop > i:
                yield DATA, html.unescape(text[i:stop]) if RAW_TEXT[tag] else text[i:stop]
            i = stop
