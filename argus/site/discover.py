"""Find the ONVIF cameras on the local network and say what each one streams.

Three steps, each bounded in time:

1. **WS-Discovery** (PyPI ``wsdiscovery``): one SOAP-over-UDP ``Probe`` for
   ``dn:NetworkVideoTransmitter`` multicast to 239.255.255.250:3702 (on every interface, or on
   the one whose address is ``interface``); every camera answers with a ``ProbeMatch`` holding
   its endpoint id, its scopes (maker and model, in words the maker chose) and ``XAddrs``, the
   URL of its ONVIF device service.
2. **ONVIF SOAP** (PyPI ``onvif-zeep-async``, which ships the ONVIF WSDLs, so nothing is
   fetched from the internet): the camera's clock (``GetSystemDateAndTime``, unauthenticated,
   so that a camera whose clock is off still accepts our WS-Security timestamps),
   ``GetDeviceInformation`` (manufacturer, model, firmware, serial), the media service's
   address (``GetServices``, else ``GetCapabilities``), ``GetProfiles`` (name, encoding,
   resolution, frame rate) and ``GetStreamUri`` (RTSP, unicast) for each profile.
   Credentials go as a WS-Security UsernameToken with a password *digest*; the password itself
   never crosses the network in clear, and never reaches a log, an error or the output.
3. **RTSP check** (:func:`ingest.rtsp_check.check_rtsp`): an RTSP ``DESCRIBE`` of each
   stream URL (answering a 401 with the same credentials, digest or basic), bounded by
   ``rtsp_timeout_s``. A URL that does not answer ``200`` with a video track in its SDP is
   reported, marked unverified, with the reason.

The output (a table, JSON) is :mod:`argus.site.discover_report`'s.

A camera that fails a step is reported with what failed, in words (``Camera.problem`` is one of
:data:`PROBLEMS`); it never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from ingest.redact import escape_controls, redact_text, redact_url
from ingest.rtsp_check import StreamCheck, check_rtsp

log = logging.getLogger(__name__)

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
_NS_NETWORK = "http://www.onvif.org/ver10/network/wsdl"
_NS_DEVICE = "http://www.onvif.org/ver10/device/wsdl"
_NS_MEDIA = "http://www.onvif.org/ver10/media/wsdl"
_ONVIF_SCOPE = "onvif://www.onvif.org/"

Problem = Literal["not_onvif", "not_authorized", "unreachable", "timeout", "onvif_error"]
#: What ``Camera.problem`` may say: the device is not an ONVIF SOAP service (``not_onvif``);
#: it refused the credentials, or wants some (``not_authorized``); it could not be reached
#: (``unreachable``) or did not answer in time (``timeout``); it answered with an ONVIF fault
#: or an answer we could not use (``onvif_error``).
PROBLEMS: tuple[Problem, ...] = (
    "not_onvif",
    "not_authorized",
    "unreachable",
    "timeout",
    "onvif_error",
)

NO_CAMERAS_HINT = (
    "no ONVIF camera answered. Check that this machine is on the cameras' network (same "
    "subnet or VLAN: WS-Discovery is link-local multicast, routers do not pass it), that no "
    "firewall drops UDP 3702 (the probe goes to 239.255.255.250:3702, the answers come back "
    "as unicast UDP), that the cameras have ONVIF and discovery enabled (often off by "
    "default), and with several network interfaces, choose the cameras' one with "
    "--interface IP; a longer --timeout helps slow cameras."
)


class DiscoveryError(Exception):
    """Discovery could not run at all: a bad ``interface`` or no usable UDP socket."""


@dataclass(frozen=True)
class Credentials:
    """An ONVIF user and password; the password is left out of ``repr`` and never printed."""

    user: str
    password: str = field(repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with URL passwords (:func:`ingest.redact.redact_text`) and any literal
        occurrence of this password replaced by ``***``.

        The literal one only for passwords of 4 characters or more: a 1-character password
        would turn every "p" of the text into ``***`` and say which letter it is.
        """
        text = redact_text(text)
        return text.replace(self.password, "***") if len(self.password) >= 4 else text


def _scrub(text: str, credentials: Credentials | None) -> str:
    """``text`` safe to show: no password, no terminal control characters (a camera's fault
    text is the camera's to choose)."""
    text = escape_controls(text)
    return credentials.scrub(text) if credentials is not None else redact_text(text)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ProbeMatch:
    """One device's answer to the WS-Discovery probe.

    Attributes:
        endpoint: Its endpoint reference, stable across reboots (``urn:uuid:...``).
        xaddrs: Its device-service URLs, as announced.
        types: Its WS-Discovery types as ``{namespace}LocalName``.
        scopes: Its scopes (``onvif://www.onvif.org/name/ACME`` ...).
    """

    endpoint: str
    xaddrs: tuple[str, ...]
    types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    @property
    def xaddr(self) -> str | None:
        """The device-service URL to use: the first http(s) one with an IPv4 host, else the
        first http(s) one."""
        http = [x for x in self.xaddrs if urlsplit(x).scheme.lower() in ("http", "https")]
        for x in http:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(urlsplit(x).hostname or "").version == 4:
                    return x
        return http[0] if http else None

    @property
    def address(self) -> str:
        """The host of :attr:`xaddr` (the camera's IP address, as it announced it)."""
        x = self.xaddr or (self.xaddrs[0] if self.xaddrs else "")
        try:
            return urlsplit(x).hostname or "?"
        except ValueError:
            return "?"

    def scope(self, kind: str) -> str | None:
        """The value of the ONVIF scope ``onvif://www.onvif.org/KIND/VALUE``, unquoted."""
        prefix = f"{_ONVIF_SCOPE}{kind}/"
        for s in self.scopes:
            if s.lower().startswith(prefix.lower()):
                return unquote(s[len(prefix) :]).replace("_", " ") or None
        return None


@dataclass(frozen=True)
class MediaProfile:
    """One media profile of a camera.

    Attributes:
        token: The profile's ONVIF token (what ``GetStreamUri`` takes).
        name: Its name.
        encoding: Video encoding (``H264``, ``H265``, ``JPEG``, ...); None if not reported.
        width, height: Resolution in pixels; None if not reported.
        fps: Frame-rate limit in frames per second; None if not reported.
        stream_url: Its RTSP URL with any password in it redacted; None if not obtained.
        stream: The RTSP check; None when not checked.
        error: Why there is no ``stream_url`` (GetStreamUri failed), else None.
    """

    token: str
    name: str
    encoding: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    stream_url: str | None = None
    stream: StreamCheck | None = None
    error: str | None = None


@dataclass(frozen=True)
class Camera:
    """One discovered device and what it said over ONVIF.

    Attributes:
        endpoint: Its WS-Discovery endpoint id.
        address: Its IP address (from its announced service URL).
        xaddr: Its ONVIF device-service URL, or None if it announced none.
        scope_name, scope_hardware: Maker/name and model from its discovery scopes (unverified).
        manufacturer, model, firmware, serial: From ``GetDeviceInformation``; None if not read.
        profiles: Its media profiles, in the camera's order.
        problem: None when every ONVIF step worked, else one of :data:`PROBLEMS`.
        error: The problem in words (never holding the password), else None.
        clock_offset_s: The camera's clock minus ours, seconds; None if not read.
    """

    endpoint: str
    address: str
    xaddr: str | None
    scope_name: str | None = None
    scope_hardware: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    profiles: tuple[MediaProfile, ...] = ()
    problem: Problem | None = None
    error: str | None = None
    clock_offset_s: float | None = None

    @property
    def ok(self) -> bool:
        """Every ONVIF step worked and every stream URL was obtained and verified."""
        return self.problem is None and all(
            p.error is None and p.stream is not None and p.stream.verified for p in self.profiles
        )


@dataclass(frozen=True)
class DiscoveryResult:
    """What a discovery found.

    Attributes:
        cameras: The devices that answered, ordered by address.
        interface: The local address the probe went out of; None for every interface.
        timeout_s: How long the probe waited for answers, seconds.
        elapsed_s: How long the whole discovery took, seconds.
    """

    cameras: tuple[Camera, ...]
    interface: str | None
    timeout_s: float
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """At least one camera found, and every one fully described with verified streams."""
        return bool(self.cameras) and all(c.ok for c in self.cameras)


# --------------------------------------------------------------------------- WS-Discovery
def _qname_text(q: Any) -> str:
    ns, local = q.getNamespace(), q.getLocalname()
    return f"{{{ns}}}{local}" if ns else str(local)


def _scope_text(s: Any) -> str:
    return str(s.getValue()) if hasattr(s, "getValue") else str(s)


def match_from_service(service: Any) -> ProbeMatch:
    """A :class:`ProbeMatch` from a ``wsdiscovery`` ``Service`` or ``ProbeResolveMatch``."""
    return ProbeMatch(
        endpoint=str(service.getEPR()),
        xaddrs=tuple(str(x) for x in (service.getXAddrs() or ())),
        types=tuple(_qname_text(t) for t in (service.getTypes() or ())),
        scopes=tuple(_scope_text(s) for s in (service.getScopes() or ())),
    )


def parse_probe_matches(data: bytes) -> list[ProbeMatch]:
    """The matches of one WS-Discovery ``ProbeMatches`` datagram (empty if it is not one).

    Parsing is ``wsdiscovery``'s own; this is what :func:`probe` applies to each answer.
    """
    from wsdiscovery.message import parseSOAPMessage
    from wsdiscovery.namespaces import NS_ACTION_PROBE_MATCH

    try:
        env = parseSOAPMessage(data, "-")
    except Exception:  # a LAN device can send anything: malformed is not ours to raise
        log.debug("unparseable WS-Discovery datagram", exc_info=True)
        return []
    if env is None or env.getAction() != NS_ACTION_PROBE_MATCH:
        return []
    return [match_from_service(m) for m in env.getProbeResolveMatches()]


def _check_interface(interface: str | None) -> None:
    if interface is None:
        return
    try:
        ip = ipaddress.ip_address(interface)
    except ValueError:
        raise DiscoveryError(
            f"--interface wants this machine's IPv4 address on the cameras' network, "
            f"not {interface!r}"
        ) from None
    if ip.version != 4:
        raise DiscoveryError(f"--interface {interface}: only IPv4 is supported")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((interface, 0))
        except OSError as e:
            raise DiscoveryError(
                f"--interface {interface} is not an address of this machine ({e.strerror})"
            ) from e


def probe(timeout_s: float = 3.0, interface: str | None = None) -> list[ProbeMatch]:
    """Multicast one WS-Discovery probe for ONVIF cameras and collect the answers.

    Args:
        timeout_s: How long to wait for answers, seconds (> 0). Cameras answer within a
            random delay of up to 0.5 s (the spec's APP_MAX_DELAY); 2–4 s is usual.
        interface: This machine's IPv4 address on the cameras' network: the probe goes out
            of that interface only. None: out of every interface that has an address.

    Returns:
        One :class:`ProbeMatch` per device (by endpoint id), ordered by address.

    Raises:
        DiscoveryError: ``interface`` is not an address of this machine, or the UDP sockets
            could not be opened.
    """
    if not timeout_s > 0:
        raise DiscoveryError(f"--timeout must be > 0 seconds, not {timeout_s}")
    _check_interface(interface)
    from wsdiscovery import QName
    from wsdiscovery.discovery import ThreadedWSDiscovery

    class _Discovery(ThreadedWSDiscovery):  # type: ignore[misc]  # untyped library
        """Sends the probe from ``interface`` only, when one is given: the library's hooks
        for local addresses appearing and disappearing decide which ones it uses."""

        def _networkAddressAdded(self, addr: Any) -> None:  # noqa: N802 (library's name)
            if interface is None or str(addr) == interface:
                super()._networkAddressAdded(addr)

        def _networkAddressRemoved(self, addr: Any) -> None:  # noqa: N802
            if interface is None or str(addr) == interface:
                super()._networkAddressRemoved(addr)

    wsd = _Discovery()
    try:
        wsd.start()
    except OSError as e:
        with contextlib.suppress(Exception):
            wsd.stop()
        raise DiscoveryError(
            f"cannot open the WS-Discovery sockets (UDP {WSD_PORT}): {e.strerror or e}"
        ) from e
    try:
        services = wsd.searchServices(
            types=[QName(_NS_NETWORK, "NetworkVideoTransmitter", "dn")], timeout=timeout_s
        )
    finally:
        wsd.stop()
    matches = {m.endpoint: m for m in (match_from_service(s) for s in services)}
    return sorted(matches.values(), key=lambda m: _address_key(m.address))


def _address_key(address: str) -> tuple[int, Any]:
    try:
        return (0, ipaddress.ip_address(address))
    except ValueError:
        return (1, address)


# --------------------------------------------------------------------------- ONVIF
@dataclass(frozen=True)
class _Onvif:
    service: Any  # onvif.ONVIFService
    fault: type[BaseException]  # zeep.exceptions.Fault
    transport_error: type[BaseException]  # zeep.exceptions.TransportError
    wsdl_dir: Path
    definitions: dict[str, dict[str, str]]


_ONVIF: _Onvif | None = None
_ONVIF_LOCK = threading.Lock()


def _onvif() -> _Onvif:
    """Import onvif-zeep-async once, undoing its import-time ``logging.basicConfig``.

    ``onvif.client`` configures the root logger when imported (an INFO handler on stderr);
    that is the application's to decide, so the root logger's handlers and level are put
    back as they were.
    """
    global _ONVIF
    with _ONVIF_LOCK:
        if _ONVIF is None:
            root = logging.getLogger()
            handlers, level = list(root.handlers), root.level
            try:
                import onvif
                import zeep.exceptions
                from onvif.definition import SERVICES
            finally:
                for h in list(root.handlers):
                    if h not in handlers:
                        root.removeHandler(h)
                root.setLevel(level)
            _ONVIF = _Onvif(
                service=onvif.ONVIFService,
                fault=zeep.exceptions.Fault,
                transport_error=zeep.exceptions.TransportError,
                wsdl_dir=Path(onvif.__file__).parent / "wsdl",
                definitions=SERVICES,
            )
        return _ONVIF


class _StepFailedError(Exception):
    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem, self.message = problem, message


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _local(q: Any) -> str:
    text = str(getattr(q, "localname", None) or getattr(q, "text", None) or q)
    return text.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _classify(
    exc: BaseException, what: str, url: str, credentials: Credentials | None
) -> _StepFailedError:
    """Turn what the SOAP stack raised while doing ``what`` at ``url`` into words."""
    o = _onvif()
    chain = list(_causes(exc))
    for e in chain:  # what the camera said outranks how the connection went
        if isinstance(e, o.fault):
            subcodes = [_local(s) for s in (getattr(e, "subcodes", None) or ())]
            message = str(getattr(e, "message", "") or e)
            if "NotAuthorized" in subcodes or "not authori" in message.lower():
                return _auth_failed(what, credentials, "ONVIF NotAuthorized")
            if getattr(e, "code", None) is None and not subcodes:
                # zeep's "Unknown fault": the answer was XML (an HTML error page parses)
                # but held no SOAP fault, so whatever answered is not an ONVIF service.
                return _StepFailedError(
                    "not_onvif",
                    f"answers WS-Discovery but not ONVIF SOAP: {what} at {url} got an answer "
                    "that is not SOAP",
                )
            detail = f"{message} ({', '.join(subcodes)})" if subcodes else message
            return _StepFailedError(
                "onvif_error", f"{what}: the camera answered with a fault: {detail}"
            )
        if isinstance(e, o.transport_error):
            status = int(getattr(e, "status_code", 0) or 0)
            if status in (401, 403):
                return _auth_failed(what, credentials, f"HTTP {status}")
            got = f"got HTTP {status}" if status else f"failed: {e}"
            return _StepFailedError(
                "not_onvif", f"answers WS-Discovery but not ONVIF SOAP: {what} at {url} {got}"
            )
        if type(e).__name__ in ("XMLSyntaxError", "XMLParseError", "ParseError"):
            return _StepFailedError(
                "not_onvif",
                f"answers WS-Discovery but not ONVIF SOAP: {what} at {url} got no SOAP answer",
            )
    for e in chain:
        if isinstance(e, TimeoutError):
            return _StepFailedError("timeout", f"{what}: no answer from {url} in time")
        if isinstance(e, ConnectionRefusedError):
            return _StepFailedError(
                "unreachable",
                f"answers WS-Discovery but nothing listens at {url} (connection refused)",
            )
    for e in chain:
        if isinstance(e, OSError) and (e.strerror or e.errno):
            return _StepFailedError("unreachable", f"{what}: cannot reach {url}: {e.strerror or e}")
    name = type(exc).__name__
    return _StepFailedError("onvif_error", f"{what} at {url} failed: {name}: {exc}")


def _auth_failed(what: str, credentials: Credentials | None, how: str) -> _StepFailedError:
    if credentials is None:
        return _StepFailedError(
            "not_authorized",
            f"{what}: the camera wants credentials ({how}); give --user and a password",
        )
    return _StepFailedError(
        "not_authorized",
        f"{what}: the camera refused user {credentials.user!r}: wrong user or password ({how})",
    )


def _text(v: Any) -> str | None:
    if v is None:
        return None
    s = escape_controls(str(getattr(v, "_value_1", None) or v).strip())
    return s or None


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def _clock_offset(answer: Any) -> dt.timedelta | None:
    utc = _get(answer, "UTCDateTime")
    try:
        cam = dt.datetime(
            int(_get(utc, "Date", "Year")),
            int(_get(utc, "Date", "Month")),
            int(_get(utc, "Date", "Day")),
            int(_get(utc, "Time", "Hour")),
            int(_get(utc, "Time", "Minute")),
            int(_get(utc, "Time", "Second")),
            tzinfo=dt.UTC,
        )
    except (TypeError, ValueError):
        return None
    return cam - dt.datetime.now(dt.UTC)


class _Session:
    """The ONVIF services of one camera, closed together."""

    def __init__(self, credentials: Credentials | None, read_timeout_s: float) -> None:
        self.credentials = credentials
        self.read_timeout = max(1, round(read_timeout_s))
        self.services: list[Any] = []

    async def service(self, kind: str, xaddr: str, dt_diff: dt.timedelta | None) -> Any:
        o = _onvif()
        d = o.definitions[kind]
        c = self.credentials
        svc = o.service(
            xaddr,
            c.user if c else None,
            c.password if c else None,
            str(o.wsdl_dir / d["wsdl"]),
            no_cache=True,
            dt_diff=dt_diff,
            binding_name=f"{{{d['ns']}}}{d['binding']}",
            read_timeout=self.read_timeout,
        )
        self.services.append(svc)
        await svc.setup()
        return svc

    async def call(self, svc: Any, op: str, what: str, params: Any = None) -> Any:
        """Call ``op`` with credentials if we have some (else unauthenticated)."""
        name = op if self.credentials is not None else f"authless_{op}"
        try:
            return await getattr(svc, name)(params)
        except Exception as e:
            raise _classify(e, what, svc.xaddr, self.credentials) from e

    async def close(self) -> None:
        for svc in self.services:
            with contextlib.suppress(Exception):
                await svc.close()


async def _media_xaddr(s: _Session, device: Any) -> str:
    try:
        services = await s.call(device, "GetServices", "GetServices", {"IncludeCapability": False})
        for entry in services or ():
            if _get(entry, "Namespace") == _NS_MEDIA and _get(entry, "XAddr"):
                return str(_get(entry, "XAddr"))
    except _StepFailedError as e:
        if e.problem in ("not_authorized", "timeout", "unreachable"):
            raise
        log.debug("GetServices failed (%s); trying GetCapabilities", e.message)
    caps = await s.call(device, "GetCapabilities", "GetCapabilities", {"Category": "Media"})
    xaddr = _get(caps, "Media", "XAddr")
    if not xaddr:
        raise _StepFailedError("onvif_error", "the camera announces no media service (ONVIF Media)")
    return str(xaddr)


def _profile_fields(p: Any) -> dict[str, Any]:
    vec = _get(p, "VideoEncoderConfiguration")
    fps = _get(vec, "RateControl", "FrameRateLimit")
    try:
        fps_value = float(fps) if fps is not None else None
    except (TypeError, ValueError):
        fps_value = None
    return {
        "token": _text(_get(p, "token")) or "",
        "name": _text(_get(p, "Name")) or _text(_get(p, "token")) or "",
        "encoding": _text(_get(vec, "Encoding")),
        "width": _int(_get(vec, "Resolution", "Width")),
        "height": _int(_get(vec, "Resolution", "Height")),
        "fps": fps_value,
    }


async def _describe(
    match: ProbeMatch,
    credentials: Credentials | None,
    timeout_s: float,
    rtsp_timeout_s: float | None,
) -> Camera:
    base = Camera(
        endpoint=match.endpoint,
        address=match.address,
        xaddr=match.xaddr,
        scope_name=match.scope("name"),
        scope_hardware=match.scope("hardware"),
    )
    if match.xaddr is None:
        return _with(
            base,
            problem="not_onvif",
            error="answers WS-Discovery but announces no HTTP service address (XAddrs)",
        )
    xaddr = match.xaddr
    s = _Session(credentials, timeout_s)
    facts: dict[str, Any] = {}
    try:
        device = await s.service("devicemgmt", xaddr, None)
        # Unauthenticated by the spec: tells an ONVIF device from anything else, and gives its
        # clock: WS-Security timestamps more than a few seconds off are refused as
        # NotAuthorized, and camera clocks are often wrong (no NTP on a closed CCTV network).
        dt_diff: dt.timedelta | None = None
        try:
            answer = await device.authless_GetSystemDateAndTime()
            dt_diff = _clock_offset(answer)
        except Exception as e:
            failed = _classify(e, "GetSystemDateAndTime", xaddr, credentials)
            if failed.problem != "onvif_error" and failed.problem != "not_authorized":
                raise failed from e
            log.debug("%s: clock not readable: %s", match.address, failed.message)
        if dt_diff is not None:
            facts["clock_offset_s"] = round(dt_diff.total_seconds(), 1)
            if abs(dt_diff.total_seconds()) > 2:
                device = await s.service("devicemgmt", xaddr, dt_diff)
        info = await s.call(device, "GetDeviceInformation", "GetDeviceInformation")
        facts |= {
            "manufacturer": _text(_get(info, "Manufacturer")),
            "model": _text(_get(info, "Model")),
            "firmware": _text(_get(info, "FirmwareVersion")),
            "serial": _text(_get(info, "SerialNumber")),
        }
        media = await s.service("media", await _media_xaddr(s, device), dt_diff)
        answer = await s.call(media, "GetProfiles", "GetProfiles")
        profiles = [_profile_fields(p) for p in (answer or ())]
        for p in profiles:
            try:
                uri = await s.call(
                    media,
                    "GetStreamUri",
                    f"GetStreamUri({p['token']})",
                    {
                        "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                        "ProfileToken": p["token"],
                    },
                )
                p["stream_url"] = str(_get(uri, "Uri") or "").strip() or None
                if p["stream_url"] is None:
                    p["error"] = "GetStreamUri gave no URI"
            except _StepFailedError as e:
                if e.problem in ("not_authorized", "timeout", "unreachable"):
                    raise
                p["error"] = _scrub(e.message, credentials)
    except _StepFailedError as e:
        message = e.message
        if e.problem == "not_authorized" and credentials and "clock_offset_s" not in facts:
            # Without its clock we could not correct our timestamps, and a camera refuses
            # a UsernameToken whose time is far from its own just as it refuses a bad password.
            message += "; or its clock is far off (it would not tell us its time)"
        return _with(base, problem=e.problem, error=_scrub(message, credentials), **facts)
    finally:
        await s.close()

    async def check(p: dict[str, Any]) -> MediaProfile:
        url = p.pop("stream_url", None)
        stream = None
        if url is not None and rtsp_timeout_s is not None:
            stream = await check_rtsp(url, credentials, rtsp_timeout_s)
        shown = _scrub(redact_url(escape_controls(url)), credentials) if url else None
        return MediaProfile(**p, stream_url=shown, stream=stream)

    checked = await asyncio.gather(*(check(p) for p in profiles))
    return _with(base, profiles=tuple(checked), **facts)


def _with(base: Camera, **changes: Any) -> Camera:
    return replace(base, **changes)


async def describe_camera(
    match: ProbeMatch,
    credentials: Credentials | None = None,
    timeout_s: float = 10.0,
    rtsp_timeout_s: float | None = 3.0,
) -> Camera:
    """Ask one discovered device, over ONVIF, what it is and what it streams.

    Args:
        match: Its answer to the probe.
        credentials: ONVIF user and password; None to ask without (most cameras refuse).
        timeout_s: The most the ONVIF questions may take together, seconds.
        rtsp_timeout_s: Bound of each stream URL's RTSP check, seconds; None: no check.

    Returns:
        The :class:`Camera`; a failure is in its ``problem`` and ``error``, never raised.
    """
    try:
        return await asyncio.wait_for(
            _describe(match, credentials, timeout_s, rtsp_timeout_s),
            timeout_s + (rtsp_timeout_s or 0.0) + 1.0,
        )
    except TimeoutError:
        return Camera(
            endpoint=match.endpoint,
            address=match.address,
            xaddr=match.xaddr,
            scope_name=match.scope("name"),
            scope_hardware=match.scope("hardware"),
            problem="timeout",
            error=f"the camera did not finish answering within {timeout_s:g} s",
        )
    except Exception as e:  # one odd camera must not take the others' results down
        log.debug("describing %s failed", match.address, exc_info=True)
        return Camera(
            endpoint=match.endpoint,
            address=match.address,
            xaddr=match.xaddr,
            problem="onvif_error",
            error=_scrub(f"unexpected {type(e).__name__}: {e}", credentials),
        )


def _run_to_end(make: Callable[[], Awaitable[list[Camera]]]) -> list[Camera]:
    """``asyncio.run`` of ``make()``; on a thread of its own when this thread already runs an
    event loop (a caller in async code, a notebook), where ``asyncio.run`` refuses."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(make))
    with ThreadPoolExecutor(1, thread_name_prefix="discover") as pool:
        return pool.submit(lambda: asyncio.run(_awaited(make))).result()


async def _awaited(make: Callable[[], Awaitable[list[Camera]]]) -> list[Camera]:
    return await make()


def discover(
    timeout_s: float = 3.0,
    interface: str | None = None,
    credentials: Credentials | None = None,
    camera_timeout_s: float = 10.0,
    rtsp_timeout_s: float | None = 3.0,
    probe_fn: Callable[[float, str | None], Sequence[ProbeMatch]] = probe,
) -> DiscoveryResult:
    """Find the ONVIF cameras (:func:`probe`) and describe each (:func:`describe_camera`),
    all cameras at once.

    Args:
        timeout_s: How long the probe waits for answers, seconds.
        interface: This machine's IPv4 address on the cameras' network; None: every one.
        credentials: ONVIF user and password for every camera; None to ask without.
        camera_timeout_s: Bound of one camera's ONVIF questions, seconds.
        rtsp_timeout_s: Bound of one stream URL's RTSP check, seconds; None: no check.
        probe_fn: The probe (tests give a fake one).

    Raises:
        DiscoveryError: The probe could not be sent (see :func:`probe`).
    """
    t0 = time.monotonic()
    matches = list(probe_fn(timeout_s, interface))
    log.info("%d device(s) answered the WS-Discovery probe", len(matches))

    async def all_cameras() -> list[Camera]:
        jobs: list[Awaitable[Camera]] = [
            describe_camera(m, credentials, camera_timeout_s, rtsp_timeout_s) for m in matches
        ]
        return list(await asyncio.gather(*jobs))

    cameras = _run_to_end(all_cameras) if matches else []
    return DiscoveryResult(
        cameras=tuple(cameras),
        interface=interface,
        timeout_s=timeout_s,
        elapsed_s=round(time.monotonic() - t0, 2),
    )
