"""Camera discovery against simulated ONVIF cameras on a real (virtual) Ethernet link.

Loopback has no multicast, so each run builds its own small LAN: a network namespace joined
to this one by a veth pair on a private /24 (unique names and subnet per run, removed at the
end whatever happens). Inside the namespace run

- the real GStreamer RTSP camera (``deploy/rtsp_server.py``, Debian's ``/usr/bin/python3``);
- a simulated ONVIF camera (``tests/onvif_sim.py``) whose main profile's stream URI is that
  RTSP camera, whose second profile's URI names a path the RTSP server does not have, and whose
  clock is an hour and some off (so the WS-Security timestamps must be corrected);
- a device that answers WS-Discovery but whose HTTP port is a plain web server (404 HTML).

Discovery runs on this side, bound to the veth address, exactly as ``argus cameras discover
--interface IP`` does on a site engineer's laptop.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest

from argus.site.discover import Credentials, discover
from argus.site.discover_report import render_table
from tests.integration.test_ingest_live import GST_PACKAGES, SYSTEM_PYTHON, _gst_missing

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
RTSP_SERVER = REPO / "deploy" / "rtsp_server.py"
SIM = REPO / "tests" / "onvif_sim.py"
SIM_CLOCK_OFFSET_S = -4000.0


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=10)


def _free_subnet() -> str:
    """A 10.x.y.0/24 prefix ("10.x.y") that no interface here uses."""
    used = subprocess.run(
        ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True
    ).stdout
    for _ in range(50):
        prefix = f"10.{secrets.choice(range(200, 250))}.{secrets.randbelow(256)}"
        if f" {prefix}." not in used:
            return prefix
    raise RuntimeError("no free 10.x.y.0/24 subnet found")


@dataclass
class Lan:
    """A namespace (the cameras' side) and a veth pair to it; processes run inside it."""

    ns: str
    host_if: str
    ns_if: str
    host_ip: str
    ns_ip: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @classmethod
    def create(cls) -> Lan:
        tag = f"{os.getpid() % 10000:04d}{secrets.token_hex(2)}"
        prefix = _free_subnet()
        lan = cls(f"argus-disc-{tag}", f"ad{tag}h", f"ad{tag}n", f"{prefix}.1", f"{prefix}.2")
        try:
            _ip("netns", "add", lan.ns)
            _ip("link", "add", lan.host_if, "type", "veth", "peer", "name", lan.ns_if)
            _ip("link", "set", lan.ns_if, "netns", lan.ns)
            _ip("addr", "add", f"{lan.host_ip}/24", "dev", lan.host_if)
            _ip("link", "set", lan.host_if, "up")
            _ip("addr", "add", f"{lan.ns_ip}/24", "dev", lan.ns_if, netns=lan.ns)
            _ip("link", "set", lan.ns_if, "up", netns=lan.ns)
            _ip("link", "set", "lo", "up", netns=lan.ns)
            # The cameras' side sends and receives multicast on its one link.
            _ip("route", "add", "224.0.0.0/4", "dev", lan.ns_if, netns=lan.ns)
        except BaseException:
            lan.destroy()
            raise
        return lan

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        """Start ``argv`` inside the namespace; return its READY line (stdout, <= 20 s)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=20):
                raise AssertionError(f"{argv[:2]} did not say READY within 20 s")
        line = proc.stdout.readline()
        assert line.startswith("READY"), f"{argv[:2]} did not start (exit {proc.poll()})"
        return line.split()[1]

    def destroy(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # Deleting the namespace deletes the veth end in it, and with it the pair.
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10)


@dataclass(frozen=True)
class Site:
    lan: Lan
    password: str
    camera_xaddr: str
    web_xaddr: str
    stream_url: str
    missing_stream_url: str


def _netns_missing() -> str | None:
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating a network namespace needs root (CAP_NET_ADMIN)"
    return None


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    reason = _netns_missing()
    if reason is not None:
        pytest.skip(reason)
    reason = _gst_missing()
    if reason is not None:
        pytest.skip(f"{reason}; install: apt-get install -y --no-install-recommends {GST_PACKAGES}")
    if not VTEST.exists():
        pytest.skip(f"footage {VTEST} not found (Debian package opencv-doc)")
    try:
        lan = Lan.create()
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create a network namespace and veth pair here: {e.stderr.strip()}")
    password = "Pw-" + secrets.token_hex(8)
    try:
        stream_url = lan.start(
            [
                *(SYSTEM_PYTHON, str(RTSP_SERVER), "--file", str(VTEST), "--host", lan.ns_ip),
                *("--port", "8554", "--path", "/cam", "--loop"),
            ]
        )
        missing = f"rtsp://{lan.ns_ip}:8554/no-such-stream"
        sim = [sys.executable, str(SIM), "--address", lan.ns_ip, "--password-env", "SIM_PW"]
        camera_xaddr = lan.start(
            [
                *sim,
                "--http-port",
                "8080",
                "--profile",
                f"main:H264:768x576:10:{stream_url}",
                "--profile",
                f"sub:H264:384x288:5:{missing}",
                "--clock-offset-s",
                str(SIM_CLOCK_OFFSET_S),
            ],
            env={"SIM_PW": password},
        )
        web_xaddr = lan.start([*sim, "--http-port", "8081", "--no-soap"], env={"SIM_PW": "x"})
        yield Site(lan, password, camera_xaddr, web_xaddr, stream_url, missing)
    finally:
        lan.destroy()


def test_finds_the_camera_its_profiles_and_a_stream_that_plays(site: Site) -> None:
    t0 = time.monotonic()
    result = discover(
        timeout_s=2.0,
        interface=site.lan.host_ip,
        credentials=Credentials("admin", site.password),
    )
    assert time.monotonic() - t0 < 15
    by_xaddr = {c.xaddr: c for c in result.cameras}
    assert set(by_xaddr) == {site.camera_xaddr, site.web_xaddr}, result

    cam = by_xaddr[site.camera_xaddr]
    assert cam.problem is None, cam.error
    assert cam.address == site.lan.ns_ip
    assert (cam.manufacturer, cam.model, cam.firmware) == ("ArgusSim", "SimCam 1", "1.0.0")
    # The camera's clock is off by over an hour: read, and allowed for in the WS-Security
    # timestamps (else the camera would have refused every authenticated call).
    assert cam.clock_offset_s == pytest.approx(SIM_CLOCK_OFFSET_S, abs=5)
    main, sub = cam.profiles
    assert (main.name, main.encoding, main.width, main.height, main.fps) == (
        "main",
        "H264",
        768,
        576,
        10.0,
    )
    assert (sub.name, sub.width, sub.height, sub.fps) == ("sub", 384, 288, 5.0)
    assert main.stream_url == site.stream_url
    assert main.stream is not None and main.stream.verified, main.stream
    assert main.stream.detail == "RTSP 200, video H264"
    # The second profile's URL names a stream the RTSP server does not have.
    assert sub.stream_url == site.missing_stream_url
    assert sub.stream is not None and not sub.stream.verified
    assert "404" in sub.stream.detail
    assert not cam.ok and not result.ok

    web = by_xaddr[site.web_xaddr]
    assert web.problem == "not_onvif"
    assert web.error is not None and "answers WS-Discovery but not ONVIF SOAP" in web.error
    assert site.web_xaddr in web.error
    assert web.scope_name == "ArgusSim"  # what its discovery scopes claim

    # The URL the camera gave really plays: a decoded frame of the footage.
    with av.open(
        main.stream_url, options={"rtsp_transport": "tcp", "stimeout": "10000000"}, timeout=10
    ) as container:
        frame = next(container.decode(video=0))
    assert (frame.height, frame.width) == (576, 768)


def test_the_probe_goes_out_of_the_chosen_interface_only(site: Site) -> None:
    # From loopback (no multicast, and not the cameras' link) nothing can answer; were the
    # probe sent out of every interface instead, the cameras would be found.
    result = discover(timeout_s=1.0, interface="127.0.0.1", rtsp_timeout_s=None)
    assert result.cameras == () and not result.ok
    assert "No cameras found (WS-Discovery probe from 127.0.0.1, 1 s)." in render_table(result)


def _cli(site: Site, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "argus.site.discover_cli", "--interface", site.lan.host_ip),
            *("--user", "admin", "--password-env", "ONVIF_PW", "--timeout", "2", *extra),
        ],
        capture_output=True,
        text=True,
        timeout=40,
        cwd=REPO,
        env={**os.environ, "ONVIF_PW": password},
    )


def test_wrong_password_is_said_per_camera_and_never_shown(site: Site) -> None:
    wrong = "Wr0ng-" + secrets.token_hex(6)
    out = _cli(site, wrong, "--log-level", "DEBUG")
    assert out.returncode == 1, out.stderr
    problem = next(
        line
        for line in out.stdout.splitlines()
        if line.strip().startswith(site.lan.ns_ip + ":") and "GetDeviceInformation" in line
    )
    assert "refused user 'admin': wrong user or password (ONVIF NotAuthorized)" in problem
    assert "not ONVIF SOAP" in out.stdout  # the web server is still reported as such
    # The logs at DEBUG hold the SOAP traffic (so there was something to leak) ...
    assert "HTTP Post to" in out.stderr
    # ... but neither the password tried nor the real one appears anywhere.
    for secret in (wrong, site.password):
        assert secret not in out.stdout and secret not in out.stderr


def test_cli_json(site: Site) -> None:
    out = _cli(site, site.password, "--json")
    assert out.returncode == 1, out.stderr  # the web server and the missing stream
    doc = json.loads(out.stdout)
    assert doc["found"] == 2 and doc["interface"] == site.lan.host_ip and not doc["ok"]
    cam = next(c for c in doc["cameras"] if c["xaddr"] == site.camera_xaddr)
    assert cam["problem"] is None and cam["model"] == "SimCam 1"
    streams = {p["name"]: (p["stream_url"], p["stream_verified"]) for p in cam["profiles"]}
    assert streams == {
        "main": (site.stream_url, True),
        "sub": (site.missing_stream_url, False),
    }
    assert site.password not in out.stdout + out.stderr
