"""Prometheus metrics of the pipeline (process-wide, exposed by the API's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_DECODED = Counter(
    "argus_frames_decoded_total", "Frames handed over by a camera's decoder.", ["camera"]
)
FRAMES_THINNED = Counter(
    "argus_frames_thinned_total",
    "Frames a quiet camera's source skipped on purpose (activity-driven decoding).",
    ["camera"],
)
FRAMES_DROPPED = Counter(
    "argus_frames_dropped_total",
    "Frames discarded on purpose (drop-oldest: the detector was busy).",
    ["camera"],
)
FRAMES_PROCESSED = Counter(
    "argus_frames_processed_total", "Frames that went through detector and selector.", ["camera"]
)
EVENTS = Counter("argus_events_total", "Events raised (starts only).", ["camera", "type"])
CAMERA_UP = Gauge("argus_camera_up", "1 while the camera is streaming, 0 otherwise.", ["camera"])
EVIDENCE_UP = Gauge(
    "argus_evidence_stream_up",
    "1 while the camera's evidence stream (its main stream, for clips) streams and is tied to "
    "its clock, 0 otherwise (clips then come from the analysed stream); cameras with an "
    "evidence_source only.",
    ["camera"],
)
CAMERA_RECONNECTS = Counter(
    "argus_camera_state_changes_total", "Camera source state changes.", ["camera", "state"]
)
DETECT_SECONDS = Histogram(
    "argus_detect_batch_seconds",
    "Wall time of one detector call (pre-processing, inference, decoding, NMS), seconds.",
    buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56),
)
BATCH_SIZE = Histogram(
    "argus_detect_batch_size", "Frames per detector call.", buckets=(1, 2, 4, 8, 16, 32, 64)
)
FRAME_LATENCY = Histogram(
    "argus_frame_to_event_seconds",
    "From a frame's wall time to its events being published, seconds.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FRAMES_DETECTED = Counter(
    "argus_frames_detected_total",
    "Frames the detector ran on (the rest were skipped by motion gating).",
    ["camera"],
)
EVENTS_HELD = Counter(
    "argus_events_held_total",
    "Event starts not forwarded, by reason (disabled, disarmed, suppressed, merged).",
    ["camera", "reason"],
)
RULE_RELOADS = Counter(
    "argus_rule_reloads_total", "Rule sets and suppressions applied at run time.", ["kind"]
)
POSE_BOXES = Counter(
    "argus_pose_boxes_total",
    "People the pose model was asked about (a rule's question: a person who may be down).",
    ["camera"],
)
POSE_SECONDS = Histogram(
    "argus_pose_seconds",
    "Wall time of one pose call (all the boxes of one frame of one camera), seconds.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
TRACK_SUMMARIES = Counter(
    "argus_track_summaries_total",
    "Track summaries for search: published (a track ended), interim (a long track, as it "
    "stands), flicker (seen on too few frames: none made), failed (not published: see the log).",
    ["camera", "outcome"],
)
INDEX_SECONDS = Counter(
    "argus_index_cpu_seconds_total",
    "CPU seconds spent making track summaries for search (colours, zones, thumbnails).",
    ["camera"],
)
