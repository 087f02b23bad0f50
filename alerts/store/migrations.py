"""The SQLite schema of the alert store, as the ordered list of its migrations."""

from __future__ import annotations

import re
import sqlite3

# Migrations, applied in order; PRAGMA user_version = number applied.  Append only.
# Statements are split on ";" where what precedes it is a complete SQL statement
# (``split_statements``): a ";" inside a trigger's BEGIN ... END or inside a string
# literal does not end one.  ``ALTER TABLE t ADD COLUMN c``
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
    # 6: people, the audit trail and the alert lifecycle (issue 14).  Users (names unique
    # case-insensitively), their sessions and machine tokens hold hashes only; ``groups``
    # are JSON lists of camera groups.  ``audit`` is append-only: triggers refuse any UPDATE
    # or DELETE of a row, whoever asks.  Alerts gain their lifecycle (``state`` apart from
    # whether the event is ongoing); existing operator actions become closes:
    # acknowledged -> closed / no_action, false_positive -> closed / false_alarm, with the
    # acknowledgement's time, author and note as the close's.  ``status`` stays, following
    # the state, for older clients.
    """
    CREATE TABLE IF NOT EXISTS users (
        name                TEXT PRIMARY KEY COLLATE NOCASE,
        role                TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
        groups              TEXT NOT NULL,
        password_hash       TEXT NOT NULL,
        disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_at          REAL NOT NULL,
        updated_at          REAL NOT NULL,
        password_changed_at REAL
    ) STRICT;
    CREATE TABLE IF NOT EXISTS sessions (
        session_hash   TEXT PRIMARY KEY,
        user           TEXT NOT NULL COLLATE NOCASE
                       REFERENCES users (name) ON UPDATE CASCADE ON DELETE CASCADE,
        csrf_hash      TEXT NOT NULL,
        created_at     REAL NOT NULL,
        expires_at     REAL NOT NULL,
        last_seen_at   REAL NOT NULL,
        idle_timeout_s REAL NOT NULL,
        client         TEXT
    ) STRICT;
    CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user);
    CREATE TABLE IF NOT EXISTS tokens (
        token_id     TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
        groups       TEXT NOT NULL,
        secret_hash  TEXT NOT NULL,
        created_by   TEXT NOT NULL,
        created_at   REAL NOT NULL,
        expires_at   REAL,
        revoked_at   REAL,
        last_used_at REAL
    ) STRICT;
    CREATE TABLE IF NOT EXISTS audit (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        at          REAL NOT NULL,
        actor       TEXT NOT NULL,
        actor_kind  TEXT NOT NULL
                    CHECK (actor_kind IN ('user', 'token', 'api_key', 'system', 'anonymous')),
        action      TEXT NOT NULL,
        target_kind TEXT,
        target_id   TEXT,
        client      TEXT,
        detail      TEXT NOT NULL DEFAULT '{}'
    ) STRICT;
    CREATE INDEX IF NOT EXISTS audit_by_at ON audit (at);
    CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor, seq);
    CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target_kind, target_id, seq);
    CREATE INDEX IF NOT EXISTS audit_by_action ON audit (action, seq);
    CREATE TRIGGER IF NOT EXISTS audit_refuses_update BEFORE UPDATE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'audit entries are append-only');
    END;
    CREATE TRIGGER IF NOT EXISTS audit_refuses_delete BEFORE DELETE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'audit entries are append-only');
    END;
    CREATE TRIGGER IF NOT EXISTS audit_refuses_replace BEFORE INSERT ON audit
    WHEN EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
    BEGIN
        SELECT RAISE(ABORT, 'audit entries are append-only');
    END;
    ALTER TABLE alerts ADD COLUMN state TEXT NOT NULL DEFAULT 'new'
        CHECK (state IN ('new', 'claimed', 'escalated', 'closed'));
    ALTER TABLE alerts ADD COLUMN owner TEXT;
    ALTER TABLE alerts ADD COLUMN claimed_at REAL;
    ALTER TABLE alerts ADD COLUMN escalated_at REAL;
    ALTER TABLE alerts ADD COLUMN escalated_by TEXT;
    ALTER TABLE alerts ADD COLUMN escalated_to TEXT
        CHECK (escalated_to IN ('supervisors', 'external'));
    ALTER TABLE alerts ADD COLUMN escalation_ref TEXT;
    ALTER TABLE alerts ADD COLUMN closed_at REAL;
    ALTER TABLE alerts ADD COLUMN closed_by TEXT;
    ALTER TABLE alerts ADD COLUMN disposition TEXT
        CHECK (disposition IN ('true_incident', 'false_alarm', 'duplicate', 'test', 'no_action'));
    ALTER TABLE alerts ADD COLUMN close_note TEXT;
    UPDATE alerts SET state = 'closed',
        disposition = CASE status WHEN 'false_positive' THEN 'false_alarm' ELSE 'no_action' END,
        closed_at = acknowledged_at, closed_by = acknowledged_by, close_note = note
    WHERE status IN ('acknowledged', 'false_positive') AND state = 'new';
    CREATE INDEX IF NOT EXISTS alerts_by_state ON alerts (state, priority DESC, wall_time DESC);
    CREATE INDEX IF NOT EXISTS alerts_sla ON alerts (state, priority, received_at);
    CREATE INDEX IF NOT EXISTS alerts_by_received ON alerts (received_at);
    """,
    # 7: the key of the event's video clip (issue 15)
    """
    ALTER TABLE alerts ADD COLUMN clip TEXT;
    """,
    # 8: retention (issue 15).  ``jobs``: background jobs that must run once per period
    # however many replicas share the database; a replica claims a job with a conditional
    # write that only succeeds once ``due_at`` has passed (``sql_retention``).  An index
    # finds a camera's alerts older than its retention cutoff.  It is partial on purpose
    # (``wall_time`` is never NULL): SQLite uses it only for a query that says
    # ``wall_time IS NOT NULL`` (``expired_alerts``), so it does not take
    # ``camera_id = ? AND end_s IS NULL`` over from ``alerts_open_by_camera`` (without
    # statistics the planner picks either).
    """
    CREATE TABLE IF NOT EXISTS jobs (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        due_at     REAL NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS alerts_by_camera_time ON alerts (camera_id, wall_time)
        WHERE wall_time IS NOT NULL;
    """,
    # 9: the operators' queue (issue 16): the open states of a group's cameras, most urgent
    # first.  Without it both backends read every open alert of the site (SQLite through
    # alerts_sla, then a sort) or every alert of the cameras: 25 ms (SQLite) and 10 ms
    # (PostgreSQL) per page at 1,000,000 alerts (benchmarks/RESULTS.md, "Alert store").
    # ``state`` first: ``camera_id = ?`` lookups keep their own indexes (with ``camera_id``
    # first SQLite, which has no statistics, took it for ``alerts_open_by_camera``'s query).
    """
    CREATE INDEX IF NOT EXISTS alerts_queue
        ON alerts (state, camera_id, priority DESC, wall_time DESC);
    """,
    # 10: the store-wide change sequence (issue 17), which the operators' pages follow.
    # Every write of an alert row takes the next number of the one-row ``changes`` counter
    # into ``alerts.change_seq`` (triggers: no write path can forget it); a deleted alert
    # leaves its number in ``alert_removals``.  The counter is written inside the writing
    # transaction, so numbers are handed out in commit order (SQLite has one writer; on
    # PostgreSQL the counter row's lock is held to commit): a reader that has seen number
    # N has seen every change before it.  ``pruned_through``: removals at or below it were
    # deleted (a page that resumes from before it reloads its list).  ``geometry``: the
    # record's zone, line and track path for drawing over the snapshot (JSON text).
    """
    ALTER TABLE alerts ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alerts ADD COLUMN geometry TEXT;
    CREATE TABLE IF NOT EXISTS change_counter (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        seq            INTEGER NOT NULL,
        pruned_through INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    INSERT INTO change_counter (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
    CREATE TABLE IF NOT EXISTS alert_removals (
        change_seq INTEGER PRIMARY KEY,
        event_id   TEXT NOT NULL,
        camera_id  TEXT NOT NULL,
        removed_at REAL NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS alerts_by_change ON alerts (change_seq);
    DROP TRIGGER IF EXISTS alerts_change_on_insert;
    CREATE TRIGGER alerts_change_on_insert AFTER INSERT ON alerts BEGIN
        UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
        UPDATE alerts SET change_seq = (SELECT seq FROM change_counter WHERE id = 1)
            WHERE event_id = NEW.event_id;
    END;
    DROP TRIGGER IF EXISTS alerts_change_on_update;
    CREATE TRIGGER alerts_change_on_update AFTER UPDATE ON alerts
        WHEN NEW.change_seq = OLD.change_seq BEGIN
        UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
        UPDATE alerts SET change_seq = (SELECT seq FROM change_counter WHERE id = 1)
            WHERE event_id = NEW.event_id;
    END;
    DROP TRIGGER IF EXISTS alerts_change_on_delete;
    CREATE TRIGGER alerts_change_on_delete AFTER DELETE ON alerts BEGIN
        UPDATE change_counter SET seq = seq + 1 WHERE id = 1;
        INSERT INTO alert_removals (change_seq, event_id, camera_id, removed_at)
            VALUES ((SELECT seq FROM change_counter WHERE id = 1), OLD.event_id, OLD.camera_id,
                    (julianday('now') - 2440587.5) * 86400.0);
    END;
    """,
    # 11: track summaries for forensic search (issue 23; ``sql_tracks``).  One row per
    # track (``track_uid``; a redelivered summary replaces its row).  Times are UNIX seconds;
    # ``zones`` is the JSON list of zone names (matched as the quoted name: exact);
    # ``appearance`` the 33-number descriptor as 33 little-endian float16 (66 bytes).
    # Every search reads one time range, newest first: the indexes lead with what narrows
    # it (a camera, a colour) and end with ``first_ts``.  The colour indexes are partial (a
    # person has no body colour, a car no upper or lower one).  ``tracks_long`` and
    # ``tracks_long_duration`` hold the few tracks seen longer than
    # ``sql_tracks.LONG_TRACK_S`` (the predicate is repeated verbatim by the statements that
    # use them): the others are found within that much before a range's start, the long
    # ones within the longest one's duration.  Measured: benchmarks/RESULTS.md, "Forensic
    # search over track summaries".
    """
    CREATE TABLE IF NOT EXISTS tracks (
        track_uid   TEXT PRIMARY KEY,
        camera_id   TEXT NOT NULL,
        run_id      TEXT,
        track_id    INTEGER NOT NULL,
        label       TEXT NOT NULL,
        first_ts    REAL NOT NULL,
        last_ts     REAL NOT NULL,
        first_s     REAL,
        last_s      REAL,
        zones       TEXT NOT NULL,
        direction   TEXT NOT NULL
                    CHECK (direction IN ('left', 'right', 'up', 'down', 'still')),
        upper       TEXT,
        lower       TEXT,
        body        TEXT,
        upper_share REAL,
        lower_share REAL,
        body_share  REAL,
        width_px    REAL NOT NULL,
        height_px   REAL NOT NULL,
        height_frac REAL NOT NULL,
        samples     INTEGER NOT NULL,
        bbox_x1     REAL,
        bbox_y1     REAL,
        bbox_x2     REAL,
        bbox_y2     REAL,
        thumbnail   TEXT,
        appearance  BLOB,
        received_at REAL NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS tracks_by_time ON tracks (first_ts);
    CREATE INDEX IF NOT EXISTS tracks_by_camera ON tracks (camera_id, first_ts);
    CREATE INDEX IF NOT EXISTS tracks_by_upper ON tracks (upper, first_ts)
        WHERE upper IS NOT NULL;
    CREATE INDEX IF NOT EXISTS tracks_by_lower ON tracks (lower, first_ts)
        WHERE lower IS NOT NULL;
    CREATE INDEX IF NOT EXISTS tracks_by_body ON tracks (body, first_ts)
        WHERE body IS NOT NULL;
    CREATE INDEX IF NOT EXISTS tracks_long ON tracks (first_ts, last_ts)
        WHERE last_ts - first_ts > 600.0;
    CREATE INDEX IF NOT EXISTS tracks_long_duration ON tracks (last_ts - first_ts)
        WHERE last_ts - first_ts > 600.0;
    """,
)
ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+(\w+)\s+ADD\s+(?:COLUMN\s+)?(\w+)", re.IGNORECASE)


def split_statements(script: str) -> list[str]:
    """The statements of one migration, in order.

    Split on ";", a piece joined to the next while SQLite finds what it has so far an
    incomplete statement (``sqlite3.complete_statement``: a trigger's ``BEGIN ... END``, a
    string literal).  Migrations 1-5, which have no ";" inside a statement, split exactly
    as by ``script.split(";")`` (blank pieces dropped).  Each statement is returned without
    its final ";" and with its surrounding whitespace, as before.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece
        if sqlite3.complete_statement(pending + ";"):
            if pending.strip():
                statements.append(pending)
            pending = ""
        else:
            pending += ";"
    if pending.strip():  # an unfinished statement: let SQLite say what is wrong with it
        statements.append(pending)
    return statements
