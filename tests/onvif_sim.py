"""A small simulated ONVIF camera for the discovery tests (stdlib only).

Two parts, as a real camera has:

- a **WS-Discovery responder**: joins 239.255.255.250 on UDP 3702 on one interface and answers a
  ``Probe`` (for ``dn:NetworkVideoTransmitter``, ``tds:Device`` or any type) with a unicast
  ``ProbeMatches`` that carries its endpoint reference, scopes and device-service ``XAddrs``;
- an **HTTP SOAP 1.2 service** at ``/onvif/device_service`` and ``/onvif/media_service``:
  ``GetSystemDateAndTime`` (unauthenticated, as the ONVIF Core spec allows), ``GetServices``,
  ``GetCapabilities``, ``GetDeviceInformation``, ``GetProfiles`` and ``GetStreamUri``, each
  (but the clock) checked for a WS-Security ``UsernameToken`` with a password digest
  (``Base64(SHA-1(nonce + created + password))``, ``Created`` within 5 minutes of the camera's
  clock).  A missing or wrong token gets what cameras send: HTTP 400 with a SOAP fault
  ``env:Sender / ter:NotAuthorized``.

The media profiles' stream URIs point wherever ``--profile`` says: in the tests, at the real
GStreamer RTSP camera (``deploy/rtsp_server.py``).  ``--no-soap`` makes a device that answers
WS-Discovery but whose HTTP port is an ordinary web server (every request: 404, HTML), as a
printer or a half-configured NVR does.

Run as a script::

    ARGUS_SIM_PASSWORD=secret python tests/onvif_sim.py --address 10.1.2.2 --http-port 8080 \
        --user admin --password-env ARGUS_SIM_PASSWORD \
        --profile "main:H264:768x576:10:rtsp://10.1.2.2:8554/cam"

It prints ``READY http://ADDRESS:PORT/onvif/device_service`` once both parts listen, and
stops on SIGTERM/SIGINT.  The password comes from an environment variable, never argv.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.server
import logging
import os
import signal
import socket
import struct
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

log = logging.getLogger("onvif_sim")

MULTICAST_GROUP = "239.255.255.250"
WSD_PORT = 3702

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsd": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "dn": "http://www.onvif.org/ver10/network/wsdl",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
_PROBE_ACTION = NS["wsd"] + "/Probe"
_MATCH_ACTION = NS["wsd"] + "/ProbeMatches"
_ANONYMOUS = NS["wsa"] + "/role/anonymous"
_MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class SimProfile:
    """One media profile: its token doubles as its name."""

    token: str
    encoding: str
    width: int
    height: int
    fps: int
    stream_uri: str

    @classmethod
    def parse(cls, spec: str) -> SimProfile:
        """``NAME:ENCODING:WxH:FPS:URI`` (the URI may contain colons)."""
        try:
            name, enc, size, fps, uri = spec.split(":", 4)
            w, h = size.lower().split("x")
            return cls(name, enc, int(w), int(h), int(fps), uri)
        except ValueError as e:
            raise ValueError(f"bad --profile {spec!r}: want NAME:ENC:WxH:FPS:URI") from e


@dataclass
class SimConfig:
    address: str
    http_port: int
    user: str
    password: str
    profiles: list[SimProfile] = field(default_factory=list)
    manufacturer: str = "ArgusSim"
    model: str = "SimCam 1"
    firmware: str = "1.0.0"
    serial: str = "SIM-0001"
    hardware_id: str = "sim-hw-1"
    soap: bool = True
    clock_offset_s: float = 0.0
    endpoint: str = field(default_factory=lambda: uuid.uuid4().urn)

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def device_xaddr(self) -> str:
        return f"{self.base_url}/onvif/device_service"

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset_s)


# --------------------------------------------------------------------------- WS-Discovery
def probe_match_xml(cfg: SimConfig, relates_to: str) -> bytes:
    """The ``ProbeMatches`` a camera sends back for the probe whose MessageID is ``relates_to``."""
    scopes = " ".join(
        [
            "onvif://www.onvif.org/type/video_encoder",
            "onvif://www.onvif.org/Profile/Streaming",
            "onvif://www.onvif.org/name/" + cfg.manufacturer.replace(" ", "%20"),
            "onvif://www.onvif.org/hardware/" + cfg.model.replace(" ", "%20"),
            "onvif://www.onvif.org/location/site",
        ]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{NS["env"]}" xmlns:wsa="{NS["wsa"]}" xmlns:wsd="{NS["wsd"]}" '
        f'xmlns:dn="{NS["dn"]}" xmlns:tds="{NS["tds"]}">'
        "<env:Header>"
        f"<wsa:MessageID>{uuid.uuid4().urn}</wsa:MessageID>"
        f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>"
        f"<wsa:To>{_ANONYMOUS}</wsa:To>"
        f"<wsa:Action>{_MATCH_ACTION}</wsa:Action>"
        '<wsd:AppSequence InstanceId="1" MessageNumber="1"/>'
        "</env:Header>"
        "<env:Body><wsd:ProbeMatches><wsd:ProbeMatch>"
        f"<wsa:EndpointReference><wsa:Address>{cfg.endpoint}</wsa:Address></wsa:EndpointReference>"
        "<wsd:Types>dn:NetworkVideoTransmitter tds:Device</wsd:Types>"
        f"<wsd:Scopes>{escape(scopes)}</wsd:Scopes>"
        f"<wsd:XAddrs>{escape(cfg.device_xaddr)}</wsd:XAddrs>"
        "<wsd:MetadataVersion>1</wsd:MetadataVersion>"
        "</wsd:ProbeMatch></wsd:ProbeMatches></env:Body></env:Envelope>"
    ).encode()


def parse_probe(data: bytes) -> str | None:
    """The MessageID of a WS-Discovery ``Probe`` for a type a camera is, else None."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    action = root.findtext(".//wsa:Action", default="", namespaces=NS).strip()
    if action != _PROBE_ACTION:
        return None
    types = root.findtext(".//wsd:Probe/wsd:Types", default="", namespaces=NS).split()
    local_names = {t.rsplit(":", 1)[-1] for t in types}
    if local_names and not local_names & {"NetworkVideoTransmitter", "Device"}:
        return None
    message_id = root.findtext(".//wsa:MessageID", default="", namespaces=NS).strip()
    return message_id or None


class DiscoveryResponder(threading.Thread):
    """Answers WS-Discovery probes that arrive on ``cfg.address``'s interface."""

    def __init__(self, cfg: SimConfig) -> None:
        super().__init__(name="wsd-responder", daemon=True)
        self.cfg = cfg
        self._quit = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        # Several simulated devices may share one network namespace, as cameras share a LAN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((MULTICAST_GROUP, WSD_PORT))  # only the group's datagrams
        mreq = struct.pack("4s4s", socket.inet_aton(MULTICAST_GROUP), socket.inet_aton(cfg.address))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.settimeout(0.2)
        self.reply_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.reply_sock.bind((cfg.address, 0))
        self.probes_answered = 0

    def run(self) -> None:
        while not self._quit.is_set():
            try:
                data, sender = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            message_id = parse_probe(data)
            if message_id is None:
                continue
            self.reply_sock.sendto(probe_match_xml(self.cfg, message_id), sender)
            self.probes_answered += 1
            log.info("answered a probe from %s:%d", *sender)

    def stop(self) -> None:
        self._quit.set()
        self.join(2)
        self.sock.close()
        self.reply_sock.close()


# --------------------------------------------------------------------------- SOAP
class SoapFaultError(Exception):
    def __init__(self, http_status: int, code: str, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.http_status, self.code, self.subcode, self.reason = http_status, code, subcode, reason


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{NS["env"]}" xmlns:tds="{NS["tds"]}" xmlns:trt="{NS["trt"]}" '
        f'xmlns:tt="{NS["tt"]}" xmlns:ter="{NS["ter"]}">'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def _fault_xml(f: SoapFaultError) -> bytes:
    return _envelope(
        "<env:Fault>"
        f"<env:Code><env:Value>env:{f.code}</env:Value>"
        f"<env:Subcode><env:Value>ter:{f.subcode}</env:Value></env:Subcode></env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(f.reason)}</env:Text></env:Reason>'
        "</env:Fault>"
    )


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken Profile 1.0 digest: Base64(SHA-1(nonce + created + password))."""
    return base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    ).decode()


def check_auth(cfg: SimConfig, root: ET.Element) -> None:
    """Raise NotAuthorized unless the envelope carries a valid UsernameToken for ``cfg``."""
    denied = SoapFaultError(400, "Sender", "NotAuthorized", "Sender not Authorized")
    token = root.find(".//wsse:Security/wsse:UsernameToken", NS)
    if token is None:
        raise denied
    user = token.findtext("wsse:Username", default="", namespaces=NS)
    pw_el = token.find("wsse:Password", NS)
    nonce_b64 = token.findtext("wsse:Nonce", default="", namespaces=NS)
    created = token.findtext("wsu:Created", default="", namespaces=NS)
    if pw_el is None or not nonce_b64 or not created:
        raise denied
    if not (pw_el.get("Type") or "").endswith("#PasswordDigest"):
        raise denied  # plain-text passwords are not accepted over HTTP
    try:
        nonce = base64.b64decode(nonce_b64)
        when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise denied from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if abs(when - cfg.now()) > _MAX_CLOCK_SKEW:
        log.info("UsernameToken Created %s too far from the camera's clock", created)
        raise denied
    expected = password_digest(nonce, created, cfg.password)
    if not (
        hmac.compare_digest(user, cfg.user)
        and hmac.compare_digest((pw_el.text or "").strip(), expected)
    ):
        raise denied


def _date_time(cfg: SimConfig) -> str:
    now = cfg.now()
    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
        f"<tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}</tt:Year>"
        f"<tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


def _services(cfg: SimConfig) -> str:
    def one(ns: str, path: str) -> str:
        return (
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
            f"<tds:XAddr>{cfg.base_url}{path}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
        )

    return (
        "<tds:GetServicesResponse>"
        + one(NS["tds"], "/onvif/device_service")
        + one(NS["trt"], "/onvif/media_service")
        + "</tds:GetServicesResponse>"
    )


def _capabilities(cfg: SimConfig) -> str:
    return (
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        f"<tt:Device><tt:XAddr>{cfg.device_xaddr}</tt:XAddr></tt:Device>"
        f"<tt:Media><tt:XAddr>{cfg.base_url}/onvif/media_service</tt:XAddr>"
        "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
        "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
        "</tt:StreamingCapabilities></tt:Media>"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>"
    )


def _device_information(cfg: SimConfig) -> str:
    return (
        "<tds:GetDeviceInformationResponse>"
        f"<tds:Manufacturer>{escape(cfg.manufacturer)}</tds:Manufacturer>"
        f"<tds:Model>{escape(cfg.model)}</tds:Model>"
        f"<tds:FirmwareVersion>{escape(cfg.firmware)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{escape(cfg.serial)}</tds:SerialNumber>"
        f"<tds:HardwareId>{escape(cfg.hardware_id)}</tds:HardwareId>"
        "</tds:GetDeviceInformationResponse>"
    )


def _profile_xml(p: SimProfile) -> str:
    t = escape(p.token)
    return (
        f'<trt:Profiles token="{t}" fixed="true"><tt:Name>{t}</tt:Name>'
        '<tt:VideoSourceConfiguration token="vsc"><tt:Name>vsc</tt:Name>'
        "<tt:UseCount>1</tt:UseCount>"
        "<tt:SourceToken>vs</tt:SourceToken>"
        f'<tt:Bounds x="0" y="0" width="{p.width}" height="{p.height}"/>'
        "</tt:VideoSourceConfiguration>"
        f'<tt:VideoEncoderConfiguration token="vec-{t}"><tt:Name>vec-{t}</tt:Name>'
        f"<tt:UseCount>1</tt:UseCount><tt:Encoding>{escape(p.encoding)}</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height>"
        "</tt:Resolution><tt:Quality>5</tt:Quality>"
        f"<tt:RateControl><tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit>"
        "<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>2048</tt:BitrateLimit>"
        "</tt:RateControl>"
        "<tt:H264><tt:GovLength>10</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
        "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address>"
        "</tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart>"
        "</tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout>"
        "</tt:VideoEncoderConfiguration></trt:Profiles>"
    )


def _stream_uri(cfg: SimConfig, root: ET.Element) -> str:
    token = root.findtext(".//trt:GetStreamUri/trt:ProfileToken", default="", namespaces=NS)
    for p in cfg.profiles:
        if p.token == token.strip():
            return (
                "<trt:GetStreamUriResponse><trt:MediaUri>"
                f"<tt:Uri>{escape(p.stream_uri)}</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
                "</trt:MediaUri></trt:GetStreamUriResponse>"
            )
    raise SoapFaultError(400, "Sender", "InvalidArgVal", f"no profile {token!r}")


def handle_soap(cfg: SimConfig, path: str, body: bytes) -> tuple[int, bytes]:
    """Answer one SOAP request: (HTTP status, response envelope)."""
    try:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise SoapFaultError(400, "Sender", "WellFormed", "not well-formed XML") from None
        body_el = root.find("env:Body", NS)
        if body_el is None or len(body_el) == 0:
            raise SoapFaultError(400, "Sender", "WellFormed", "no SOAP body")
        op = body_el[0].tag.rsplit("}", 1)[-1]
        if op == "GetSystemDateAndTime":  # pre-authentication by the spec
            return 200, _envelope(_date_time(cfg))
        check_auth(cfg, root)
        answers = {
            ("/onvif/device_service", "GetServices"): lambda: _services(cfg),
            ("/onvif/device_service", "GetCapabilities"): lambda: _capabilities(cfg),
            ("/onvif/device_service", "GetDeviceInformation"): lambda: _device_information(cfg),
            ("/onvif/media_service", "GetProfiles"): lambda: (
                "<trt:GetProfilesResponse>"
                + "".join(_profile_xml(p) for p in cfg.profiles)
                + "</trt:GetProfilesResponse>"
            ),
            ("/onvif/media_service", "GetStreamUri"): lambda: _stream_uri(cfg, root),
        }
        answer = answers.get((path, op))
        if answer is None:
            raise SoapFaultError(400, "Receiver", "ActionNotSupported", f"{op} not supported")
        return 200, _envelope(answer())
    except SoapFaultError as f:
        return f.http_status, _fault_xml(f)


def make_http_server(cfg: SimConfig) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if not cfg.soap:
                self._send(404, b"<html><body>Not Found</body></html>", "text/html")
                return
            status, out = handle_soap(cfg, self.path, body)
            self._send(status, out, "application/soap+xml; charset=utf-8")

        def do_GET(self) -> None:
            self._send(404, b"<html><body>Not Found</body></html>", "text/html")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

    server = http.server.ThreadingHTTPServer((cfg.address, cfg.http_port), Handler)
    server.daemon_threads = True
    return server


class SimulatedCamera:
    """Both parts running in threads; ``start()``/``stop()``, or use as a context manager."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.http = make_http_server(cfg)
        cfg.http_port = self.http.server_address[1]
        self.responder = DiscoveryResponder(cfg)
        self._http_thread = threading.Thread(
            target=self.http.serve_forever, name="onvif-http", daemon=True
        )

    def start(self) -> SimulatedCamera:
        self._http_thread.start()
        self.responder.start()
        return self

    def stop(self) -> None:
        self.responder.stop()
        self.http.shutdown()
        self.http.server_close()

    def __enter__(self) -> SimulatedCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--address", required=True, help="IPv4 address of the interface to serve on")
    ap.add_argument("--http-port", type=int, default=0, help="SOAP port (0: any free one)")
    ap.add_argument("--user", default="admin")
    ap.add_argument(
        "--password-env", default="ARGUS_SIM_PASSWORD", help="env var with the password"
    )
    ap.add_argument("--profile", action="append", default=[], help="NAME:ENC:WxH:FPS:URI")
    ap.add_argument("--manufacturer", default="ArgusSim")
    ap.add_argument("--model", default="SimCam 1")
    ap.add_argument("--no-soap", action="store_true", help="answer discovery, not SOAP")
    ap.add_argument("--clock-offset-s", type=float, default=0.0, help="camera clock minus real")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s onvif_sim %(message)s")
    password = os.environ.get(args.password_env)
    if password is None:
        log.error("set the camera's password in $%s", args.password_env)
        return 2
    try:
        profiles = [SimProfile.parse(p) for p in args.profile]
    except ValueError as e:
        log.error("%s", e)
        return 2
    cfg = SimConfig(
        address=args.address,
        http_port=args.http_port,
        user=args.user,
        password=password,
        profiles=profiles,
        manufacturer=args.manufacturer,
        model=args.model,
        soap=not args.no_soap,
        clock_offset_s=args.clock_offset_s,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        cam = SimulatedCamera(cfg).start()
    except OSError as e:
        log.error("cannot listen on %s: %s", args.address, e)
        return 3
    sys.stdout.write(f"READY {cfg.device_xaddr}\n")
    sys.stdout.flush()
    stop.wait()
    cam.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
