"""Image downloads that survive the real web: a deadline per download, retries, a cap per host.

    fetcher = Fetcher(DownloadConfig())   # one per process: urllib3 connection pools, the per-host cap
    fetcher.fetch(url)                    # Fetched(body=b"...") or Fetched(error="http_404")
    fetch_sample(sample, fetcher)         # fills sample.image_bytes, or sample.fetch_error
    download_stage(samples, fetcher)      # fetch_sample over a thread pool (I/O: no CPU to speak of)

Every transport error is caught and named (`reasons.DOWNLOAD_DETAILS`: ``http_404``, ``timeout``,
``connection_refused``, ``malformed_response``...); a failed download becomes the drop reason
``download_failed:<detail>``. Timeouts and 5xx replies are retried with exponential backoff. Each
attempt has one deadline for connecting, the headers and the whole body together (a host that sends
a byte every second cannot hold a download longer than ``deadline_s``), so one URL costs at most
``(retries + 1) * deadline_s`` plus the backoff sleeps. At most ``per_host`` downloads of one process
run against one host at a time, whatever the number of threads.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.exceptions as u3

from idportrait.curate import reasons
from idportrait.curate.options import DownloadConfig
from idportrait.curate.types import Sample

USER_AGENT = "idportrait-curate/0.1 (+FaceID dataset curation)"
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fetched:
    """The body of a download, or the detail of its failure (one of `reasons.DOWNLOAD_DETAILS` or ``http_<status>``)."""

    body: bytes | None = None
    error: str | None = None


class HostCap:
    """At most ``per_host`` holders of a slot per host; the others wait (threads)."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self.active: Counter[str] = Counter()
        self.changed = threading.Condition()

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.active[host] < self.per_host)
            self.active[host] += 1
        try:
            yield
        finally:
            with self.changed:
                self.active[host] -= 1
                if not self.active[host]:
                    del self.active[host]
                self.changed.notify_all()


class DeadlineExceeded(Exception):
    """An attempt ran past its deadline."""


TRANSPORT_ERRORS = (u3.HTTPError, http.client.HTTPException, OSError, ValueError, DeadlineExceeded)
"""What a download may raise: urllib3's errors, http.client's (BadStatusLine, IncompleteRead...), socket errors."""


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and every error behind it (urllib3 wraps the socket or http.client error that stopped it)."""
    found: list[BaseException] = []
    todo: list[object] = [err]
    while todo:
        cause = todo.pop(0)
        if isinstance(cause, BaseException) and not any(cause is f for f in found):
            found.append(cause)
            todo += [cause.__cause__, cause.__context__, *cause.args]
    return found


ERROR_DETAILS: list[tuple[tuple[type[BaseException], ...], str]] = [
    ((u3.NameResolutionError, socket.gaierror), reasons.DNS_ERROR),
    ((ConnectionRefusedError,), reasons.CONNECTION_REFUSED),
    ((u3.NewConnectionError,), reasons.CONNECTION_ERROR),
    ((DeadlineExceeded, TimeoutError, u3.TimeoutError), reasons.TIMEOUT),
    ((u3.SSLError, ssl.SSLError), reasons.TLS_ERROR),
    ((http.client.IncompleteRead, u3.IncompleteRead), reasons.INCOMPLETE_BODY),
    ((ConnectionResetError, BrokenPipeError), reasons.CONNECTION_RESET),
    ((http.client.HTTPException, u3.DecodeError, u3.HeaderParsingError), reasons.MALFORMED_RESPONSE),
    ((u3.LocationValueError, u3.LocationParseError, u3.URLSchemeUnknown, ValueError), reasons.BAD_URL),
]
"""(error types, detail): the first pair matching the error or one behind it names the failure (order matters:
urllib3's NewConnectionError is also a ConnectTimeoutError)."""


def error_detail(err: BaseException) -> str:
    """The download failure detail naming ``err`` (a urllib3, http.client or socket error), else ``network_error``."""
    causes = _causes(err)
    for types, detail in ERROR_DETAILS:
        if any(isinstance(cause, types) for cause in causes):
            return detail
    return reasons.NETWORK_ERROR


MESSAGE_DETAILS: list[tuple[str, str]] = [
    (r"timed out|timeout", reasons.TIMEOUT),
    (r"refused", reasons.CONNECTION_REFUSED),
    (r"name or service not known|getaddrinfo|name resolution|nodename nor servname", reasons.DNS_ERROR),
    (r"reset by peer|remote end closed|connection aborted", reasons.CONNECTION_RESET),
    (r"ssl|certificate", reasons.TLS_ERROR),
    (r"incompleteread", reasons.INCOMPLETE_BODY),
]
"""(pattern, detail) for the error messages of other downloaders (img2dataset: urllib's ``str(err)``)."""


def detail_of_message(message: str | None) -> str:
    """The failure detail of another downloader's error message (``HTTP Error 404: ...`` -> ``http_404``)."""
    text = (message or "")[:500].lower()
    status = re.match(r"http error (\d{3})", text)
    if status:
        return f"http_{status.group(1)}"
    return next((detail for pattern, detail in MESSAGE_DETAILS if re.search(pattern, text)), reasons.NETWORK_ERROR)


class Fetcher:
    """Downloads with `DownloadConfig`'s deadline, retries and per-host cap; safe to share between threads."""

    def __init__(self, config: DownloadConfig | None = None) -> None:
        self.config = config or DownloadConfig()
        self.cap = HostCap(self.config.per_host)
        self.pools = urllib3.PoolManager(
            num_pools=256, maxsize=self.config.per_host, headers={"User-Agent": USER_AGENT}, retries=False
        )

    def fetch(self, url: str) -> Fetched:
        """The body of ``url`` or the named failure; never raises for anything the network does."""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            result = self._attempt(url)
            if not reasons.worth_retrying(result.error):
                return result
        return result

    def _attempt(self, url: str) -> Fetched:
        deadline = time.monotonic() + self.config.deadline_s
        for _ in range(self.config.max_redirects + 1):
            try:
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    return Fetched(error=reasons.BAD_URL)
                with self.cap.slot(parts.netloc.lower()):
                    status, location, body = self._get(url, deadline)
            except TRANSPORT_ERRORS as err:  # every transport error becomes a named failure, never a crash
                return Fetched(error=error_detail(err))
            if status in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if status != 200:
                return Fetched(error=f"http_{status}")
            if not body:
                return Fetched(error=reasons.EMPTY_BODY)
            if len(body) > self.config.max_bytes:
                return Fetched(error=reasons.BODY_TOO_LARGE)
            return Fetched(body=body)
        return Fetched(error=reasons.TOO_MANY_REDIRECTS)

    def _get(self, url: str, deadline: float) -> tuple[int, str | None, bytes]:
        """(status, redirect location, body up to max_bytes + 1) of one request, all within ``deadline``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded
        timeout = urllib3.Timeout(connect=min(self.config.connect_timeout_s, remaining), read=remaining)
        response = self.pools.request("GET", url, preload_content=False, redirect=False, timeout=timeout)
        complete = False
        try:
            if response.status != 200:
                return response.status, response.headers.get("Location"), b""
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > self.config.max_bytes:
                return response.status, None, b"\0" * (self.config.max_bytes + 1)
            chunks, size = [], 0
            while size <= self.config.max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded
                if response.connection is not None and response.connection.sock is not None:
                    response.connection.sock.settimeout(remaining)  # each read waits only for what is left
                chunk = response.read1(CHUNK_BYTES)
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                size += len(chunk)
            return response.status, None, b"".join(chunks)
        finally:
            if complete:
                response.release_conn()  # keep-alive: the connection goes back to its host's pool
            else:
                response.close()


@lru_cache(maxsize=4)
def shared_fetcher(config: DownloadConfig) -> Fetcher:
    """One `Fetcher` per process and config (its connection pools and host cap are shared by all threads)."""
    return Fetcher(config)


def fetch_sample(sample: Sample, fetcher: Fetcher) -> None:
    """Fill ``sample.image_bytes`` from its url, in place, or set ``sample.fetch_error``.

    A sample that already holds bytes or a failure (an earlier downloader's) is left alone; one without
    bytes or url gets ``no_image``.
    """
    if sample.image_bytes is not None or sample.fetch_error is not None:
        return
    if not sample.url:
        sample.fetch_error = reasons.NO_IMAGE
        return
    result = fetcher.fetch(sample.url)
    if result.body is None:
        sample.fetch_error = reasons.download_failed(result.error or reasons.NETWORK_ERROR)
    else:
        sample.image_bytes = result.body


def download_stage(samples: list[Sample], fetcher: Fetcher) -> None:
    """`fetch_sample` of every sample, ``fetcher.config.threads`` at a time, in place."""
    todo = [s for s in samples if s.image_bytes is None and s.fetch_error is None]
    if todo:
        with ThreadPoolExecutor(max_workers=min(fetcher.config.threads, len(todo))) as pool:
            list(pool.map(lambda s: fetch_sample(s, fetcher), todo))
