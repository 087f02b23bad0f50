"""The SQLite schema of the alert store, as the ordered list of its migrations."""

from __future__ import annotations

import re

# Migrations, applied in order; PRAGMA user_version = number applied.  Append only.
# Statements are split on ";" (no ";" inside a statement).  ``ALTER TABLE t ADD COLUMN c``
# is guarded by the runner: skipped when ``t`` already has ``c`` (SQLite has no
# ``ADD COLUMN IF NOT EXISTS``), so a column added by hand or by a newer build of this
# code does not wedge the migration.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE alerts (
        event_id        TEXT PRIMARY KEY,
        schema_version  INTEGER NOT NULL,
        camera_id       TEXT NOT NULL,
        type            TEXT NOT NULL,
        rule_id         TEXT NOT NULL,
        zone            TEXT,
        track_id        INTEGER,
        label           TEXT,
        score           REAL,
        priority        INTEGER NOT NULL,
        start_s         REAL NOT NULL,
        end_s           REAL,
        bbox_x1         REAL,
        bbox_y1         REAL,
        bbox_x2         REAL,
        bbox_y2         REAL,
        start_seq       INTEGER NOT NULL,
        snapshot        TEXT,
        wall_time       REAL NOT NULL,
        status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'acknowledged')),
        acknowledged_at REAL,
        acknowledged_by TEXT,
        note            TEXT,
        received_at     REAL NOT NULL
    ) STRICT;
    CREATE INDEX alerts_by_urgency ON alerts (priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_camera ON alerts (camera_id, priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_status ON alerts (status, priority DESC, wall_time DESC);
    """,
    # 2: the control plane (suppressions, rules document) and the "false_positive" status.
    # SQLite cannot change a CHECK constraint in place: the alerts table is rebuilt (same
    # columns, rows copied) inside the migration's transaction.  IF NOT EXISTS keeps the
    # new tables harmless should they already be there.
    """
    DROP TABLE IF EXISTS alerts_v2;
    CREATE TABLE alerts_v2 (
        event_id        TEXT PRIMARY KEY,
        schema_version  INTEGER NOT NULL,
        camera_id       TEXT NOT NULL,
        type            TEXT NOT NULL,
        rule_id         TEXT NOT NULL,
        zone            TEXT,
        track_id        INTEGER,
        label           TEXT,
        score           REAL,
        priority        INTEGER NOT NULL,
        start_s         REAL NOT NULL,
        end_s           REAL,
        bbox_x1         REAL,
        bbox_y1         REAL,
        bbox_x2         REAL,
        bbox_y2         REAL,
        start_seq       INTEGER NOT NULL,
        snapshot        TEXT,
        wall_time       REAL NOT NULL,
        status          TEXT NOT NULL DEFAULT 'new'
                        CHECK (status IN ('new', 'acknowledged', 'false_positive')),
        acknowledged_at REAL,
        acknowledged_by TEXT,
        note            TEXT,
        received_at     REAL NOT NULL
    ) STRICT;
    INSERT INTO alerts_v2 (
        event_id, schema_version, camera_id, type, rule_id, zone, track_id, label,
        score, priority, start_s, end_s, bbox_x1, bbox_y1, bbox_x2, bbox_y2, start_seq,
        snapshot, wall_time, status, acknowledged_at, acknowledged_by, note, received_at
    ) SELECT
        event_id, schema_version, camera_id, type, rule_id, zone, track_id, label,
        score, priority, start_s, end_s, bbox_x1, bbox_y1, bbox_x2, bbox_y2, start_seq,
        snapshot, wall_time, status, acknowledged_at, acknowledged_by, note, received_at
    FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_v2 RENAME TO alerts;
    CREATE INDEX alerts_by_urgency ON alerts (priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_camera ON alerts (camera_id, priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_status ON alerts (status, priority DESC, wall_time DESC);
    CREATE TABLE IF NOT EXISTS suppressions (
        suppression_id  TEXT PRIMARY KEY,
        camera_id       TEXT NOT NULL,
        rule_id         TEXT,
        zone            TEXT,
        label           TEXT,
        region_x1       REAL,
        region_y1       REAL,
        region_x2       REAL,
        region_y2       REAL,
        expires_at      REAL NOT NULL,
        created_at      REAL NOT NULL,
        source_event_id TEXT,
        note            TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX IF NOT EXISTS suppressions_by_expiry ON suppressions (expires_at);
    CREATE TABLE IF NOT EXISTS control_documents (
        name       TEXT PRIMARY KEY,
        revision   INTEGER NOT NULL CHECK (revision >= 1),
        body       TEXT NOT NULL,
        updated_at REAL NOT NULL
    ) STRICT;
    """,
    # 3: the optional record fields (schema 1): line, direction and details (a JSON
    # object as text, '{}' when the record had none; NULL read as {}).  Existing rows
    # keep everything and get NULL, NULL, '{}'.  Plus an index for the type filter.
    """
    ALTER TABLE alerts ADD COLUMN line TEXT;
    ALTER TABLE alerts ADD COLUMN direction TEXT CHECK (direction IN ('+', '-'));
    ALTER TABLE alerts ADD COLUMN details TEXT DEFAULT '{}';
    CREATE INDEX IF NOT EXISTS alerts_by_type ON alerts (type, priority DESC, wall_time DESC);
    """,
    # 4: worker runs.  ``run_id``: the run that sent the alert's first record (NULL for
    # existing rows).  ``end_reason``: 'ended' (end record) or 'interrupted' (closed when
    # a new run of its camera started), NULL while open; existing ended rows get 'ended'.
    # ``worker_runs``: the latest run each camera announced, so a stale marker (a Kafka
    # redelivery after a later run's) closes nothing.  A partial index finds a camera's
    # open alerts.
    """
    ALTER TABLE alerts ADD COLUMN run_id TEXT;
    ALTER TABLE alerts ADD COLUMN end_reason TEXT CHECK (end_reason IN ('ended', 'interrupted'));
    UPDATE alerts SET end_reason = 'ended' WHERE end_s IS NOT NULL AND end_reason IS NULL;
    CREATE INDEX IF NOT EXISTS alerts_open_by_camera ON alerts (camera_id) WHERE end_s IS NULL;
    CREATE TABLE IF NOT EXISTS worker_runs (
        camera_id   TEXT PRIMARY KEY,
        run_id      TEXT NOT NULL,
        started_at  REAL NOT NULL,
        received_at REAL NOT NULL
    ) STRICT;
    """,
    # 5: the reason in words (the record's optional ``reason``; NULL for older rows).
    """
    ALTER TABLE alerts ADD COLUMN reason TEXT;
    """,
)
ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+(?:COLUMN\s+)?(\w+)", re.IGNORECASE)
