#!/usr/bin/env python3
"""A small RTSP "camera": serves a video file as H.264 over RTSP with GstRtspServer.

Runs under Debian's own ``/usr/bin/python3`` (GObject introspection), not the venv.  Needs::

    apt-get install -y --no-install-recommends gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
        gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
        gstreamer1.0-libav python3-gi

Usage::

    /usr/bin/python3 deploy/rtsp_server.py --file vtest.avi --port 8554 --path /cam1 [--loop]
        [--width 1280 --height 720] [--keyint 20] [--sub-path /cam1_sub --sub-width 384
        --sub-height 288] [--user admin --password secret]

``--width/--height`` scale the stream (default: the file's own size), ``--keyint`` is the
encoder's keyframe interval in frames (x264enc ``key-int-max``, default 10), ``--bitrate``
its kbit/s, ``--sub-path`` adds a second mount serving the same video smaller (a camera's
sub-stream: same fps and keyframe interval, ``--sub-bitrate`` kbit/s, default 512; the
file then plays once, in real time from the start, into both encoders, so the two
streams show the same moment, as a camera's do),
``--ignore-keyframe-requests`` makes a client that joins wait for the next scheduled
keyframe (as many cameras do), and ``--user/--password`` require RTSP basic authentication
on every mount (a wrong password gets ``401 Unauthorized``).

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


def _location(path: str) -> str:
    """``path`` quoted for a ``filesrc location="..."``."""
    return path.replace("\\", "\\\\").replace('"', '\\"')


def _scale(size: tuple[int, int] | None) -> str:
    """The scaling step (empty: the picture's own size)."""
    return "" if size is None else f"! videoscale ! video/x-raw,width={size[0]},height={size[1]} "


def _encoder(keyint: int, bitrate: int | None) -> str:
    """H.264 encoding and RTP payloading, the end of every mount's launch line."""
    rate = "" if bitrate is None else f"bitrate={bitrate} "
    return (
        "x264enc name=enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={keyint} {rate}! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def _launch_line(
    path: str,
    fps: int,
    *,
    keyint: int = 10,
    size: tuple[int, int] | None = None,
    bitrate: int | None = None,
) -> str:
    return (
        f'( filesrc location="{_location(path)}" ! decodebin ! videoconvert name=conv '
        f"{_scale(size)}! videorate ! video/x-raw,framerate={fps}/1 ! {_encoder(keyint, bitrate)}"
    )


def _camera_line(path: str, fps: int, channel: str) -> str:
    """The camera's one picture source: the file decoded in real time into an
    ``intervideosink`` channel, which every mount's encoder reads (the mounts then show the
    same moment, as a camera's main and sub-streams do)."""
    return (
        f'filesrc location="{_location(path)}" ! decodebin ! videoconvert ! videorate '
        f"! video/x-raw,framerate={fps}/1 ! intervideosink channel={channel}"
    )


def _mount_line(
    channel: str,
    fps: int,
    *,
    keyint: int,
    size: tuple[int, int] | None,
    bitrate: int | None,
) -> str:
    """One mount's encoder of the shared picture (see :func:`_camera_line`)."""
    return (
        f"( intervideosrc channel={channel} ! video/x-raw,framerate={fps}/1 ! videoconvert "
        f"{_scale(size)}! {_encoder(keyint, bitrate)}"
    )


def _play_camera(launch: str, loop: bool) -> Gst.Element:
    """Start the shared picture pipeline; at its end it starts again (``loop``) or stops
    (the mounts then repeat the last picture)."""
    pipeline = Gst.parse_launch(launch)
    bus = pipeline.get_bus()
    bus.add_signal_watch()

    def on_message(_bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.EOS and loop:
            pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif message.type == Gst.MessageType.ERROR:
            err, _ = message.parse_error()
            log.error("camera picture: %s", err.message)

    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    return pipeline


def _size(width: int | None, height: int | None, what: str) -> tuple[int, int] | None:
    if width is None and height is None:
        return None
    if width is None or height is None or width < 16 or height < 16:
        raise ValueError(f"{what}: give both width and height, each >= 16 px")
    return width, height


def _require_basic_auth(
    server: GstRtspServer.RTSPServer,
    factories: list[GstRtspServer.RTSPMediaFactory],
    user: str,
    password: str,
) -> None:
    """Every mount needs ``user``/``password`` (RTSP basic auth); others get 401."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    for factory in factories:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(
            Gst.Structure.new_from_string(
                f"viewer, {GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS}=(boolean)true, "
                f"{GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT}=(boolean)true"
            )
        )
        factory.set_permissions(permissions)


def _ignore_keyframe_requests(media: GstRtspServer.RTSPMedia) -> None:
    """Drop the encoder's force-key-unit requests (the server asks for a keyframe when a
    client joins a shared stream) and say the stream cannot seek (else a client's PLAY
    with a range restarts the encoder, with a keyframe): a client then joins mid-GOP and
    waits for the next scheduled keyframe, as with the many cameras that do not honour
    such requests."""
    pad = media.get_element().get_by_name("enc").get_static_pad("src")

    def on_query(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        query = info.get_query()
        if query is not None and query.type == Gst.QueryType.SEEKING:
            # answered as it was made: a fresh seeking query says "not seekable" (its
            # fields cannot be written from Python here)
            return Gst.PadProbeReturn.HANDLED
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, on_query)

    def on_event(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        structure = None if event is None else event.get_structure()
        if structure is not None and structure.get_name() == "GstForceKeyUnit":
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pad.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, on_event)


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
    ap.add_argument("--width", type=int, help="scale to this width, px (with --height)")
    ap.add_argument("--height", type=int, help="scale to this height, px (with --width)")
    ap.add_argument(
        "--keyint", type=int, default=10, help="keyframe every N frames at most (default 10)"
    )
    ap.add_argument("--bitrate", type=int, help="kbit/s (default: x264enc's, 2048)")
    ap.add_argument("--sub-path", help="also serve a smaller sub-stream at this mount path")
    ap.add_argument("--sub-width", type=int, default=384, help="sub-stream width (default 384)")
    ap.add_argument("--sub-height", type=int, default=288, help="sub-stream height (default 288)")
    ap.add_argument(
        "--ignore-keyframe-requests",
        action="store_true",
        help="a client joining the stream waits for the next scheduled keyframe",
    )
    ap.add_argument("--sub-bitrate", type=int, default=512, help="sub-stream kbit/s (default 512)")
    ap.add_argument("--user", help="require RTSP basic auth with this user (with --password)")
    ap.add_argument("--password", help="... and this password")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rtsp_server %(message)s")

    path = os.path.abspath(args.file)
    if not os.path.isfile(path):
        log.error("no such file: %s", path)
        return 2
    mount = args.path if args.path.startswith("/") else "/" + args.path
    try:
        size = _size(args.width, args.height, "--width/--height")
        sub_size = _size(args.sub_width, args.sub_height, "--sub-width/--sub-height")
    except ValueError as e:
        log.error("%s", e)
        return 2
    if args.keyint < 1 or (args.user is None) != (args.password is None):
        log.error("--keyint must be >= 1; --user and --password go together")
        return 2
    Gst.init(None)
    camera = None
    if args.sub_path:  # two streams of one picture, as a camera's main and sub-streams
        channel = f"argus-camera-{os.getpid()}"
        camera = _play_camera(_camera_line(path, args.fps, channel), args.loop)
        sub_mount = args.sub_path if args.sub_path.startswith("/") else "/" + args.sub_path
        mounts = [
            (
                mount,
                _mount_line(channel, args.fps, keyint=args.keyint, size=size, bitrate=args.bitrate),
            ),
            (
                sub_mount,
                _mount_line(
                    channel, args.fps, keyint=args.keyint, size=sub_size, bitrate=args.sub_bitrate
                ),
            ),
        ]
    else:
        mounts = [
            (
                mount,
                _launch_line(path, args.fps, keyint=args.keyint, size=size, bitrate=args.bitrate),
            )
        ]

    server = GstRtspServer.RTSPServer.new()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factories = []
    for where, launch in mounts:
        factory = GstRtspServer.RTSPMediaFactory.new()
        factory.set_launch(launch)
        factory.set_shared(True)
        if args.loop and camera is None:
            factory.connect("media-configure", lambda _f, media: _make_looping(media))
        if args.ignore_keyframe_requests:
            factory.connect("media-configure", lambda _f, media: _ignore_keyframe_requests(media))
        server.get_mount_points().add_factory(where, factory)
        factories.append(factory)
    if args.user is not None and args.password is not None:
        _require_basic_auth(server, factories, args.user, args.password)
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
    for where, _ in mounts[1:]:
        log.info("sub-stream at rtsp://%s:%d%s", args.host, server.get_bound_port(), where)
    loop.run()
    if camera is not None:
        camera.set_state(Gst.State.NULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
