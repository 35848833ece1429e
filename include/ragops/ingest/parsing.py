"""Parse md, txt, html, rst and adoc into titled sections along the document's headings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Section:
    path: tuple[str, ...]  # the headings above this text, outermost first
    text: str


@dataclass
class ParsedDocument:
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def text_chars(self) -> int:
        return sum(len(s.text.strip()) for s in self.sections)


class _Outline:
    """Collects lines under a stack of headings."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []
        self.sections: list[Section] = []
        self.lines: list[str] = []
        self.title = ""

    def heading(self, level: int, text: str) -> None:
        self.flush()
        text = text.strip()
        if not self.title:
            self.title = text
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, text))

    def line(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        text = "\n".join(self.lines).strip()
        if text:
            self.sections.append(Section(tuple(h for _, h in self.stack), text))
        self.lines = []

    def done(self) -> ParsedDocument:
        self.flush()
        return ParsedDocument(self.title, self.sections)


_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str) -> ParsedDocument:
    """ATX headings (`# Title`) outside fenced code; plain text files written this way parse too."""
    out, fenced = _Outline(), False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _ATX.match(line)
        if match:
            out.heading(len(match.group(1)), match.group(2))
        else:
            out.line(line)
    return out.done()


_ADOC_HEADING = re.compile(r"^(={1,6})\s+(.+)$")
_ADOC_BLOCK = re.compile(r"^(----|\.\.\.\.|====|\+\+\+\+)\s*$")


def parse_asciidoc(text: str) -> ParsedDocument:
    out, block = _Outline(), None
    for line in text.splitlines():
        delimiter = _ADOC_BLOCK.match(line)
        if delimiter:
            block = None if block == delimiter.group(1) else (block or delimiter.group(1))
            out.line(line)
            continue
        match = None if block else _ADOC_HEADING.match(line)
        if match:
            out.heading(len(match.group(1)), match.group(2))
        elif not line.startswith((":", "//")):  # attribute entries and comments carry no prose
            out.line(line)
    return out.done()


_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")


def parse_rst(text: str) -> ParsedDocument:
    """Section titles are underlined (optionally overlined); levels follow the order adornments appear."""
    out, levels = _Outline(), {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        overline = _RST_ADORN.match(line)
        if overline and i + 2 < len(lines) and _RST_ADORN.match(lines[i + 2]) and lines[i + 1].strip():
            key = "over" + overline.group(1)
            out.heading(levels.setdefault(key, len(levels) + 1), lines[i + 1])
            i += 3
            continue
        under = _RST_ADORN.match(nxt)
        if line.strip() and not _RST_ADORN.match(line) and under and len(nxt.strip()) >= len(line.strip()):
            out.heading(levels.setdefault(under.group(1), len(levels) + 1), line)
            i += 2
            continue
        out.line(line)
        i += 1
    return out.done()


class _HTMLOutline(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "li", "tr", "br", "pre", "section", "article", "blockquote", "dd", "dt", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _Outline()
        self.skipping = 0
        self.heading_level: int | None = None
        self.buffer: list[str] = []
        self.html_title = ""
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in self._SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush_text()
            self.heading_level = int(tag[1])
        elif tag in self._BLOCK:
            self._flush_text()

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif self.heading_level and tag == f"h{self.heading_level}":
            self.out.heading(self.heading_level, " ".join("".join(self.buffer).split()))
            self.buffer, self.heading_level = [], None
        elif tag in self._BLOCK:
            self._flush_text()

    def handle_data(self, data):
        if self.in_title:
            self.html_title += data
        if not self.skipping:
            self.buffer.append(data)

    def _flush_text(self):
        if self.heading_level is None:
            text = " ".join("".join(self.buffer).split())
            if text:
                self.out.line(text)
            self.buffer = []


def parse_html(text: str) -> ParsedDocument:
    parser = _HTMLOutline()
    parser.feed(text)
    parser.close()
    parser._flush_text()
    doc = parser.out.done()
    doc.title = doc.title or parser.html_title.strip()
    return doc


PARSERS = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".txt": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".rst": parse_rst,
    ".adoc": parse_asciidoc,
    ".asciidoc": parse_asciidoc,
}


def parse(text: str, uri: str) -> ParsedDocument:
    """Parse by the file suffix; the title falls back to the file name."""
    suffix = "." + uri.rsplit(".", 1)[-1].lower() if "." in uri.rsplit("/", 1)[-1] else ".txt"
    doc = PARSERS.get(suffix, parse_markdown)(text)
    doc.title = doc.title or uri.rsplit("/", 1)[-1]
    return doc
