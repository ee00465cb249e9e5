"""Loopback probes: a free port, whether a port is taken, whether an HTTP server is healthy."""

import contextlib
import socket
import urllib.request

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True if ``GET <url>/health`` answers 200 (straight to loopback, never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with contextlib.suppress(OSError, ValueError), opener.open(url + "/health", timeout=timeout) as resp:
        return resp.status == 200
    return False
