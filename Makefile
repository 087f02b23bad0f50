# Argus — the two commands a new user needs are `make demo` and `make test`.
# Everything else here is what those two depend on, plus faster subsets for local work.

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
FOOTAGE := /usr/share/doc/opencv-doc/examples/data/vtest.avi
# Debian packages: the bundled footage, and a real RTSP camera (GStreamer) for the ingest tests.
APT_FOOTAGE := opencv-doc
APT_RTSP := gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-plugins-good \
            gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-gi
# Debian's headless browser, for the operator page's end-to-end checks.
APT_BROWSER := chromium
# Debian's PostgreSQL binaries, for the local server deploy/postgres.py runs (tests, one machine).
APT_POSTGRES := postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-unit test-fast lint bench bench-accuracy infra-up infra-down infra-status setup venv footage rtsp-deps browser-deps postgres-deps model clean help

help:
	@echo "make demo   - set everything up and run the live demo (API on http://127.0.0.1:8000)"
	@echo "make test   - set everything up and run every test CI runs (unit, integration, e2e)"
	@echo "make test-unit | test-fast | lint | bench | model | footage"
	@echo "make infra-up | infra-down | infra-status - local Kafka-protocol broker + S3 server"
	@echo "  (PostgreSQL too: .venv/bin/python -m deploy.localstack up --with-postgres)"

demo: setup model
	$(BIN)/argus demo

test: setup model rtsp-deps browser-deps postgres-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	ARGUS_NO_SKIP=1 $(BIN)/pytest -q

# Quick local loop: no model, no footage, no servers.
test-unit: venv
	$(BIN)/pytest -q -m unit

# Everything but the slow end-to-end runs.
test-fast: setup model
	$(BIN)/pytest -q -m "not e2e"

# Throughput of `argus run` on the footage against its decode/detect ceilings (same run).
bench: setup model
	$(BIN)/python -m benchmarks.pipeline_fps --json benchmarks/last-pipeline-fps.json

# Local Kafka-protocol broker (Tansu, durable on S3) and S3 server (SeaweedFS) on loopback,
# under $$ARGUS_HOME/infra; `make test` starts its own on free ports and needs neither.
infra-up: venv
	$(BIN)/python -m deploy.localstack up
infra-down: venv
	$(BIN)/python -m deploy.localstack down
infra-status: venv
	$(BIN)/python -m deploy.localstack status

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

setup: venv footage

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

footage:
	@if [ -f $(FOOTAGE) ]; then echo "footage: $(FOOTAGE) present"; else \
	  echo "footage: installing Debian's $(APT_FOOTAGE) (once, ~100 MB)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_FOOTAGE) >/dev/null; \
	  test -f $(FOOTAGE); fi

# Probed with Debian's own python3 (the one that runs deploy/rtsp_server.py).
RTSP_PROBE := import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0'); \
  from gi.repository import Gst, GstRtspServer; Gst.init(None); \
  assert all(Gst.ElementFactory.find(e) for e in ('x264enc','rtph264pay','avdec_h264','decodebin'))
rtsp-deps:
	@if /usr/bin/python3 -c "$(RTSP_PROBE)" 2>/dev/null; then echo "rtsp-deps: present"; else \
	  echo "rtsp-deps: installing GStreamer RTSP server for the live-camera tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_RTSP) >/dev/null; fi

browser-deps:
	@if command -v chromium >/dev/null && command -v node >/dev/null; then echo "browser-deps: present"; else \
	  echo "browser-deps: installing Debian's chromium (and nodejs) for the operator page tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_BROWSER) $$(command -v node >/dev/null || echo nodejs) >/dev/null; fi

# Debian's package also creates and starts a system cluster on 5432; ours picks a free port.
postgres-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgres-deps: present"; else \
	  echo "postgres-deps: installing Debian's postgresql for the local PostgreSQL server"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_POSTGRES) >/dev/null; fi

# Obtain, convert and verify the default detector (NanoDet-g) into $ARGUS_HOME/models.
model: venv footage
	$(BIN)/argus models pull

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
