"""Server processes for the tests, forked from one that has already imported the server.

A fresh `python -m tests.server.probe_server serve` spends about 2.5 s of CPU importing FastMCP, MCP
and the server before it serves, and these tests start a dozen. This process imports them once
(probe_server.PRELOAD), then forks a child per start. The child takes the standard streams,
environment, working directory and arguments of the command that asked for it
(forkserver_client.py), runs `serve`, and exits the way a fresh interpreter does (atexit handlers,
flushed streams, its exit status). That command stands for the child: it forwards signals and exits
with the child's status, so a test drives it as it would drive the server itself.

Linux only (pidfd, SOCK_SEQPACKET); elsewhere probe_server starts fresh interpreters.

Usage (probe_server.serve_command() starts it): python -m tests.server.forkserver SOCKET_PATH
It stops when its standard input closes: the test session that started it has ended.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
from dataclasses import dataclass

from . import probe_server

MAX_REQUEST_BYTES = 1 << 20  # a test process's environment, with room to spare


@dataclass(frozen=True)
class Start:
    """What a client asked for: `argv` run in `cwd` with `env`, on `streams` (its stdin, stdout and
    stderr); `connection` is the client's, open as long as the client lives."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    streams: list[int]
    connection: socket.socket


def _receive(connection: socket.socket) -> Start:
    message, streams, _, _ = socket.recv_fds(connection, MAX_REQUEST_BYTES, 3)
    request = json.loads(message)
    return Start([probe_server.__file__, *request["argv"]], request["env"], request["cwd"], streams, connection)


def serve_forks(listener: socket.socket) -> Start | None:
    """Fork a child for each client until standard input closes (then None). Returns in a child only,
    with the start it is to run; the parent sends each client its child's pid, then its wait status."""
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd -> (pid, the client's connection)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                start = _receive(listener.accept()[0])
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    listener.close()
                    for pidfd, (_, connection) in children.items():
                        os.close(pidfd)
                        connection.close()
                    return start
                for stream in start.streams:
                    os.close(stream)
                start.connection.send(str(pid).encode())
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, start.connection)
                selector.register(pidfd, selectors.EVENT_READ)
            elif key.fileobj == sys.stdin.fileno():
                if not os.read(key.fd, 4096):
                    return None
            else:
                pid, connection = children.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                status = os.waitpid(pid, 0)[1]
                with contextlib.suppress(OSError):  # a client killed outright waits for nothing
                    connection.send(str(status).encode())
                connection.close()


def _end_with_the_client(connection: socket.socket) -> None:
    """A client killed outright (SIGKILL) cannot forward it: its child follows it."""
    connection.recv(1)  # the client sends nothing more: this returns when it has exited
    os.kill(os.getpid(), signal.SIGKILL)


def run(start: Start) -> int:
    """In the child: become the process the client stands for, and serve."""
    for target, stream in enumerate(start.streams):
        os.dup2(stream, target)
        os.close(stream)
    os.chdir(start.cwd)
    os.environ.clear()
    os.environ.update(start.env)
    sys.argv = start.argv
    sys.path[0] = start.cwd  # what `python -m` puts first
    threading.Thread(target=_end_with_the_client, args=(start.connection,), daemon=True).start()
    return probe_server.run(start.argv[1:])


def main(socket_path: str) -> int:
    for module in probe_server.PRELOAD:
        importlib.import_module(module)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(socket_path)
        listener.listen(16)
        print("ready", flush=True)
        start = serve_forks(listener)
    return 0 if start is None else run(start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
