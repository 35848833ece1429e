import hashlib
import os
import socket
import stat
import threading
import tracemalloc
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import serve_in_thread

from ragops.errors import SourceUnavailable
from ragops.sources import Source

SECRET = "root:x:0:0:planted-secret-outside-the-root"


def test_lists_supported_documents_and_skips_hidden(corpus):
    (corpus / ".git").mkdir()
    (corpus / ".git" / "HEAD.md").write_text("# hidden")
    (corpus / "image.png").write_bytes(b"\x89PNG")
    paths = Source(corpus.as_uri()).list_paths()
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["audit.adoc", "install.md", "notes.txt", "ops.rst", "page.html", "refresh.md"]


def test_fingerprint_is_content_sha256(corpus):
    docs = {d.uri: d for d in Source(corpus.as_uri()).documents()}
    doc = docs[(corpus / "notes.txt").as_uri()]
    assert doc.fingerprint == hashlib.sha256((corpus / "notes.txt").read_bytes()).hexdigest()
    assert doc.size_bytes == len(doc.content) and doc.refused is None


def test_missing_source_is_unavailable(tmp_path):
    with pytest.raises(SourceUnavailable, match="does not exist"):
        Source((tmp_path / "nope").as_uri()).list_paths()


def test_unknown_scheme_is_unavailable():
    with pytest.raises(SourceUnavailable):
        Source("nosuchproto://bucket/x")


# -- confinement: nothing outside the root, nothing but regular files ----------------------------------------------

@pytest.fixture
def secret(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "passwd.md"
    path.write_text(SECRET)
    return path


def _by_name(source: Source) -> dict:
    return {d.uri.rsplit("/", 1)[-1]: d for d in source.documents()}


def test_symlinks_out_of_the_root_are_refused_and_never_read(corpus, secret):
    (corpus / "passwd.md").symlink_to(secret)
    (corpus / "relative.md").symlink_to(os.path.relpath(secret, corpus))
    (corpus / "outdir").symlink_to(secret.parent, target_is_directory=True)
    docs = _by_name(Source(corpus.as_uri()))
    for name in ("passwd.md", "relative.md"):
        assert docs[name].content == b"" and "outside the source root" in docs[name].refused
    assert not any(SECRET.encode() in d.content for d in docs.values())
    assert all("outdir" not in d.uri for d in docs.values())  # a linked folder is never walked


def test_hard_links_are_refused_wherever_their_other_name_is(corpus, secret):
    """A hard link's other names cannot be proven inside the root, so any regular file with more than one is refused."""
    os.link(secret, corpus / "passwd.md")
    os.link(corpus / "guide" / "install.md", corpus / "twin.md")
    docs = _by_name(Source(corpus.as_uri()))
    for name in ("passwd.md", "twin.md", "install.md"):
        assert docs[name].content == b"" and "hard link" in docs[name].refused
    assert not any(SECRET.encode() in d.content for d in docs.values())
    assert docs["notes.txt"].refused is None


def test_symlinks_inside_the_root_are_read(corpus):
    (corpus / "alias.md").symlink_to(corpus / "guide" / "install.md")
    docs = _by_name(Source(corpus.as_uri()))
    assert docs["alias.md"].refused is None and docs["alias.md"].content.startswith(b"# Installing")


def test_fifo_socket_device_and_loops_are_refused_without_blocking(corpus):
    os.mkfifo(corpus / "pipe.md")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(corpus / "sock.md"))
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    (corpus / "zero.md").symlink_to("/dev/zero")
    (corpus / "folder.md").mkdir()
    try:
        os.mknod(corpus / "dev.md", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers
        device = True
    except PermissionError:
        device = False  # not root: the /dev/zero symlink still covers devices
    found: dict = {}
    reader = threading.Thread(target=lambda: found.update(_by_name(Source(corpus.as_uri()))), daemon=True)
    reader.start()
    reader.join(120)  # a FIFO opened for reading would block here forever
    sock.close()
    assert not reader.is_alive(), "reading the source blocked"
    assert "FIFO" in found["pipe.md"].refused
    assert "socket" in found["sock.md"].refused
    assert found["loop.md"].refused and found["zero.md"].refused
    assert "folder.md" not in found
    if device:
        assert "character device" in found["dev.md"].refused
    assert all(found[n].content == b"" for n in ("pipe.md", "sock.md", "loop.md", "zero.md"))


def test_size_is_checked_before_reading(corpus):
    sparse = corpus / "huge.md"
    with open(sparse, "wb") as f:
        f.truncate(1_500_000_000)  # 1.5 GB, sparse: costs no disk
    (corpus / "zero.md").symlink_to("/dev/zero")
    tracemalloc.start()
    try:
        docs = _by_name(Source(corpus.as_uri(), max_bytes=5_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "1500000000 bytes" in docs["huge.md"].refused and "size limit" in docs["huge.md"].refused
    assert docs["huge.md"].size_bytes == 1_500_000_000 and docs["huge.md"].content == b""
    assert peak < 50_000_000, f"reading the source allocated {peak} bytes"


def test_a_refused_entry_keeps_a_stable_fingerprint(corpus, secret):
    (corpus / "passwd.md").symlink_to(secret)
    first = _by_name(Source(corpus.as_uri()))["passwd.md"]
    secret.write_text("changed secret")
    second = _by_name(Source(corpus.as_uri()))["passwd.md"]
    assert first.fingerprint == second.fingerprint  # derived from the reason, never from the content


def test_over_long_and_undecodable_names_are_skipped(corpus):
    deep = corpus
    for _ in range(5):
        deep = deep / ("d" * 240)
    deep.mkdir(parents=True)
    (deep / "long.md").write_text("# Long\n\npath")
    os.close(os.open(os.fsencode(corpus) + b"/bad\xff.md", os.O_CREAT | os.O_WRONLY, 0o600))
    docs = {d.uri: d for d in Source(corpus.as_uri()).documents()}
    assert all(len(uri) <= 1024 for uri in docs)
    assert all("\udcff" not in uri for uri in docs)
    assert len(docs) == 6


def test_other_fsspec_schemes_are_bounded_too():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bounded/ok.md", b"# Ok\n\nfine")
    fs.pipe("/bounded/big.md", b"x" * 2048)
    fs.pipe("/elsewhere/secret.md", SECRET.encode())
    docs = _by_name(Source("memory://bounded", max_bytes=1024))
    assert docs["ok.md"].content == b"# Ok\n\nfine"
    assert docs["big.md"].content == b"" and "size limit" in docs["big.md"].refused
    assert "secret.md" not in docs


# -- http(s): bounded listing and bounded reads --------------------------------------------------------------------

class _Lying(SimpleHTTPRequestHandler):
    """Serves a folder; /docs/endless.md claims no length and streams forever."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("endless.md"):
            self.send_response(200)
            self.send_header("Content-Type", "text/markdown")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"# endless\n" * 10_000)
            except (BrokenPipeError, ConnectionResetError):
                return
        return super().do_GET()

    def do_HEAD(self):
        if self.path.endswith("endless.md"):
            self.send_response(200)
            self.end_headers()
            return
        return super().do_HEAD()


@pytest.fixture
def http_root(tmp_path, corpus, secret):
    site = tmp_path / "site"
    site.mkdir()
    (site / "docs").symlink_to(corpus, target_is_directory=True)
    (corpus / "endless.md").write_text("placeholder")
    (site / "secret.md").write_text(SECRET)
    (corpus / "links.html").write_text('<a href="../secret.md">up</a> <a href="http://example.invalid/x.md">out</a>'
                                       '<h1>Links</h1><p>links that leave the root</p>')
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Lying(*a, directory=str(site)))
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/docs"
    server.shutdown()
    server.server_close()


def test_http_source_lists_inside_its_root_and_reads_bounded(http_root):
    docs = {d.uri.rsplit("/", 1)[-1]: d for d in Source(http_root, max_bytes=100_000, timeout_s=30).documents()}
    assert {"install.md", "refresh.md", "notes.txt", "page.html", "ops.rst", "audit.adoc", "links.html"} <= set(docs)
    assert docs["install.md"].content.startswith(b"# Installing")
    assert all(d.uri.startswith(http_root + "/") for d in docs.values())
    assert "secret.md" not in docs and not any(SECRET.encode() in d.content for d in docs.values())
    assert docs["endless.md"].content == b"" and "size limit" in docs["endless.md"].refused
