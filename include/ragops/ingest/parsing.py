"""Parse md, txt, html, rst and adoc into titled sections along the document's headings.

Every parser works in time linear in its input: headings and delimiters are recognised with string methods, not
backtracking regular expressions, and HTML goes through the forward-only scanner in `markup`. A `ParseBudget`
still bounds each document's parse, so no single document can hold a refresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ragops.errors import ParseBudgetExceeded
from ragops.ingest.markup import DATA, START, tokens

CHECK_EVERY_LINES = 1024


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


class ParseBudget:
    """CPU seconds one document may take to parse and chunk; the parsers and the chunker call `check()` as they go.

    CPU time of the parsing thread, not wall time, so a busy machine does not quarantine good documents; the clock
    is injectable so tests can exhaust the budget deterministically.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.thread_time):
        self.seconds = seconds
        self.clock = clock
        self.started = clock()

    def check(self) -> None:
        if self.clock() - self.started > self.seconds:
            raise ParseBudgetExceeded(f"parse took too long (over its budget of {self.seconds:g} s)")


def _lines(text: str, budget: ParseBudget | None):
    for i, line in enumerate(text.splitlines()):
        if budget is not None and i % CHECK_EVERY_LINES == CHECK_EVERY_LINES - 1:
            budget.check()
        yield line


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


def _atx_heading(line: str) -> tuple[int, str] | None:
    """`## Title ##` -> (2, "Title"): 1-6 `#`, whitespace, text; a closing run of `#` after a space is dropped."""
    if not line.startswith("#"):
        return None
    level = len(line) - len(line.lstrip("#"))
    rest = line[level:]
    if level > 6 or not rest[:1].isspace():
        return None
    text = rest.strip()
    closed = text.rstrip("#")
    if closed != text and (not closed or closed[-1].isspace()):
        text = closed.rstrip()
    return (level, text) if text else None


def _is_fence(line: str) -> bool:
    return line.lstrip().startswith(("```", "~~~"))


def parse_markdown(text: str, budget: ParseBudget | None = None) -> ParsedDocument:
    """ATX headings (`# Title`) outside fenced code; plain text files written this way parse too."""
    out, fenced = _Outline(), False
    for line in _lines(text, budget):
        if _is_fence(line):
            fenced = not fenced
        heading = None if fenced else _atx_heading(line)
        if heading:
            out.heading(*heading)
        else:
            out.line(line)
    return out.done()


_ADOC_DELIMITERS = ("----", "....", "====", "++++")


def _adoc_heading(line: str) -> tuple[int, str] | None:
    level = len(line) - len(line.lstrip("="))
    rest = line[level:]
    if not 1 <= level <= 6 or not rest[:1].isspace() or not rest.strip():
        return None
    return level, rest.strip()


def parse_asciidoc(text: str, budget: ParseBudget | None = None) -> ParsedDocument:
    out, block = _Outline(), None
    for line in _lines(text, budget):
        delimiter = line.rstrip()
        if delimiter in _ADOC_DELIMITERS:
            block = None if block == delimiter else (block or delimiter)
            out.line(line)
            continue
        heading = None if block else _adoc_heading(line)
        if heading:
            out.heading(*heading)
        elif not line.startswith((":", "//")):  # attribute entries and comments carry no prose
            out.line(line)
    return out.done()


_RST_ADORNMENTS = set("=-`:'\"~^_*+#<>")


def _adornment(line: str) -> str | None:
    """The character of an RST section adornment line (3+ of one punctuation character), else None."""
    stripped = line.rstrip()
    if len(stripped) >= 3 and stripped[0] in _RST_ADORNMENTS and stripped.count(stripped[0]) == len(stripped):
        return stripped[0]
    return None


def parse_rst(text: str, budget: ParseBudget | None = None) -> ParsedDocument:
    """Section titles are underlined (optionally overlined); levels follow the order adornments appear."""
    out, levels = _Outline(), {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if budget is not None and i % CHECK_EVERY_LINES == CHECK_EVERY_LINES - 1:
            budget.check()
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        overline = _adornment(line)
        if overline and i + 2 < len(lines) and _adornment(lines[i + 2]) and lines[i + 1].strip():
            key = "over" + overline
            out.heading(levels.setdefault(key, len(levels) + 1), lines[i + 1])
            i += 3
            continue
        under = _adornment(nxt)
        if line.strip() and not overline and under and len(nxt.strip()) >= len(line.strip()):
            out.heading(levels.setdefault(under, len(levels) + 1), line)
            i += 2
            continue
        out.line(line)
        i += 1
    return out.done()


class _HTMLOutline:
    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "li", "tr", "br", "pre", "section", "article", "blockquote", "dd", "dt", "table"}
    _HEADINGS = {f"h{n}": n for n in range(1, 7)}

    def __init__(self) -> None:
        self.out = _Outline()
        self.skipping = 0
        self.heading_level: int | None = None
        self.buffer: list[str] = []
        self.html_title = ""
        self.in_title = False

    def start(self, tag: str) -> None:
        if tag == "title":
            self.in_title = True
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._HEADINGS:
            self._flush_text()
            self.heading_level = self._HEADINGS[tag]
        elif tag in self._BLOCK:
            self._flush_text()

    def end(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif self.heading_level and tag == f"h{self.heading_level}":
            self._end_heading()
        elif tag in self._BLOCK:
            self._flush_text()

    def data(self, data: str) -> None:
        if self.in_title:
            self.html_title += data
        if not self.skipping:
            self.buffer.append(data)

    def _end_heading(self) -> None:
        self.out.heading(self.heading_level, " ".join("".join(self.buffer).split()))
        self.buffer, self.heading_level = [], None

    def _flush_text(self) -> None:
        if self.heading_level is None:
            text = " ".join("".join(self.buffer).split())
            if text:
                self.out.line(text)
            self.buffer = []

    def done(self) -> ParsedDocument:
        if self.heading_level is not None:  # a heading the document never closed
            self._end_heading()
        self._flush_text()
        doc = self.out.done()
        doc.title = doc.title or self.html_title.strip()
        return doc


def parse_html(text: str, budget: ParseBudget | None = None) -> ParsedDocument:
    outline = _HTMLOutline()
    handlers = {START: outline.start, DATA: outline.data}
    for kind, value in tokens(text, budget.check if budget is not None else None):
        handlers.get(kind, outline.end)(value)
    return outline.done()


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


def parse(text: str, uri: str, budget: ParseBudget | None = None) -> ParsedDocument:
    """Parse by the file suffix; the title falls back to the file name. Raises ParseBudgetExceeded."""
    suffix = "." + uri.rsplit(".", 1)[-1].lower() if "." in uri.rsplit("/", 1)[-1] else ".txt"
    doc = PARSERS.get(suffix, parse_markdown)(text, budget)
    if budget is not None:
        budget.check()
    doc.title = doc.title or uri.rsplit("/", 1)[-1]
    return doc
