"""Keeping credentials out of everything bananaflow writes.

Keys are registered once, when configuration is read; from then on ``redact`` replaces
them in any text (error messages, log records, URLs with ``?key=``), and ``Secret``
keeps them out of reprs. Registration is process-wide on purpose: a key read by one
module must be masked in a log line written by any other.

Text is redacted *before* it is shortened, never after: a key cut in half by a length limit
no longer matches and its first half would leak. ``excerpt`` is the one way to quote the
start of a body. As a second line, the first or last 8 or more characters of a registered key
(``PIECE``) are masked too, for an upstream that echoes a shortened key itself (``sk-abcd…``).
"""
from __future__ import annotations

import logging
import re
import threading

MASK = "***"
#: A key's first or last this many characters (or more) are masked (keys of ``_PIECES_FROM`` or more).
PIECE = 8
_PIECES_FROM = 12
_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
#: A URL's userinfo (``scheme://user:password@``, ``redis://:password@``): masked whole, the
#: user name included (``https://TOKEN@host`` carries the credential as the name).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#\"'<>@]*(?:@[^\s/?#\"'<>@]*)*@")
#: A query or fragment parameter and its value; the name decides whether the value is a credential.
_PARAM = re.compile(r"([?&;#])([^=&#;\s\"'<>]+)=([^&#;\s\"'<>]*)")
#: Words that make a parameter a credential, as the whole name, one of its ``-``/``_``/``.``
#: separated parts or its end (``password``, ``db_pass``, ``X-Amz-Signature``, ``apiKey``,
#: ``X-Amz-Security-Token``, ``sig`` of an Azure SAS, ``client_secret``).
_CREDENTIAL_WORDS = ("password", "passwd", "passphrase", "pass", "pwd", "token", "secret", "key", "apikey", "sig",
                     "signature", "credential", "credentials", "auth", "authorization", "session")
_CREDENTIAL_NAME = re.compile(r"(?i)(?:^|[-_.])(?:" + "|".join(_CREDENTIAL_WORDS) + r")(?:$|[-_.])|(?:"
                              + "|".join(_CREDENTIAL_WORDS) + r")$")

__all__ = [
    "MASK", "PIECE", "RedactingFilter", "Secret", "excerpt", "install_log_redaction", "mask_url", "redact",
    "register_secret",
]


def register_secret(value: str | None) -> None:
    """Remember a credential so ``redact`` masks it everywhere from now on."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        pieces = {  # the start or end of a key, as an upstream that shortens what it echoes leaves it
            piece
            for known in _known
            if len(known) >= _PIECES_FROM
            for n in range(PIECE, len(known))
            for piece in (known[:n], known[-n:])
        }
        alternatives = sorted(_known | pieces, key=len, reverse=True)  # whole keys first
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def redact(text: str) -> str:
    """Mask every registered credential and every credential-looking query parameter."""
    if not isinstance(text, str):
        text = str(text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return mask_url(text)


def mask_url(text: str) -> str:
    """``text`` (a URL, or any text with URLs in it) with every credential-bearing URL part
    masked: the userinfo (``redis://***@host``) and each password-like query or fragment
    parameter (``?password=***``, ``&X-Amz-Signature=***``). Host, path and the other
    parameters stay, so the URL still says where it points. The one way a URL is shown or
    stored: ``redact`` (errors, logs, doctor) calls it too."""
    if not isinstance(text, str):
        text = str(text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    return text


def _mask_param(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    if value and _CREDENTIAL_NAME.search(name):
        return f"{sep}{name}={MASK}"
    return match.group(0)


def excerpt(text: str | bytes, limit: int) -> str:
    """The first ``limit`` characters of ``text`` (bytes are decoded leniently), redacted
    *before* the cut: a key that straddles the limit is masked whole, not half kept."""
    if isinstance(text, bytes):
        text = text[: 4 * (limit + _window())].decode("utf-8", "replace")
    cleaned = redact(text[: limit + _window()])
    return cleaned if len(cleaned) <= limit else cleaned[: max(0, limit - 3)] + "..."


def _window() -> int:
    """How far past a cut a key (or a credential query value) may reach."""
    with _lock:
        longest = max((len(k) for k in _known), default=0)
    return max(longest, 512)


class Secret:
    """A credential that prints as ``***``. Call ``reveal()`` only where it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class RedactingFilter(logging.Filter):
    """Masks registered credentials in every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(logger_names: tuple[str, ...] = ("", "bananaflow", "prefect", "httpx", "httpcore")) -> None:
    """Attach the redacting filter to the named loggers and all their handlers."""
    flt = RedactingFilter()
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(flt)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
