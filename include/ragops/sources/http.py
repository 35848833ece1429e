"""http(s) sources: a crawl of index pages under the root URL, and bounded streamed reads, on fsspec's HTTP session.

fsspec's own `ls` reads a whole index page into memory and extracts links with a regex that backtracks
polynomially, and `cat_file` reads whole bodies; a hostile or broken server could exhaust memory or stall the
refresh. Here every reply is streamed and cut at the size limit (a `Content-Length` over it is refused before the
body is read), every request has a total timeout, and only links under the root URL are followed.
"""

from __future__ import annotations

import asyncio
import html
import logging
import posixpath
import re
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import aiohttp
import fsspec
from fsspec.asyn import sync
from fsspec.implementations.http import HTTPFileSystem

from ragops.errors import SourceUnavailable
from ragops.sources import Refused, inside, over_limit

log = logging.getLogger(__name__)

# Linear: a literal, bounded whitespace, then a run that cannot contain its own terminator.
_HREF = re.compile(r"""href\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)')""", re.IGNORECASE)
MAX_DEPTH = 8
MAX_PAGES = 1000


class HttpFiles:
    def __init__(self, root: str, max_bytes: int, timeout_s: float, **storage_options):
        self.root = root.rstrip("/")
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        client = storage_options.pop("client_kwargs", {}) | {"timeout": aiohttp.ClientTimeout(total=timeout_s)}
        self.fs = HTTPFileSystem(client_kwargs=client, **storage_options)
        parts = urlsplit(self.root)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._root_path = posixpath.normpath(unquote(parts.path) or "/")

    def uri(self, path: str) -> str:
        return path

    def _under_root(self, url: str) -> bool:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self._origin or parts.query:
            return False
        path = unquote(parts.path)
        normal = posixpath.normpath(path)
        return normal == path.rstrip("/") and inside(normal, self._root_path)

    def list(self) -> list[str]:
        pages, seen, files = [(self.root + "/", 0)], {self.root + "/"}, set()
        while pages:
            page, depth = pages.pop()
            try:
                body = self._get(page, self.max_bytes)
            except Refused as refusal:
                log.warning("skipped the index page %s: %s", page, refusal.reason)
                continue
            except FileNotFoundError:
                if depth == 0:
                    raise SourceUnavailable(f"source {self.root} does not exist (HTTP 404)") from None
                continue
            text = body.decode("utf-8", "replace")
            for match in _HREF.finditer(text):
                url = urldefrag(urljoin(page, html.unescape(match.group(1) or match.group(2) or "")))[0]
                if not self._under_root(url):
                    continue
                if not url.endswith("/"):
                    files.add(url)
                elif url not in seen and depth < MAX_DEPTH and len(seen) < MAX_PAGES:
                    seen.add(url)
                    pages.append((url, depth + 1))
        return sorted(files)

    def read(self, path: str) -> bytes:
        try:
            return self._get(path, self.max_bytes)
        except FileNotFoundError:
            raise Refused("the document vanished while the source was read (HTTP 404)") from None

    def _get(self, url: str, limit: int) -> bytes:
        try:
            content, declared = sync(self.fs.loop, self._fetch, url, limit, timeout=self.timeout_s + 5)
        except aiohttp.ClientResponseError as exc:
            raise SourceUnavailable(f"the source answered HTTP {exc.status} for {url}") from exc
        except (asyncio.TimeoutError, fsspec.exceptions.FSTimeoutError) as exc:
            raise SourceUnavailable(f"the source did not answer {url} within {self.timeout_s:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise SourceUnavailable(f"cannot read {url}: {exc}") from exc
        if declared is not None and declared > limit:
            raise over_limit(declared, limit)
        if len(content) > limit:
            raise Refused(f"over the size limit of {limit} bytes (the server sent more than that)", len(content))
        return content

    async def _fetch(self, url: str, limit: int) -> tuple[bytes, int | None]:
        session = await self.fs.set_session()
        async with session.get(self.fs.encode_url(url)) as reply:
            if reply.status == 404:
                raise FileNotFoundError(url)
            reply.raise_for_status()
            if reply.content_length is not None and reply.content_length > limit:
                return b"", reply.content_length  # stat first: the body is never read
            parts, size = [], 0
            while size <= limit:
                part = await reply.content.read(min(1 << 20, limit + 1 - size))
                if not part:
                    break
                parts.append(part)
                size += len(part)
            return b"".join(parts), None
