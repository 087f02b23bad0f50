"""Remove credentials from URLs and from free text (error messages) before logging them."""

from __future__ import annotations

import re

# scheme://user:password@host  ->  scheme://user:***@host.  People type passwords raw,
# with '/' and '@' in them (rtsp://admin:p/ss@w0rd@10.0.0.5/s), so the password runs to the
# LAST '@' before whitespace or a quote; over-redacting a path that holds '@' beats leaking.
_USERINFO_RE = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*):[^\s'\"]*@")
# ?password=...&token=...  ->  ?password=***&token=***  (any key containing "pass" too)
_QUERY_SECRET_RE = re.compile(
    r"(?P<pre>[?&;](?:[\w.-]*pass[\w.-]*|pw|pwd|token|access_token|auth|authorization|key|"
    r"apikey|api_key|secret|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token)=)"
    r"[^&\s#'\"]*",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Return ``text`` with every URL password and secret query parameter replaced by ``***``.

    Args:
        text: Any text, e.g. an FFmpeg error message that may quote the URL.

    Returns:
        The same text with ``scheme://user:secret@`` turned into ``scheme://user:***@`` and
        ``password=``/``token=``/``key=``... query values turned into ``***``.  Over-redacts
        rather than leaks.
    """
    text = _USERINFO_RE.sub(r"\g<pre>:***@", text)
    return _QUERY_SECRET_RE.sub(r"\g<pre>***", text)


_USERINFO_VALUE_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*:(?P<value>[^\s'\"]*)@")


def secrets_in(text: str) -> list[str]:
    """The secret values ``text`` holds: what :func:`redact_text` would hide (URL passwords,
    secret query values), in order; empty values left out."""
    found = [m.group("value") for m in _USERINFO_VALUE_RE.finditer(text)]
    for m in _QUERY_SECRET_RE.finditer(text):
        value = text[m.end("pre") : m.end()]
        found.append(value)
    return [v for v in found if v]


def redact_url(url: str) -> str:
    """Return ``url`` safe to log: the password (and secret query values) replaced by ``***``.

    Examples:
        ``rtsp://admin:hunter2@10.0.0.5:554/stream1`` -> ``rtsp://admin:***@10.0.0.5:554/stream1``;
        ``http://cam/video.mjpg?user=a&pwd=b`` -> ``http://cam/video.mjpg?user=a&pwd=***``.
        File paths and URLs without credentials come back unchanged.
    """
    return redact_text(url)


_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def escape_controls(text: str) -> str:
    """Return ``text`` safe to write on one line of a text log or terminal.

    Control characters (C0, DEL, C1: escape sequences, newlines, carriage returns), the
    Unicode line separators and unpaired surrogates are written as Python escapes
    (``"\\x1b"``, ``"\\u2028"``, ``"\\ud800"``); everything else, Hangul included, is kept.

    Examples:
        ``"/alerts/x\\x1b[31m"`` -> ``"/alerts/x\\\\x1b[31m"`` (a visible backslash escape).
    """
    return _CONTROL_RE.sub(_escape_one, text)


def _escape_one(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
