from ragops.ingest.parsing import parse


def test_markdown_headings_outside_code_fences():
    doc = parse("# Title\n\nintro\n\n## Part\n\n```\n# not a heading\n```\ntext\n", "x.md")
    assert doc.title == "Title"
    assert [s.path for s in doc.sections] == [("Title",), ("Title", "Part")]
    assert "# not a heading" in doc.sections[1].text


def test_plain_text_uses_markdown_headings():
    doc = parse("# A\n\none\n\n# B\n\ntwo", "x.txt")
    assert [s.path for s in doc.sections] == [("A",), ("B",)]


def test_html_headings_and_skipped_scripts():
    doc = parse("<html><head><title>T</title><script>var x=1</script></head><body><h1>One</h1><p>a <b>b</b></p>"
                "<h2>Two</h2><p>c</p></body></html>", "x.html")
    assert doc.title == "One"
    assert [(s.path, s.text) for s in doc.sections] == [(("One",), "a b"), (("One", "Two"), "c")]


def test_rst_underlines_define_levels():
    doc = parse("Top\n===\n\nbody\n\nSub\n---\n\nmore\n\nNext\n====\n\nend\n", "x.rst")
    assert [s.path for s in doc.sections] == [("Top",), ("Top", "Sub"), ("Next",)]


def test_asciidoc_headings_and_blocks():
    doc = parse("= Doc\n:toc:\n\n== One\n\ntext\n\n----\n== in a listing\n----\n", "x.adoc")
    assert doc.title == "Doc"
    assert [s.path for s in doc.sections] == [("Doc", "One")]
    assert "== in a listing" in doc.sections[0].text


def test_no_headings_falls_back_to_file_name():
    doc = parse("just text", "dir/readme.txt")
    assert doc.title == "readme.txt" and doc.text_chars == 9


# -- hostile input: linear work, no crash, a budget per document -----------------------------------------------------

import time  # noqa: E402

import pytest  # noqa: E402

from ragops.errors import ParseBudgetExceeded  # noqa: E402
from ragops.ingest.parsing import ParseBudget  # noqa: E402

# CPU time of this thread, not wall time: a busy machine slows neither side. A linear parse of these inputs takes
# well under a second; the pre-fix parsers took minutes (the cubic heading) or raised (html.parser on `<![`).
CEILING_S = 20.0


def _cpu(fn, *args):
    started = time.thread_time()
    result = fn(*args)
    return result, time.thread_time() - started


def test_the_cubic_atx_heading_parses_in_linear_time():
    doc, spent = _cpu(parse, "# a" + " " * 8000 + "b\n\ntext", "x.md")
    assert spent < CEILING_S and doc.title == "a" + " " * 8000 + "b"
    doc, spent = _cpu(parse, "# a" + " " * 1_000_000 + "b", "x.md")
    assert spent < CEILING_S


@pytest.mark.parametrize("name,text", [
    ("end tags without a name", "</" * 500_000),
    ("unterminated declarations", "<![" * 300_000),
    ("unterminated comment", "<!--" + "a" * 1_000_000),
    ("lone brackets", "<" * 1_000_000),
    ("deep nesting", "<div>" * 200_000 + "deep text" + "</div>" * 200_000),
    ("unterminated quotes", "<a title='" * 100_000),
    ("unclosed script", "<p>before</p><script>" + "x<" * 400_000),
])
def test_hostile_html_is_parsed_in_linear_time_without_crashing(name, text):
    doc, spent = _cpu(parse, text, "x.html")
    assert spent < CEILING_S, f"{name}: {spent:.1f} s of CPU"
    if name == "deep nesting":
        assert doc.sections[0].text == "deep text"
    if name == "unclosed script":
        assert doc.sections[0].text == "before"


def test_html_entities_titles_and_unclosed_headings():
    doc = parse("<head><title>A &amp; B</title></head><h1>One &lt;1&gt;</h1><p>x &quot;y&quot;</p><h2>Not closed",
                "x.html")
    assert doc.title == "One <1>"
    assert [(s.path, s.text) for s in doc.sections] == [(("One <1>",), 'x "y"')]
    assert parse("<p>a</p><h2>Not closed <b>bold</b>", "z.html").sections[-1].text == "a"
    assert parse("<html><head><title>Only &amp; title</title></head><body><p>t</p></body>", "y.html").title == "Only & title"


class SteppingClock:
    """Each reading advances one second: a budget of N seconds allows N checks, whatever the machine's speed."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


@pytest.mark.parametrize("suffix,text", [
    (".md", "line\n" * 50_000),
    (".rst", "line\n" * 50_000),
    (".adoc", "line\n" * 50_000),
    (".html", "<p>x</p>" * 50_000),
])
def test_a_document_over_its_parse_budget_is_stopped(suffix, text):
    with pytest.raises(ParseBudgetExceeded, match="parse took too long"):
        parse(text, "x" + suffix, ParseBudget(5, SteppingClock()))
    parse("# short\n\ntext", "x" + suffix, ParseBudget(5, SteppingClock()))  # a few checks stay within it
