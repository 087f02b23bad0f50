#!/usr/bin/env python3
"""A small RTSP "camera": serves a video file as H.264 over RTSP with GstRtspServer.

Runs under Debian's own ``/usr/bin/python3`` (GObject introspection), not the venv.  Needs::

    apt-get install -y --no-install-recommends gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
        gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
        gstreamer1.0-libav python3-gi

Usage::

    /usr/bin/python3 deploy/rtsp_server.py --file vtest.avi --port 8554 --path /cam1 [--loop]

Prints ``READY rtsp://HOST:PORT/PATH`` on stdout once listening; stops on SIGINT/SIGTERM.
Exit status 2 for bad arguments / missing file, 3 when the port cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

log = logging.getLogger("rtsp_server")


def _launch_line(path: str, fps: int) -> str:
    loc = path.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'( filesrc location="{loc}" ! decodebin ! videoconvert name=conv ! videorate '
        f"! video/x-raw,framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
        "key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def _make_looping(media: GstRtspServer.RTSPMedia) -> None:
    """Turn end-of-file into a seek back to the start (pts keep going on the RTP side)."""
    element = media.get_element()
    conv = element.get_by_name("conv")
    pad = conv.get_static_pad("sink")

    def restart() -> bool:
        seek = Gst.Event.new_seek(
            1.0,
            Gst.Format.TIME,
            Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT,
            Gst.SeekType.SET,
            0,
            Gst.SeekType.NONE,
            -1,
        )
        if not pad.push_event(seek):
            log.warning("loop: seek to start refused")
        return False  # one-shot idle callback

    def on_event(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.EOS:
            GLib.idle_add(restart)
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--file", required=True, help="video file to serve")
    ap.add_argument("--port", type=int, default=8554, help="TCP port (default 8554)")
    ap.add_argument("--path", default="/cam", help="mount path (default /cam)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--fps", type=int, default=10, help="output frame rate (default 10)")
    ap.add_argument("--loop", action="store_true", help="restart the file at its end")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rtsp_server %(message)s")

    path = os.path.abspath(args.file)
    if not os.path.isfile(path):
        log.error("no such file: %s", path)
        return 2
    mount = args.path if args.path.startswith("/") else "/" + args.path

    Gst.init(None)
    server = GstRtspServer.RTSPServer.new()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory.new()
    factory.set_launch(_launch_line(path, args.fps))
    factory.set_shared(True)
    if args.loop:
        factory.connect("media-configure", lambda _f, media: _make_looping(media))
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        log.error("cannot listen on %s:%d", args.host, args.port)
        return 3

    loop = GLib.MainLoop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    url = f"rtsp://{args.host}:{server.get_bound_port()}{mount}"
    sys.stdout.write(f"READY {url}\n")
    sys.stdout.flush()
    log.info("serving %s at %s%s", path, url, " (looping)" if args.loop else "")
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
