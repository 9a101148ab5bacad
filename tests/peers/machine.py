"""What every peer shares on this machine: one download cache (and its lock), and loopback ports."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Keycloak, Node and its packages, the MCP Inspector and built tools, kept across runs.
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcp-template-peers"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports handed out come from below the kernel's ephemeral range: between handing a port out and
# the peer binding it (seconds, while projects sync), neither an outgoing connection's local port
# nor a generated project's own test server (those bind port 0) can take it. None is handed out
# twice by this process, which the kernel's port 0 does not promise.
_PORTS = range(20000, min(_ephemeral_low(), 32768))
_HANDED_OUT: set[int] = set()
_PORT_LOCK = threading.Lock()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now and that this process never handed out."""
    with _PORT_LOCK:
        for _ in range(1000):
            port = random.choice(_PORTS)
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {_PORTS.start}-{_PORTS.stop - 1}")


@contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """One downloader or builder at a time across processes (parallel test runs share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
