"""Does an RTSP URL answer?  An RTSP ``DESCRIBE`` of the URL, answering a 401 with the
given credentials (Digest preferred, RFC 2617 MD5, else Basic), bounded in time: the
server must answer ``200`` with a video track in its SDP.

Used by ``argus cameras discover`` to mark each stream URL a camera announces verified or
not, with the reason in words.  Credentials are sent only when the server asks for them,
and never appear in a result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from ingest.redact import escape_controls


class Login(Protocol):
    """A user name and password to answer a 401 with."""

    @property
    def user(self) -> str: ...

    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class _UrlLogin:
    user: str
    password: str = field(repr=False)


def _content_length(value: str | None) -> int:
    try:
        return max(0, int(value)) if value is not None else 0
    except ValueError:
        return 0


@dataclass(frozen=True)
class StreamCheck:
    """What the RTSP ``DESCRIBE`` of a stream URL said.

    Attributes:
        verified: The server answered 200 with a video track in its SDP.
        detail: In words: ``"RTSP 200, video H264"``, ``"RTSP 404 Not Found"``, ...
    """

    verified: bool
    detail: str


class _RtspError(Exception):
    pass


_AUTH_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_MAX_RTSP_HEAD = 16_384
_MAX_RTSP_BODY = 65_536


async def _rtsp_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    url: str,
    cseq: int,
    authorization: str | None,
) -> tuple[int, str, list[tuple[str, str]], bytes]:
    lines = [
        f"DESCRIBE {url} RTSP/1.0",
        f"CSeq: {cseq}",
        "Accept: application/sdp",
        "User-Agent: argus-discover",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(4096)
        if not chunk:
            raise _RtspError("the RTSP server closed the connection without answering")
        head += chunk
        if len(head) > _MAX_RTSP_HEAD:
            raise _RtspError("the RTSP answer's header is too long")
    head, _, body = head.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"RTSP/\d\.\d\s+(\d{3})\s*(.*)", status_line)
    if m is None:
        raise _RtspError(f"not an RTSP answer: {escape_controls(status_line[:60])!r}")
    headers = [
        (k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in header_lines)
    ]
    length = min(_content_length(dict(headers).get("content-length")), _MAX_RTSP_BODY)
    while len(body) < length:
        chunk = await reader.read(length - len(body))
        if not chunk:
            break
        body += chunk
    return int(m.group(1)), m.group(2).strip(), headers, body[:length]


def rtsp_authorization(
    challenges: Sequence[str], user: str, password: str, method: str, uri: str
) -> str | None:
    """The ``Authorization`` header answering an RTSP 401's ``WWW-Authenticate`` challenges
    (Digest preferred, RFC 2617 MD5, with ``qop=auth`` when offered; else Basic), or None."""
    digest = next((c for c in challenges if c.lower().startswith("digest")), None)
    if digest is not None:
        params = {k.lower(): (q if q else u) for k, q, u in _AUTH_PARAM_RE.findall(digest[6:])}
        realm, nonce = params.get("realm", ""), params.get("nonce", "")

        def md5(s: str) -> str:
            return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()

        ha1 = md5(f"{user}:{realm}:{password}")
        ha2 = md5(f"{method}:{uri}")
        fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
            cnonce = hashlib.sha1(f"{time.time()}:{nonce}".encode()).hexdigest()[:16]
            response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
        else:
            response = md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in params:
            fields.append(f'opaque="{params["opaque"]}"')
        return "Digest " + ", ".join(fields)
    if any(c.lower().startswith("basic") for c in challenges):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


def _sdp_video(sdp: bytes) -> str | None:
    """The video codec an SDP announces ("H264"), "" for video of unknown codec, None for
    no video."""
    text = sdp.decode("utf-8", "replace")
    m = re.search(r"^m=video\s+\d+\s+\S+\s+(\d+)", text, re.MULTILINE)
    if m is None:
        return None
    rtpmap = re.search(rf"^a=rtpmap:{m.group(1)}\s+([\w.-]+)/", text, re.MULTILINE)
    return rtpmap.group(1) if rtpmap else ""


async def _rtsp_describe(host: str, port: int, url: str, creds: Login | None) -> StreamCheck:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        status, reason, headers, body = await _rtsp_request(reader, writer, url, 1, None)
        if status == 401:
            if creds is None:
                return StreamCheck(False, "RTSP 401: the stream wants credentials (give --user)")
            challenges = [v for k, v in headers if k == "www-authenticate"]
            auth = rtsp_authorization(challenges, creds.user, creds.password, "DESCRIBE", url)
            if auth is None:
                return StreamCheck(False, "RTSP 401 with an authentication scheme we do not know")
            if dict(headers).get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            status, reason, headers, body = await _rtsp_request(reader, writer, url, 2, auth)
            if status == 401:
                return StreamCheck(
                    False, f"RTSP 401: the stream refused user {creds.user!r} (wrong password?)"
                )
        if status != 200:
            return StreamCheck(False, f"RTSP {status} {escape_controls(reason)}".strip())
        codec = _sdp_video(body)
        if codec is None:
            return StreamCheck(False, "RTSP 200 but the stream announces no video track")
        return StreamCheck(True, f"RTSP 200, video {codec}".strip())
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def check_rtsp(
    url: str, credentials: Login | None = None, timeout_s: float = 3.0
) -> StreamCheck:
    """Check that an RTSP URL answers a ``DESCRIBE`` with a video track, within ``timeout_s``.

    Credentials in the URL (``rtsp://user:pass@host/...``) are used first, else
    ``credentials``; they are never sent unless the server asks (401), and never reported.
    Never raises for a network or protocol failure: the reason is in the result.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 554
    except ValueError:
        return StreamCheck(False, "not a valid URL")
    if parts.scheme.lower() != "rtsp":
        return StreamCheck(False, f"not checked: a {parts.scheme or 'schemeless'} URL, not rtsp")
    if not host:
        return StreamCheck(False, "the URL names no host")
    creds: Login | None = credentials
    if parts.username is not None:
        creds = _UrlLogin(unquote(parts.username), unquote(parts.password or ""))
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    try:
        return await asyncio.wait_for(_rtsp_describe(host, port, clean, creds), timeout_s)
    except TimeoutError:
        return StreamCheck(False, f"no RTSP answer from {netloc} within {timeout_s:g} s")
    except _RtspError as e:
        return StreamCheck(False, str(e))
    except ConnectionRefusedError:
        return StreamCheck(False, f"nothing listens at {host}:{port} (connection refused)")
    except OSError as e:
        return StreamCheck(False, f"cannot reach {host}:{port}: {e.strerror or e}")
