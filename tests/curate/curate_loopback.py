"""A loopback web server that serves every way a download fails (and some ways it works).

``/ok/<name>`` 200 with `IMAGES[name]`; ``/status/<code>`` that status; ``/flaky/<id>`` 503 on the first
request of each id, then the image; ``/drip`` one byte every 0.1 s; ``/hang`` never answers; ``/badstatus``
a status line that is not HTTP; ``/incomplete`` 10 of 1000 announced bytes; ``/close`` closes without a
reply; ``/empty`` an empty 200; ``/big`` 5000 announced bytes; ``/bigchunked`` 5000 bytes chunked;
``/redirect/<name>`` a 302 to ``/ok/<name>``; ``/loop`` a 302 to itself; ``/slow/<id>`` the image after
0.2 s. The server counts requests per path and the most requests it served at once.
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

from loopback_port import free_port

IMAGE = b"\xff\xd8\xff" + b"image" * 10
IMAGES: dict[str, bytes] = {"a.jpg": IMAGE}


def _reply(status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Loopback(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: Counter[str] = Counter()
        self.slow_now = self.most_slow = 0  # /slow requests being served, and the most at once
        self.lock = threading.Lock()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(socketserver.StreamRequestHandler):
    server: Loopback

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        path = line[1] if len(line) > 1 else "/"
        with self.server.lock:
            self.server.requests[path] += 1
            seen = self.server.requests[path]
        with suppress(OSError):  # the client gave up (deadline): nothing more to send
            self.respond(path, seen)

    def respond(self, path: str, seen: int) -> None:
        kind, _, rest = path.strip("/").partition("/")
        out = self.wfile
        if kind == "ok" and rest in IMAGES:
            out.write(_reply("200 OK", IMAGES[rest], ("Content-Type: image/jpeg",)))
        elif kind == "status":
            out.write(_reply(f"{rest} Oops"))
        elif kind == "flaky":
            out.write(_reply("503 Busy") if seen == 1 else _reply("200 OK", IMAGE))
        elif kind == "drip":
            out.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
            for _ in range(100):
                out.write(b"x")
                out.flush()
                time.sleep(0.1)
        elif kind == "hang":
            self.server.release.wait(30)
        elif kind == "badstatus":
            out.write(b"HELLO THERE\r\n\r\n")
        elif kind == "incomplete":
            out.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + b"x" * 10)
        elif kind == "empty":
            out.write(_reply("200 OK"))
        elif kind == "big":
            out.write(_reply("200 OK", b"x" * 5000))
        elif kind == "bigchunked":
            chunk = b"x" * 1000
            out.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            out.write(b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n")
        elif kind == "redirect":
            out.write(_reply("302 Found", headers=(f"Location: /ok/{rest}",)))
        elif kind == "loop":
            out.write(_reply("302 Found", headers=("Location: /loop",)))
        elif kind == "slow":
            self.slow(out)
        elif kind != "close":
            out.write(_reply("404 Not Found"))

    def slow(self, out: BinaryIO) -> None:
        """Answers after 0.2 s; counted as served until just before the reply is written, so a client that
        reads the reply and starts its next request is never counted twice."""
        with self.server.lock:
            self.server.slow_now += 1
            self.server.most_slow = max(self.server.most_slow, self.server.slow_now)
        time.sleep(0.2)
        with self.server.lock:
            self.server.slow_now -= 1
        out.write(_reply("200 OK", IMAGE))


@contextmanager
def loopback_server() -> Iterator[Loopback]:
    server = Loopback()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """A loopback url on a port nobody listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/refused.jpg"
