"""The metrics port's HTTP: a listening TCP socket for ``metrics.listen``, and just enough
HTTP/1.1 for a scraper on top of ``recd.daemon.serving``'s bounded server.

One ``GET`` per connection, answered by a WSGI app (prometheus_client's) and closed; the head
is at most ``MAX_HTTP_HEAD`` bytes, no body is read, and every reply says ``Connection:
close``. A socket that cannot listen is a ``StateError`` whose one line names the setting.
"""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Callable, Iterable

from recd.config.types import Listen
from recd.errors import StateError, os_reason

BACKLOG = 512  # a burst of connections waits in the kernel, not on a SYN retry
#: The largest HTTP request head read; a scraper's is a few hundred bytes.
MAX_HTTP_HEAD = 8192
StartResponse = Callable[[str, list[tuple[str, str]]], object]
WsgiApp = Callable[[dict[str, object], StartResponse], Iterable[bytes]]


class WsgiEndpoint:
    """One HTTP/1.1 ``GET`` per connection, answered by the WSGI ``app`` then closed.

    Just enough HTTP for a scraper: the request line, the headers (no body is read), the
    query string; every reply says ``Connection: close``.
    """

    def __init__(self, name: str, app: WsgiApp) -> None:
        self.name = name
        self.app = app

    def complete(self, data: bytes, eof: bool) -> bool:
        return eof or b"\r\n\r\n" in data or b"\n\n" in data

    def answer(self, conn: socket.socket, request: bytes) -> bytes:
        head = request.replace(b"\r\n", b"\n").partition(b"\n\n")
        if not head[1] and len(request) > MAX_HTTP_HEAD:
            return _http("431 Request Header Fields Too Large", b"request head too large\n")
        lines = head[0].decode("latin-1").split("\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _http("400 Bad Request", b"not an HTTP request\n")
        method, target, version = parts
        path, _, query = target.partition("?")
        environ: dict[str, object] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": version,
            "wsgi.url_scheme": "http",
        }
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                environ[f"HTTP_{name.strip().upper().replace('-', '_')}"] = value.strip()
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]]) -> object:
            started.append((status, headers))
            return None

        body = b"".join(self.app(environ, start_response))
        status, headers = started[0]
        return _http(status, body, headers)

    def refusal(self, why: str, *, busy: bool) -> bytes:
        status = "503 Service Unavailable" if busy else "408 Request Timeout"
        return _http(status, why.encode() + b"\n")


def _http(status: str, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    fields = {"Content-Type": "text/plain; charset=utf-8"}
    fields.update(headers)
    fields["Content-Length"] = str(len(body))
    fields["Connection"] = "close"
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body


def listen_tcp(listen: Listen) -> socket.socket:
    """A listening TCP socket on ``listen``, or ``StateError`` naming ``metrics.listen``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StateError(f"metrics.listen {listen}: cannot listen: {os_reason(exc)}") from None
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise StateError(f"metrics.listen {listen}: cannot listen: {os_reason(exc)}") from None
    return sock
