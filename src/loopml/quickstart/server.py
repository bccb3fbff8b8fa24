"""The real model server, as a separate process: started, waited for, stopped or left running.

The process is ``loopml serve models:/<name>@<alias>`` on 127.0.0.1, pointed at the same
metadata and artifact stores as the caller, watching the alias for a hot swap. Its output goes
to a log file. It runs in its own session, so it can be left serving after the quickstart
exits (``--keep-serving``) and a Ctrl-C in the terminal reaches only the quickstart, which
then stops it.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument, InvalidState

if TYPE_CHECKING:
    from loopml.settings import Settings

__all__ = ["HOST", "ServerProcess", "free_port", "start_server"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A running ``loopml serve`` process and where it answers."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, timeout_s: float = 20.0) -> int:
        """Stop the server gracefully (SIGTERM: queued requests finish, the prediction log is
        flushed), killing it after ``timeout_s``; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_server(
    model_uri: str,
    *,
    settings: Settings,
    log_path: Path,
    port: int = 0,
    poll_s: float = 0.5,
    timeout_s: float = 90.0,
) -> ServerProcess:
    """Start ``loopml serve model_uri`` with one worker on ``port`` (0: a free one), using the
    stores ``settings`` name, and return once ``/health`` answers 200.

    :class:`InvalidState` (with the end of the server's log) if it exits or does not answer
    within ``timeout_s``.
    """
    artifact_uri = settings.resolved_artifact_uri
    if artifact_uri.startswith("memory://"):
        raise InvalidArgument(
            f"the quickstart's model server runs in another process and cannot see the "
            f"in-memory artifact store {artifact_uri!r}: use a folder, file:// or s3:// root"
        )
    port = port or free_port()
    env = {
        **os.environ,
        "LOOPML_WORKSPACE": str(settings.workspace.absolute()),
        "LOOPML_STORE_URI": settings.resolved_store_uri,
        "LOOPML_ARTIFACT_URI": artifact_uri,
    }
    command = [
        sys.executable, "-m", "loopml.cli.app", "serve", model_uri,
        "--host", HOST, "--port", str(port), "--workers", "1", "--poll-s", str(poll_s),
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = ServerProcess(f"http://{HOST}:{port}", port, process, log_path)
    try:
        _wait_healthy(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: ServerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.running():
            raise InvalidState(
                f"the model server exited with code {server.process.returncode} before it "
                f"answered; the end of its log ({server.log_path}):\n{server.log_tail()}"
            )
        if _healthy(server.port):
            return
        time.sleep(0.1)
    raise InvalidState(
        f"the model server did not answer {server.url}/health within {timeout_s:.0f}s; the end "
        f"of its log ({server.log_path}):\n{server.log_tail()}"
    )


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()
