"""The address a web page will listen on (``serve``, ``evaluate rate``), checked before anything is created or
loaded: one line for a port out of range, a host that is not this machine's, or a port another program holds."""

from __future__ import annotations

import errno
import socket

from idportrait.errors import UserError


def check_listen_address(host: str, port: int) -> None:
    """Bind a socket to ``host``:``port`` once and close it (as the server will bind it); `UserError` naming the
    option at fault when that cannot work."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: must be a port number from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise UserError(f"--host {host}: not a host name or address of this machine ({reason})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server: a port in TIME_WAIT is free
        try:
            sock.bind(address)
        except OSError as err:
            reasons = {
                errno.EADDRINUSE: f"--port {port}: already in use on {host} by another program; choose another --port",
                errno.EADDRNOTAVAIL: f"--host {host}: not an address of this machine (use 127.0.0.1 or 0.0.0.0)",
                errno.EACCES: f"--port {port}: not allowed for this user (ports below 1024 need root)",
            }
            raise UserError(reasons.get(err.errno, f"cannot listen on {host}:{port} ({err.strerror})")) from None
