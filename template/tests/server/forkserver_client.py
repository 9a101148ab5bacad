"""A server process, forked by tests/server/forkserver.py, as a command a test can start.

Hands the fork server this process's standard streams, environment, working directory and
arguments, then stands for the child it forks: signals sent here go to the child, and this process
exits with the child's status (killed by a signal, it kills itself with the same one). The standard
library only, run with `python -I -S`: it starts in a few milliseconds.

Usage (probe_server.serve_command() builds it): python -I -S forkserver_client.py SOCKET_PATH ARGUMENT...
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main(socket_path: str, arguments: list[str]) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
        connection.connect(socket_path)
        request = {"argv": arguments, "env": dict(os.environ), "cwd": os.getcwd()}
        socket.send_fds(connection, [json.dumps(request).encode()], [0, 1, 2])
        pid = int(connection.recv(64))
        for signum in FORWARDED:
            signal.signal(signum, lambda signum, _frame: os.kill(pid, signum))
        # The child has stdin and stdout now: its client sees their end when the child exits.
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        status = connection.recv(64)  # sent when the child has exited
    if not status:
        print("forkserver_client: the fork server stopped before the server process did", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return 1
    code = os.waitstatus_to_exitcode(int(status))
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
