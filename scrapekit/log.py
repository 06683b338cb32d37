"""structlog set-up, done once per crawl: readable on a terminal, JSON lines under cron.

Shared processors: merge contextvars, add the level, add a UTC timestamp, redact secrets.
Then the renderer: `ConsoleRenderer` when stderr is a terminal, `JSONRenderer` otherwise, or
whatever LOG_FORMAT says. Reads LOG_LEVEL and LOG_FORMAT.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|auth|cookie|session_?id|api_?key|credential|csrf", re.IGNORECASE
)


def _redact_url(url: str) -> str:
    """Hide the password in `scheme://user:password@host/...`."""
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _redact_url(value) if "://" in value else value
    if depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, depth + 1) for v in value)
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace values of secret-looking fields (passwords, tokens, cookies, auth) with ***.

    Nested mappings (headers, form data) are redacted too, and passwords inside URLs.
    """
    for key, value in event_dict.items():
        if key == "event":
            continue
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | Mapping | list | tuple):
            event_dict[key] = _redact(value)
    return event_dict


class TerminalWriter:
    """Writes log lines to a stream, keeping an optional status line redrawn below them."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.status = ""

    def write_line(self, line: str) -> None:
        """Print one log line above the status line."""
        if self.status:
            self.stream.write(f"\r\x1b[K{line}\n{self.status}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def set_status(self, status: str) -> None:
        """Redraw the status line in place ("" clears it)."""
        self.status = status
        self.stream.write(f"\r\x1b[K{status}")
        self.stream.flush()


class _WriterLogger:
    """The structlog logger behind every bound logger: one rendered line per call."""

    def __init__(self, writer: TerminalWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write_line(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def use_console(fmt: str, stream: TextIO) -> bool:
    """Whether to render for a human: LOG_FORMAT "console", or "auto" on a terminal."""
    if fmt == "auto":
        return stream.isatty()
    return fmt == "console"


def configure(
    level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None
) -> TerminalWriter:
    """Configure structlog for a crawl and return the writer that owns the output stream."""
    stream = stream if stream is not None else sys.stderr
    writer = TerminalWriter(stream)
    console = use_console(fmt, stream)
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    else:
        processors += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_args: _WriterLogger(writer),
        cache_logger_on_first_use=False,
    )
    return writer
