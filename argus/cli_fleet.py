"""``argus worker`` and ``argus fleet ...``: cameras shared out across workers (argus.fleet)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from argus.config import ConfigError, WorkerConfig, load_config, load_worker_config
from argus.logs import setup_logging
from argus.paths import argus_home

log = logging.getLogger("argus.cli")

EXIT_OK, EXIT_FAILED, EXIT_START_FAILED = 0, 1, 2
EXIT_INTERRUPTED = 130


def _worker_config(path: str) -> WorkerConfig | None:
    try:
        return load_worker_config(Path(path))
    except ConfigError as e:
        print(f"argus: {e}", file=sys.stderr)
        return None


def health_app(worker: Any) -> Any:
    """The worker's probes: ``/healthz`` (alive), ``/readyz`` (200 once it holds an
    assignment; its cameras, what it declined, the group), ``/metrics`` (Prometheus).
    Unauthenticated like the API's probes: no URL or credential is in them."""
    import prometheus_client
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        body = worker.health()
        ready = worker.ready_now
        body["status"] = "ready" if ready else "not ready"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(
            prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST
        )

    return app


def cmd_worker(args: argparse.Namespace) -> int:
    """``argus worker --config FLEET.yaml``."""
    from alerts.s3_evidence import SpoolLockedError
    from alerts.spool import SpoolError
    from argus.app import ApiServer
    from argus.fleet.worker import FleetWorker
    from detectors.onnx_detector import InferenceError, ModelLoadError
    from models.registry import ModelError

    cfg = _worker_config(args.config)
    if cfg is None:
        return EXIT_START_FAILED
    setup_logging(args.log_level or cfg.log.level, args.log_format or cfg.log.format)
    try:
        worker = FleetWorker(cfg, home=argus_home(), source=args.config)
    except (ModelError, ModelLoadError, InferenceError, SpoolError, SpoolLockedError) as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    except (ValueError, OSError) as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    server = None
    if cfg.metrics.port is not None:
        try:
            server = ApiServer(health_app(worker), cfg.metrics.host, cfg.metrics.port)
        except OSError as e:
            print(f"argus: {e}", file=sys.stderr)
            worker.close()
            return EXIT_START_FAILED
        server.start()
        print(f"Worker probes: {server.url}/readyz  {server.url}/metrics", flush=True)
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        worker.stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    try:
        worker.start()
    except Exception as e:  # the broker away at start, the topic not creatable, ...
        print(f"argus: cannot join the fleet: {type(e).__name__}: {e}", file=sys.stderr)
        worker.close()
        if server is not None:
            server.stop()
        return EXIT_START_FAILED
    print(f"argus worker {worker.name}: joined group {cfg.fleet.group}", flush=True)
    result = None
    try:
        result = worker.run()
    finally:
        worker.close(stopped=stop.is_set())
        if server is not None:
            server.stop()
    if result is not None and result.fatal:
        print(f"argus: pipeline gave up: {result.fatal}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_fleet(args: argparse.Namespace) -> int:
    """``argus fleet publish|list|remove``."""
    from alerts.control import ControlPublishError
    from argus.fleet.publish import describe, publish_site, read_fleet, remove_camera

    cfg = _worker_config(args.config)
    if cfg is None:
        return EXIT_START_FAILED
    setup_logging(args.log_level or "WARNING", args.log_format or "text")
    try:
        if args.fleet_cmd == "publish":
            site = load_config(Path(args.site))
            result = publish_site(cfg, site, model=args.model, prune=args.prune)
            print(
                f"fleet {cfg.fleet.topic}: {len(result.published)} published, "
                f"{len(result.unchanged)} unchanged, {len(result.removed)} removed"
            )
            for camera_id in result.published:
                print(f"  published {camera_id}")
            for camera_id in result.removed:
                print(f"  removed   {camera_id}")
        elif args.fleet_cmd == "list":
            view = read_fleet(cfg)
            lines = describe(view)
            print("\n".join(lines) if lines else f"fleet {cfg.fleet.topic}: no cameras")
        else:
            if not remove_camera(cfg, args.camera):
                print(f"argus: no camera {args.camera} in fleet {cfg.fleet.topic}", file=sys.stderr)
                return EXIT_FAILED
            print(f"fleet {cfg.fleet.topic}: camera {args.camera} removed")
    except ConfigError as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_START_FAILED
    except (TimeoutError, ControlPublishError) as e:
        print(f"argus: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def add_fleet_commands(sub: Any) -> None:
    """Add ``worker`` and ``fleet`` to the ``argus`` subcommands."""
    w = sub.add_parser("worker", help="run the fleet cameras a consumer group gives this worker")
    w.add_argument("--config", required=True, help="worker config (fleet, bus.kafka, detector)")
    w.set_defaults(fn=cmd_worker)

    f = sub.add_parser("fleet", help="the fleet's camera definitions on Kafka")
    fsub = f.add_subparsers(dest="fleet_cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", required=True, help="worker config naming the broker and the fleet topic"
    )
    fp = fsub.add_parser("publish", parents=[common], help="publish a site's cameras and rules")
    fp.add_argument("site", help="site file: cameras and rules, as in a config file")
    fp.add_argument("--model", help="the cameras need this model (default: any that serves)")
    fp.add_argument(
        "--prune", action="store_true", help="remove cameras on the topic the site lacks"
    )
    fsub.add_parser("list", parents=[common], help="list the fleet's cameras (and refusals)")
    fr = fsub.add_parser("remove", parents=[common], help="remove one camera from the fleet")
    fr.add_argument("camera")
    f.set_defaults(fn=cmd_fleet)
