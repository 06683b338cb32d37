"""structlog set-up, done once per crawl: readable on a terminal, JSON lines under cron.

Shared processors: merge contextvars, add the level, add a UTC timestamp, redact secrets.
Then the renderer: `ConsoleRenderer` when stderr is a terminal, `JSONRenderer` otherwise, or
whatever LOG_FORMAT says. Reads LOG_LEVEL and LOG_FORMAT.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Collection, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
# Matched against a field, header or query-parameter name with "-" read as "_", as whole
# "_"-separated words: "X-Api-Key", "access_token" and "otp" are secret; "author",
# "keyword", "monkey" and "pinned" are not. "key" is secret when it names a kind of key
# ("api_key", "access_key"); a bare "key" is one only as a URL parameter (`?key=`, the usual
# API-key parameter), since as a field it is an identifier (the rate limiter's slot key).
# Not "code": it names status, exit, country and product codes, and an OAuth code is spent
# by the time a log could show it.
_SECRET_WORDS = (
    r"pass|password|passwd|pwd|passcode|passphrase|secret|token|auth|authorization|cookie"
    r"|cookies|set_cookie|sessionid|session_id|(?<=_)key|apikey|csrf|csrftoken|credential"
    r"|credentials|signature|sig|otp|totp|hotp|pin"
)
_SECRET_NAME = re.compile(rf"(^|_)({_SECRET_WORDS})($|_)", re.IGNORECASE)
# In free text (messages, tracebacks): "user:password@" in URLs, and secret query parameters.
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")
# A query parameter's name in free text, judged by `is_secret`. Names are found one by one
# (never consumed by an earlier parameter's value, so `?next=https://b/?token=x` hides the
# token); a secret's value runs to the next "&", "#", space or quote, less the punctuation that
# ends the text or a clause ("...?key=abc: Server disconnected"), which is kept.
_TEXT_PARAM = re.compile(r"(?<=[?&;])([\w.\[\]-]+)=")
_PARAM_VALUE = re.compile(r"[^&#\s'\"]*")
_TRAILING = ":;,.!?)]>"


def is_secret(name: str) -> bool:
    """Whether a field, header or parameter name looks like it holds a secret."""
    return _SECRET_NAME.search(name.replace("-", "_")) is not None


def _scrub_params(text: str) -> str:
    """Hide the values of secret query parameters; linear in the text, whatever it holds."""
    parts: list[str] = []
    done = 0  # text before this is copied (or hidden) already
    for match in _TEXT_PARAM.finditer(text):
        name, start = match.group(1), match.end()
        if start <= done or not (is_secret(name) or name.lower() == "key"):
            continue
        value = _PARAM_VALUE.match(text, start)
        end = value.end() if value is not None else start
        kept = len(text[start:end].rstrip(_TRAILING))
        parts.append(text[done:start])
        parts.append(REDACTED)
        done = start + kept
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def scrub_text(text: str) -> str:
    """Hide URL passwords and secret query parameters inside free text."""
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    if "=" in text:
        text = _scrub_params(text)
    return text


def hide_userinfo(url: str) -> str:
    """`url` with its credentials hidden: `http://user:***@host:3128`, or `http://***@host`
    when the userinfo is a lone name (often a token). For proxy URLs, which carry them.

    Unlike `scrub_text` it reads everything before the last "@" as the userinfo, so a
    password with characters a URL cannot hold unescaped ("/", "#", spaces) stays hidden too.
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url if "@" not in url else REDACTED
    user, colon, _password = userinfo.partition(":")
    plain = colon and user and not any(char in user for char in "/?# \t")
    return f"{scheme}://{user}:{REDACTED}@{host}" if plain else f"{scheme}://{REDACTED}@{host}"


# Names whose numbers are secrets too (a numeric PIN or password); other secret-looking
# names holding a number hold a count ("cookies": 3, "cookies_saved": 2), which is not secret.
_CREDENTIAL_NAME = re.compile(
    r"(^|_)(pass|password|passwd|pwd|passcode|passphrase|secret|private_key|api_key|apikey"
    r"|otp|totp|hotp|pin)($|_)",
    re.IGNORECASE,
)


def error_line(error: BaseException) -> str:
    """What went wrong, redacted, on one line: scrapekit's errors read as sentences, others
    get their type in front."""
    from scrapekit.exceptions import ScrapekitError

    text = " ".join(str(error).split())
    if not isinstance(error, ScrapekitError) or not text:
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return scrub_text(text)


_MAX_DEPTH = 5


def _redact(value: Any, depth: int = 0, *, hide: bool = False, name: str = "") -> Any:
    """`value` with its secrets hidden: scrubbed text, and under a secret-looking field name
    (`hide`, set by the name `name` or an enclosing one) every text hidden, counts kept.

    A secret-named group of statistics ("cookie_jar": {"loaded": 3}) thus shows its counts.
    Containers come back as dicts and lists (plain tuples stay tuples): JSON-ready, whatever
    odd container came in (a namedtuple, a set, a deque).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return REDACTED if hide else scrub_text(value)
    if isinstance(value, int | float):
        return REDACTED if hide and _CREDENTIAL_NAME.search(name.replace("-", "_")) else value
    if depth >= _MAX_DEPTH or isinstance(value, bytes | bytearray):
        return REDACTED if hide else value
    if isinstance(value, Mapping):
        redacted: dict[Any, Any] = {}
        for key, item in value.items():
            secret = hide or (isinstance(key, str) and is_secret(key))
            # Numbers are judged by their own field's name, texts by any enclosing one.
            redacted[key] = _redact(item, depth + 1, hide=secret, name=str(key))
        return redacted
    if isinstance(value, Collection):  # not any iterable: a generator or a file is not data
        items = [_redact(item, depth + 1, hide=hide, name=name) for item in value]
        return tuple(items) if type(value) is tuple else items
    return REDACTED if hide else value


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fields` with secrets hidden, as the log shows them (for STATS_FILE, error lines)."""
    return dict(_redact(fields))


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace values of secret-looking fields (passwords, tokens, cookies, auth) with ***.

    Nested mappings (headers, form data) are redacted too, and in any text (messages,
    formatted tracebacks) URL passwords and secret query parameters are hidden. Only values
    are hidden: a secret-looking name holding a count (`cookies_saved`, or `cookie_jar`
    holding `{"loaded": 3}`) keeps its numbers.
    """
    for key, value in event_dict.items():
        if key == "event":
            continue
        event_dict[key] = _redact(value, hide=is_secret(key), name=key)
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
    # Tracebacks are formatted before redaction, so secrets in them are scrubbed too.
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    else:
        processors.append(structlog.processors.JSONRenderer(default=str, ensure_ascii=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_args: _WriterLogger(writer),
        cache_logger_on_first_use=False,
    )
    return writer
