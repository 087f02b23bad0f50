"""Camera discovery, piece by piece: ProbeMatches parsing, the ONVIF questions against the
simulated camera's SOAP service on loopback, the RTSP check against a scripted RTSP server,
the table and JSON, the command's exit codes, and that a password never shows."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from argus.site import discover_cli
from argus.site.discover import (
    NO_CAMERAS_HINT,
    Camera,
    Credentials,
    DiscoveryError,
    DiscoveryResult,
    MediaProfile,
    ProbeMatch,
    describe_camera,
    discover,
    parse_probe_matches,
    probe,
)
from argus.site.discover_report import as_json, render_table
from ingest.rtsp_check import StreamCheck, check_rtsp
from tests.onvif_sim import SimConfig, SimProfile, make_http_server, probe_match_xml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Sup3r-s3cret-pw"

# What a real camera (Hikvision-style) sends: two XAddrs (IPv6 first), scopes with %20.
CAMERA_PROBE_MATCH = b"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
  xmlns:wsadis="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
  xmlns:dn="http://www.onvif.org/ver10/network/wsdl"
  xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<env:Header>
  <wsadis:MessageID>urn:uuid:5a1e0c2e-1111-2222-3333-bcbaaf0f5b9e</wsadis:MessageID>
  <wsadis:RelatesTo>uuid:0d7c2b3a-aaaa-bbbb-cccc-0123456789ab</wsadis:RelatesTo>
  <wsadis:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsadis:To>
  <wsadis:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsadis:Action>
  <d:AppSequence InstanceId="1701" MessageNumber="12"/>
</env:Header>
<env:Body><d:ProbeMatches><d:ProbeMatch>
  <wsadis:EndpointReference>
    <wsadis:Address>urn:uuid:4fee8b8a-aaaa-bbbb-cccc-bcbaaf0f5b9e</wsadis:Address>
  </wsadis:EndpointReference>
  <d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
  <d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming
    onvif://www.onvif.org/hardware/DS-2CD2143G2-I onvif://www.onvif.org/name/HIKVISION%20Dome
    onvif://www.onvif.org/location/city/hangzhou</d:Scopes>
  <d:XAddrs>http://[fe80::4e2a:3fff:fe01:2345]/onvif/device_service
    http://192.168.1.64/onvif/device_service</d:XAddrs>
  <d:MetadataVersion>10</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"""


# --------------------------------------------------------------------------- ProbeMatches
def test_parses_a_cameras_probe_match() -> None:
    (m,) = parse_probe_matches(CAMERA_PROBE_MATCH)
    assert m.endpoint == "urn:uuid:4fee8b8a-aaaa-bbbb-cccc-bcbaaf0f5b9e"
    assert len(m.xaddrs) == 2
    assert m.xaddr == "http://192.168.1.64/onvif/device_service"  # the IPv4 one
    assert m.address == "192.168.1.64"
    assert m.scope("name") == "HIKVISION Dome"
    assert m.scope("hardware") == "DS-2CD2143G2-I"
    assert m.scope("location") == "city/hangzhou"
    assert m.scope("nothing") is None
    assert "{http://www.onvif.org/ver10/network/wsdl}NetworkVideoTransmitter" in m.types


def test_parses_the_simulators_probe_match() -> None:
    cfg = SimConfig(address="10.0.0.7", http_port=8080, user="u", password="p", model="Sim 2")
    (m,) = parse_probe_matches(probe_match_xml(cfg, "urn:uuid:probe-1"))
    assert (m.endpoint, m.xaddr, m.address) == (cfg.endpoint, cfg.device_xaddr, "10.0.0.7")
    assert m.scope("hardware") == "Sim 2"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml at all",
        b"<a><b></a>",
        CAMERA_PROBE_MATCH.replace(b"ProbeMatches</wsadis:Action>", b"Hello</wsadis:Action>"),
        # a ProbeMatch without its (required) MetadataVersion: dropped, not raised
        CAMERA_PROBE_MATCH.replace(b"<d:MetadataVersion>10</d:MetadataVersion>", b""),
    ],
)
def test_anything_else_on_udp_3702_gives_no_match(data: bytes) -> None:
    assert parse_probe_matches(data) == []


def test_a_match_without_http_xaddrs() -> None:
    m = ProbeMatch("urn:uuid:x", ("soap.udp://10.0.0.9:3702",))
    assert m.xaddr is None and m.address == "10.0.0.9"
    assert ProbeMatch("urn:uuid:y", ()).address == "?"


def test_probe_refuses_bad_interfaces_and_timeouts() -> None:
    with pytest.raises(DiscoveryError, match="not an address of this machine"):
        probe(0.1, interface="203.0.113.77")
    with pytest.raises(DiscoveryError, match="IPv4 address"):
        probe(0.1, interface="eth0")
    with pytest.raises(DiscoveryError, match="> 0"):
        probe(0.0)


# --------------------------------------------------------------------------- ONVIF on loopback
@pytest.fixture
def sim() -> Iterator[SimConfig]:
    """The simulated camera's SOAP service on loopback (its discovery part is not needed)."""
    cfg = SimConfig(
        address="127.0.0.1",
        http_port=0,
        user="admin",
        password=PASSWORD,
        profiles=[
            SimProfile.parse("main:H264:1920x1080:25:rtsp://127.0.0.1:1/main"),
            # a camera that puts credentials in the URL it hands out
            SimProfile.parse(f"sub:JPEG:640x360:12:rtsp://admin:{PASSWORD}@127.0.0.1:1/sub"),
        ],
        clock_offset_s=-7200,
    )
    yield from _serve(cfg)


def _serve(cfg: SimConfig) -> Iterator[SimConfig]:
    server = make_http_server(cfg)
    cfg.http_port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cfg
    finally:
        server.shutdown()
        server.server_close()


def _match(cfg: SimConfig) -> ProbeMatch:
    return ProbeMatch(
        "urn:uuid:sim",
        (cfg.device_xaddr,),
        scopes=("onvif://www.onvif.org/name/ArgusSim", "onvif://www.onvif.org/hardware/SimCam"),
    )


def test_describes_the_simulated_camera(sim: SimConfig) -> None:
    cam = asyncio.run(describe_camera(_match(sim), Credentials("admin", PASSWORD), 5, 1))
    assert cam.problem is None, cam.error
    assert (cam.manufacturer, cam.model, cam.serial) == ("ArgusSim", "SimCam 1", "SIM-0001")
    assert cam.clock_offset_s == pytest.approx(-7200, abs=5)
    main, sub = cam.profiles
    assert (main.token, main.encoding, main.width, main.height, main.fps) == (
        "main",
        "H264",
        1920,
        1080,
        25.0,
    )
    assert (sub.encoding, sub.fps) == ("JPEG", 12.0)
    assert main.stream_url == "rtsp://127.0.0.1:1/main"
    assert sub.stream_url == "rtsp://admin:***@127.0.0.1:1/sub"  # redacted as it is shown
    assert main.stream is not None and not main.stream.verified
    assert "connection refused" in main.stream.detail
    assert PASSWORD not in repr(cam)


def test_wrong_or_missing_credentials_are_said_as_such(sim: SimConfig) -> None:
    wrong = "not-" + PASSWORD
    cam = asyncio.run(describe_camera(_match(sim), Credentials("admin", wrong), 5, 1))
    assert cam.problem == "not_authorized"
    assert cam.error == (
        "GetDeviceInformation: the camera refused user 'admin': wrong user or password "
        "(ONVIF NotAuthorized)"
    )
    assert (cam.scope_name, cam.scope_hardware, cam.profiles) == ("ArgusSim", "SimCam", ())
    anonymous = asyncio.run(describe_camera(_match(sim), None, 5, 1))
    assert anonymous.problem == "not_authorized"
    assert anonymous.error is not None and "wants credentials" in anonymous.error


def test_a_web_server_that_is_not_onvif() -> None:
    cfg = SimConfig(address="127.0.0.1", http_port=0, user="admin", password=PASSWORD, soap=False)
    for served in _serve(cfg):
        cam = asyncio.run(describe_camera(_match(served), Credentials("admin", PASSWORD), 5, 1))
        assert cam.problem == "not_onvif"
        assert cam.error is not None
        assert cam.error.startswith("answers WS-Discovery but not ONVIF SOAP")
        assert served.device_xaddr in cam.error


def test_a_device_whose_service_port_is_closed() -> None:
    m = ProbeMatch("urn:uuid:gone", ("http://127.0.0.1:1/onvif/device_service",))
    cam = asyncio.run(describe_camera(m, None, 5, 1))
    assert cam.problem == "unreachable"
    assert cam.error is not None and "connection refused" in cam.error


def test_onvif_import_leaves_the_root_logger_alone() -> None:
    # onvif-zeep-async calls logging.basicConfig() when imported; a fresh interpreter shows
    # whether our import undoes it.
    code = (
        "import logging; from argus.site.discover import _onvif; _onvif(); "
        "r = logging.getLogger(); print(len(r.handlers), r.level)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.split() == ["0", str(logging_warning())]


def logging_warning() -> int:
    import logging

    return logging.WARNING


# --------------------------------------------------------------------------- RTSP check
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n"
)
Handler = Callable[[str, dict[str, str]], tuple[str, dict[str, str], str]]


def _digest_ok(auth: str, user: str, password: str, realm: str, nonce: str) -> bool:
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', auth[len("Digest ") :]))

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"DESCRIBE:{p.get('uri')}")
    if p.get("qop") == "auth":
        want = md5(f"{ha1}:{nonce}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
    else:
        want = md5(f"{ha1}:{nonce}:{ha2}")
    return p.get("username") == user and p.get("nonce") == nonce and p.get("response") == want


def _camera_rtsp(password: str, qop: bool = False) -> Handler:
    """An RTSP server that wants digest credentials for DESCRIBE, as most cameras do."""

    def handle(request_line: str, headers: dict[str, str]) -> tuple[str, dict[str, str], str]:
        if not request_line.endswith("/live RTSP/1.0"):
            return "404 Not Found", {}, ""
        auth = headers.get("authorization", "")
        if auth.startswith("Digest ") and _digest_ok(auth, "admin", password, "cam", "abc"):
            return "200 OK", {"Content-Type": "application/sdp"}, SDP
        challenge = 'Digest realm="cam", nonce="abc"' + (', qop="auth"' if qop else "")
        return "401 Unauthorized", {"WWW-Authenticate": challenge}, ""

    return handle


def _with_rtsp(
    handle: Handler | None, check: Callable[[int], Awaitable[StreamCheck]]
) -> StreamCheck:
    """Serve ``handle`` (None: accept and never answer) on loopback while ``check`` runs."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if handle is None:  # a server that accepts and never answers
                    await asyncio.sleep(30)
                    return
                lines = head.decode().split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (x.partition(":") for x in lines[1:] if x)
                }
                status, extra, body = handle(lines[0], headers)
                out = [f"RTSP/1.0 {status}", f"CSeq: {headers.get('cseq', '0')}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                out.append(f"Content-Length: {len(body.encode())}")
                writer.write(("\r\n".join(out) + "\r\n\r\n" + body).encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def main() -> StreamCheck:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await check(port)

    return asyncio.run(main())


@pytest.mark.parametrize("qop", [False, True])
def test_rtsp_check_answers_a_digest_challenge(qop: bool) -> None:
    creds = Credentials("admin", PASSWORD)
    got = _with_rtsp(
        _camera_rtsp(PASSWORD, qop), lambda port: check_rtsp(f"rtsp://127.0.0.1:{port}/live", creds)
    )
    assert got == StreamCheck(True, "RTSP 200, video H264")


def test_rtsp_check_answers_a_basic_challenge() -> None:
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()

    def handle(line: str, headers: dict[str, str]) -> tuple[str, dict[str, str], str]:
        if headers.get("authorization") == f"Basic {token}":
            return "200 OK", {"Content-Type": "application/sdp"}, SDP
        return "401 Unauthorized", {"WWW-Authenticate": 'Basic realm="cam"'}, ""

    creds = Credentials("admin", PASSWORD)
    got = _with_rtsp(handle, lambda port: check_rtsp(f"rtsp://127.0.0.1:{port}/live", creds))
    assert got == StreamCheck(True, "RTSP 200, video H264")


def test_rtsp_check_uses_credentials_in_the_url() -> None:
    got = _with_rtsp(
        _camera_rtsp(PASSWORD),
        lambda port: check_rtsp(f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/live", None),
    )
    assert got.verified


@pytest.mark.parametrize(
    ("creds", "path", "detail"),
    [
        (Credentials("admin", "wrong"), "/live", "RTSP 401: the stream refused user 'admin'"),
        (None, "/live", "RTSP 401: the stream wants credentials"),
        (Credentials("admin", PASSWORD), "/other", "RTSP 404 Not Found"),
    ],
)
def test_rtsp_check_says_why_a_stream_is_unverified(
    creds: Credentials | None, path: str, detail: str
) -> None:
    got = _with_rtsp(
        _camera_rtsp(PASSWORD), lambda port: check_rtsp(f"rtsp://127.0.0.1:{port}{path}", creds)
    )
    assert not got.verified and got.detail.startswith(detail), got


def test_rtsp_check_is_bounded_in_time() -> None:
    t0 = time.monotonic()
    got = _with_rtsp(None, lambda port: check_rtsp(f"rtsp://127.0.0.1:{port}/x", None, 0.3))
    assert time.monotonic() - t0 < 2
    assert not got.verified
    assert re.fullmatch(r"no RTSP answer from 127\.0\.0\.1:\d+ within 0\.3 s", got.detail)


def test_rtsp_check_of_other_urls() -> None:
    assert not asyncio.run(check_rtsp("http://cam/video.mjpg")).verified
    assert "connection refused" in asyncio.run(check_rtsp("rtsp://127.0.0.1:1/x")).detail


# --------------------------------------------------------------------------- output
def _result() -> DiscoveryResult:
    good = Camera(
        endpoint="urn:uuid:a",
        address="10.0.0.2",
        xaddr="http://10.0.0.2/onvif/device_service",
        manufacturer="ACME",
        model="Eye 4",
        profiles=(
            MediaProfile(
                "p0",
                "main",
                "H264",
                1920,
                1080,
                25.0,
                "rtsp://10.0.0.2/main",
                StreamCheck(True, "RTSP 200, video H264"),
            ),
            MediaProfile(
                "p1",
                "sub",
                "H265",
                640,
                360,
                12.5,
                "rtsp://10.0.0.2/sub",
                StreamCheck(False, "RTSP 404 Not Found"),
            ),
        ),
    )
    locked = Camera(
        endpoint="urn:uuid:b",
        address="10.0.0.3",
        xaddr="http://10.0.0.3/onvif/device_service",
        scope_name="Dahua",
        scope_hardware="IPC-HDW",
        problem="not_authorized",
        error="GetDeviceInformation: the camera refused user 'admin': wrong user or password",
    )
    return DiscoveryResult((good, locked), "10.0.0.1", 3.0, 4.2)


def test_table() -> None:
    text = render_table(_result())
    lines = text.splitlines()
    assert lines[0] == "Found 2 ONVIF devices (WS-Discovery probe from 10.0.0.1, 3 s)."
    assert lines[1].split() == [
        "ADDRESS",
        "MANUFACTURER",
        "MODEL",
        "PROFILE",
        "ENCODING",
        "RESOLUTION",
        "FPS",
        "STREAM",
        "CHECK",
    ]
    assert lines[2].split() == [
        "10.0.0.2",
        "ACME",
        "Eye",
        "4",
        "main",
        "H264",
        "1920x1080",
        "25",
        "rtsp://10.0.0.2/main",
        "ok",
    ]
    assert lines[3].split()[-4:] == ["640x360", "12.5", "rtsp://10.0.0.2/sub", "UNVERIFIED"]
    assert lines[4].split() == ["10.0.0.3", "Dahua*", "IPC-HDW*", *["-"] * 5, "ERROR"]
    assert "* from the device's discovery scopes, not confirmed over ONVIF" in lines
    assert lines[-3:] == [
        "Problems:",
        "  10.0.0.2 profile sub: stream not verified: RTSP 404 Not Found",
        "  10.0.0.3: GetDeviceInformation: the camera refused user 'admin': wrong user or password",
    ]


def test_table_when_nothing_answered() -> None:
    text = render_table(DiscoveryResult((), None, 2.0))
    assert text.startswith("No cameras found (WS-Discovery probe on every interface, 2 s).")
    assert max(len(line) for line in text.splitlines()) <= 100  # wrapped for a terminal
    words = " ".join(text.split())
    for hint in ("firewall", "UDP 3702", "multicast", "--interface IP", "--timeout"):
        assert hint in words


def test_json() -> None:
    doc = as_json(_result())
    assert json.loads(json.dumps(doc)) == doc
    assert (doc["found"], doc["ok"], doc["hint"], doc["interface"]) == (2, False, None, "10.0.0.1")
    good, locked = doc["cameras"]
    assert good["ok"] is False  # one stream unverified
    assert good["profiles"][0] == {
        "token": "p0",
        "name": "main",
        "encoding": "H264",
        "width": 1920,
        "height": 1080,
        "fps": 25.0,
        "stream_url": "rtsp://10.0.0.2/main",
        "stream_verified": True,
        "stream_detail": "RTSP 200, video H264",
        "error": None,
    }
    assert (locked["problem"], locked["manufacturer"], locked["scope_name"]) == (
        "not_authorized",
        None,
        "Dahua",
    )
    assert as_json(DiscoveryResult((), None, 1.0))["hint"] == NO_CAMERAS_HINT


def test_credentials_never_show() -> None:
    c = Credentials("admin", PASSWORD)
    assert PASSWORD not in repr(c) and PASSWORD not in str(c)
    assert (
        c.scrub(f"rtsp://admin:{PASSWORD}@cam/x and {PASSWORD}") == "rtsp://admin:***@cam/x and ***"
    )


# --------------------------------------------------------------------------- the command
def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    discover_cli.add_arguments(p)
    return p.parse_args(argv)


def _fake_discover(
    result: DiscoveryResult, seen: list[Credentials | None]
) -> Callable[..., DiscoveryResult]:
    def fake(
        *, timeout_s: float, interface: str | None, credentials: Credentials | None
    ) -> DiscoveryResult:
        seen.append(credentials)
        return result

    return fake


def test_command_reads_the_password_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Credentials | None] = []
    monkeypatch.setattr(discover_cli, "discover", _fake_discover(_result(), seen))
    monkeypatch.setenv("CAM_PW", PASSWORD)
    code = discover_cli.cmd_discover(_args("--user", "admin", "--password-env", "CAM_PW"))
    out = capsys.readouterr()
    assert code == discover_cli.EXIT_PROBLEMS  # an unverified stream, a locked camera
    assert seen == [Credentials("admin", PASSWORD)]
    assert "10.0.0.2" in out.out and PASSWORD not in out.out + out.err


def test_command_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _result().cameras[0]
    verified = tuple(
        MediaProfile(p.token, p.name, stream_url=p.stream_url, stream=StreamCheck(True, "ok"))
        for p in good.profiles
    )
    all_good = DiscoveryResult((Camera("u", "10.0.0.2", None, profiles=verified),), None, 1.0)
    monkeypatch.setattr(discover_cli, "discover", _fake_discover(all_good, []))
    assert discover_cli.cmd_discover(_args("--json")) == discover_cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["ok"] is True

    monkeypatch.setattr(
        discover_cli, "discover", _fake_discover(DiscoveryResult((), None, 1.0), [])
    )
    assert discover_cli.cmd_discover(_args()) == discover_cli.EXIT_PROBLEMS
    assert "No cameras found" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "admin", "--password-env", "UNSET_PW_VAR"], "$UNSET_PW_VAR is not set"),
        (["--password-env", "CAM_PW"], "--password-env needs --user"),
        (["--user", "admin"], "--user needs a password"),  # stdin is not a terminal here
        (["--timeout", "0"], "--timeout must be > 0"),
        (["--interface", "not-an-ip"], "--interface wants this machine's IPv4 address"),
    ],
)
def test_command_bad_input(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("UNSET_PW_VAR", raising=False)
    monkeypatch.setenv("CAM_PW", PASSWORD)
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115 (closed by pytest)
    assert discover_cli.cmd_discover(_args(*argv)) == discover_cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("argus cameras discover: ") and message in err
    assert PASSWORD not in err


def test_discover_with_a_fake_probe(sim: SimConfig) -> None:
    calls: list[tuple[float, str | None]] = []

    def fake_probe(timeout_s: float, interface: str | None) -> list[ProbeMatch]:
        calls.append((timeout_s, interface))
        return [_match(sim)]

    result = discover(
        1.5, "10.9.9.9", Credentials("admin", PASSWORD), rtsp_timeout_s=None, probe_fn=fake_probe
    )
    assert calls == [(1.5, "10.9.9.9")]
    (cam,) = result.cameras
    assert cam.problem is None and [p.stream for p in cam.profiles] == [None, None]
    assert "not checked" in render_table(result)


def test_discover_called_from_async_code_runs_on_a_thread_of_its_own(sim: SimConfig) -> None:
    async def caller() -> DiscoveryResult:  # a running event loop in this thread
        return discover(
            1.0,
            None,
            Credentials("admin", PASSWORD),
            rtsp_timeout_s=None,
            probe_fn=lambda timeout_s, interface: [_match(sim)],
        )

    (cam,) = asyncio.run(caller()).cameras
    assert cam.problem is None and cam.profiles
