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
