"""``PreviewMaker``: renders live pictures on its own thread, newest frame per camera only.

The pipeline's detector loop hands over a frame it has finished with (``offer``: no copy,
no drawing, a dictionary write); this thread scales, masks, draws and encodes it
(``render_preview``, a few milliseconds at 640 pixels) and gives the picture to the sink.
When it falls behind, a camera's older offer is replaced by its newer one: pictures are
live or nothing, and the detector loop never waits for them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Histogram

from alerts.live.board import LiveSink
from alerts.live.preview import Overlay, Preview, render_preview

logger = logging.getLogger("alerts.live")

PREVIEWS = Counter("argus_live_previews_total", "Live pictures made for watchers", ["camera"])
PREVIEW_SECONDS = Histogram(
    "argus_live_preview_seconds",
    "Time to scale, mask, draw and encode one live picture, seconds",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
)
PREVIEWS_REPLACED = Counter(
    "argus_live_previews_replaced_total",
    "Frames offered for a live picture and replaced by a newer one before being drawn",
)


@dataclass(frozen=True, slots=True)
class _Job:
    camera_id: str
    seq: int
    taken_at: float
    image: npt.NDArray[np.uint8]
    overlay: Overlay
    width: int


class PreviewMaker:
    """One thread making live pictures for ``sink``.

    Args:
        sink: Where pictures go (``LiveSink.picture``).
    """

    def __init__(self, sink: LiveSink) -> None:
        self._sink = sink
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._stop = False
        self._thread: threading.Thread | None = None
        self.made = 0
        self.failed = 0

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="live-previews", daemon=True)
            self._thread.start()

    def offer(
        self,
        camera_id: str,
        seq: int,
        taken_at: float,
        image: npt.NDArray[np.uint8],
        overlay: Overlay,
        width: int,
    ) -> None:
        """Queue a picture of ``image`` (not modified, not copied: the caller must not
        write to it afterwards) at most ``width`` pixels wide, replacing the camera's
        offer not yet drawn."""
        job = _Job(camera_id, seq, taken_at, image, overlay, width)
        with self._cond:
            if camera_id in self._jobs:
                PREVIEWS_REPLACED.inc()
            self._jobs[camera_id] = job
            self._cond.notify()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread; offers not yet drawn are dropped."""
        with self._cond:
            self._stop = True
            self._jobs.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                camera_id = next(iter(self._jobs))
                job = self._jobs.pop(camera_id)
            self._make(job)

    def _make(self, job: _Job) -> None:
        t0 = time.perf_counter()
        try:
            jpeg, w, h = render_preview(job.image, job.overlay, job.width)
        except Exception:  # a picture is an aid: log, go on with the next
            self.failed += 1
            logger.exception("live picture failed", extra={"camera_id": job.camera_id})
            return
        PREVIEW_SECONDS.observe(time.perf_counter() - t0)
        PREVIEWS.labels(job.camera_id).inc()
        self.made += 1
        try:
            self._sink.picture(Preview(job.camera_id, job.seq, job.taken_at, w, h, jpeg))
        except Exception:  # sinks should not raise; never let one stop the pictures
            logger.exception("live picture not delivered", extra={"camera_id": job.camera_id})
