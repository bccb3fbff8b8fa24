"""What a step prints or logs, captured per thread (or task) while the step runs.

``sys.stdout``/``sys.stderr`` get a thin wrapper once: text written by a thread that is
capturing goes to its buffer as well as to the real stream; other threads are untouched. A
handler on the root logger does the same for log records.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_buffer: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "loopml_step_logs", default=None
)
_install_lock = threading.Lock()
_installed = False
MAX_LOG_CHARS = 1_000_000  # a step that prints more keeps the last million characters


class _Tee:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        buffer = _buffer.get()
        if buffer is not None:
            buffer.write(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer = _buffer.get()
        if buffer is not None:
            try:
                buffer.write(self.format(record) + "\n")
            except Exception:  # a broken record must not fail the step
                self.handleError(record)


def _install() -> None:
    """Wrap the streams (again, if something such as a test runner swapped them since)."""
    global _installed
    with _install_lock:
        if not isinstance(sys.stdout, _Tee):
            sys.stdout = _Tee(sys.stdout)
        if not isinstance(sys.stderr, _Tee):
            sys.stderr = _Tee(sys.stderr)
        if _installed:
            return
        _installed = True
        handler = _Handler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)


@contextmanager
def capture() -> Iterator[io.StringIO]:
    """Collect what this thread prints and logs inside the block."""
    _install()
    buffer = io.StringIO()
    token = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(token)


def text_of(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    if len(text) > MAX_LOG_CHARS:
        return "[... earlier output cut ...]\n" + text[-MAX_LOG_CHARS:]
    return text
