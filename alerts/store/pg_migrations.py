"""The PostgreSQL schema of the alert store, as the ordered list of its migrations.

Append only; ``argus_schema_version.version`` is the number applied.  Each migration is one
script run in one transaction (DDL is transactional in PostgreSQL) under an advisory lock,
so replicas starting at once apply it once (``postgres.PostgresAlertStore``).

Migration 1 is the whole schema of SQLite's migrations 1-8 (``migrations.py``): the same
tables, columns, constraints and indexes, so the shared SQL (``sql_*``) runs on both; each
later one is a later SQLite one (2 is 9).  A change is made in both lists (a test compares
the two schemas' tables, columns and index names).
Where the two differ, and why:

* ``REAL`` is ``double precision``; ``INTEGER`` is ``bigint`` (``integer`` where SQLite's
  ``CHECK`` keeps it small); times stay UNIX seconds, as in SQLite.
* Text that SQLite compares byte by byte (ids, names of cameras, rules, actions) is
  ``COLLATE "C"`` here, so ordering and the audit's action-prefix ranges agree with SQLite
  whatever the database's locale.  User names (``users.name``, ``sessions."user"``) and
  ``alerts.owner`` compare ignoring case, as SQLite's ``COLLATE NOCASE``, through a
  nondeterministic ICU collation (``argus_nocase``; no extension, only ``CREATE`` on the
  schema is needed), so ``WHERE name = ?`` and the unique key ignore case as there.
* ``audit.seq`` is an identity column; the append-only rule is a trigger function that
  refuses ``UPDATE``, ``DELETE`` and ``TRUNCATE``.
* ``sessions.user`` is ``"user"`` (a reserved word here; the shared SQL quotes it).
"""

from __future__ import annotations

PG_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE COLLATION IF NOT EXISTS argus_nocase
        (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

    CREATE TABLE alerts (
        event_id        text COLLATE "C" PRIMARY KEY,
        schema_version  integer NOT NULL,
        camera_id       text COLLATE "C" NOT NULL,
        type            text COLLATE "C" NOT NULL,
        rule_id         text COLLATE "C" NOT NULL,
        zone            text COLLATE "C",
        track_id        bigint,
        label           text COLLATE "C",
        score           double precision,
        priority        integer NOT NULL,
        start_s         double precision NOT NULL,
        end_s           double precision,
        bbox_x1         double precision,
        bbox_y1         double precision,
        bbox_x2         double precision,
        bbox_y2         double precision,
        start_seq       bigint NOT NULL,
        snapshot        text,
        wall_time       double precision NOT NULL,
        status          text NOT NULL DEFAULT 'new'
                        CHECK (status IN ('new', 'acknowledged', 'false_positive')),
        acknowledged_at double precision,
        acknowledged_by text,
        note            text,
        received_at     double precision NOT NULL,
        line            text COLLATE "C",
        direction       text CHECK (direction IN ('+', '-')),
        details         text DEFAULT '{}',
        run_id          text COLLATE "C",
        end_reason      text CHECK (end_reason IN ('ended', 'interrupted')),
        reason          text,
        state           text NOT NULL DEFAULT 'new'
                        CHECK (state IN ('new', 'claimed', 'escalated', 'closed')),
        owner           text COLLATE argus_nocase,
        claimed_at      double precision,
        escalated_at    double precision,
        escalated_by    text,
        escalated_to    text CHECK (escalated_to IN ('supervisors', 'external')),
        escalation_ref  text,
        closed_at       double precision,
        closed_by       text,
        disposition     text CHECK (disposition IN
                        ('true_incident', 'false_alarm', 'duplicate', 'test', 'no_action')),
        close_note      text,
        clip            text
    );
    CREATE INDEX alerts_by_urgency ON alerts (priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_camera ON alerts (camera_id, priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_status ON alerts (status, priority DESC, wall_time DESC);
    CREATE INDEX alerts_by_type ON alerts (type, priority DESC, wall_time DESC);
    CREATE INDEX alerts_open_by_camera ON alerts (camera_id) WHERE end_s IS NULL;
    CREATE INDEX alerts_by_state ON alerts (state, priority DESC, wall_time DESC);
    CREATE INDEX alerts_sla ON alerts (state, priority, received_at);
    CREATE INDEX alerts_by_received ON alerts (received_at);
    CREATE INDEX alerts_by_camera_time ON alerts (camera_id, wall_time);

    CREATE TABLE suppressions (
        suppression_id  text COLLATE "C" PRIMARY KEY,
        camera_id       text COLLATE "C" NOT NULL,
        rule_id         text COLLATE "C",
        zone            text COLLATE "C",
        label           text COLLATE "C",
        region_x1       double precision,
        region_y1       double precision,
        region_x2       double precision,
        region_y2       double precision,
        expires_at      double precision NOT NULL,
        created_at      double precision NOT NULL,
        source_event_id text,
        note            text NOT NULL DEFAULT ''
    );
    CREATE INDEX suppressions_by_expiry ON suppressions (expires_at);

    CREATE TABLE control_documents (
        name       text COLLATE "C" PRIMARY KEY,
        revision   bigint NOT NULL CHECK (revision >= 1),
        body       text NOT NULL,
        updated_at double precision NOT NULL
    );

    CREATE TABLE worker_runs (
        camera_id   text COLLATE "C" PRIMARY KEY,
        run_id      text COLLATE "C" NOT NULL,
        started_at  double precision NOT NULL,
        received_at double precision NOT NULL
    );

    CREATE TABLE users (
        name                text COLLATE argus_nocase PRIMARY KEY,
        role                text NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
        groups              text NOT NULL,
        password_hash       text NOT NULL,
        disabled            integer NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        created_at          double precision NOT NULL,
        updated_at          double precision NOT NULL,
        password_changed_at double precision
    );
    CREATE TABLE sessions (
        session_hash   text COLLATE "C" PRIMARY KEY,
        "user"         text COLLATE argus_nocase NOT NULL
                       REFERENCES users (name) ON UPDATE CASCADE ON DELETE CASCADE,
        csrf_hash      text NOT NULL,
        created_at     double precision NOT NULL,
        expires_at     double precision NOT NULL,
        last_seen_at   double precision NOT NULL,
        idle_timeout_s double precision NOT NULL,
        client         text
    );
    CREATE INDEX sessions_by_user ON sessions ("user");
    CREATE TABLE tokens (
        token_id     text COLLATE "C" PRIMARY KEY,
        name         text NOT NULL,
        role         text NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
        groups       text NOT NULL,
        secret_hash  text NOT NULL,
        created_by   text NOT NULL,
        created_at   double precision NOT NULL,
        expires_at   double precision,
        revoked_at   double precision,
        last_used_at double precision
    );

    CREATE TABLE audit (
        seq         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at          double precision NOT NULL,
        actor       text COLLATE "C" NOT NULL,
        actor_kind  text NOT NULL
                    CHECK (actor_kind IN ('user', 'token', 'api_key', 'system', 'anonymous')),
        action      text COLLATE "C" NOT NULL,
        target_kind text COLLATE "C",
        target_id   text COLLATE "C",
        client      text,
        detail      text NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_by_at ON audit (at);
    CREATE INDEX audit_by_actor ON audit (actor, seq);
    CREATE INDEX audit_by_target ON audit (target_kind, target_id, seq);
    CREATE INDEX audit_by_action ON audit (action, seq);
    CREATE FUNCTION argus_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit entries are append-only';
    END
    $$;
    CREATE TRIGGER audit_refuses_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION argus_audit_append_only();
    CREATE TRIGGER audit_refuses_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION argus_audit_append_only();

    CREATE TABLE jobs (
        name       text COLLATE "C" PRIMARY KEY,
        holder     text NOT NULL,
        claimed_at double precision NOT NULL,
        due_at     double precision NOT NULL
    );
    """,
    # 2: the operators' queue (SQLite's migration 9).  Built inside the migration's
    # transaction (CONCURRENTLY cannot be): writes wait while it builds, about 3 s at
    # 1,000,000 alerts on the 2-core test machine.
    """
    CREATE INDEX IF NOT EXISTS alerts_queue
        ON alerts (state, camera_id, priority DESC, wall_time DESC);
    """,
    # 3: the change sequence (SQLite's migration 10, which says why).  One trigger function
    # numbers inserts and updates (BEFORE: the number is written with the row; an update
    # that changes nothing, or the insert of an event id already stored, takes none); the
    # counter row stays locked until the writing transaction commits, so numbers are visible
    # in order.  The functions keep the schema they were created in (SET search_path FROM
    # CURRENT), whatever a session's path.
    """
    ALTER TABLE alerts ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
    ALTER TABLE alerts ADD COLUMN geometry text;
    CREATE TABLE change_counter (
        id             integer PRIMARY KEY CHECK (id = 1),
        seq            bigint NOT NULL,
        pruned_through bigint NOT NULL DEFAULT 0
    );
    INSERT INTO change_counter (id, seq) VALUES (1, 0);
    CREATE TABLE alert_removals (
        change_seq bigint PRIMARY KEY,
        event_id   text COLLATE "C" NOT NULL,
        camera_id  text COLLATE "C" NOT NULL,
        removed_at double precision NOT NULL
    );
    CREATE INDEX alerts_by_change ON alerts (change_seq);
    CREATE FUNCTION argus_alert_changed() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;
        END IF;
        -- a record of a stored event (a replay): its INSERT ... ON CONFLICT DO NOTHING
        -- inserts nothing, so it takes no number (nor the counter's lock)
        IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM alerts WHERE event_id = NEW.event_id) THEN
            RETURN NEW;
        END IF;
        UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO NEW.change_seq;
        RETURN NEW;
    END
    $$;
    CREATE TRIGGER alerts_change BEFORE INSERT OR UPDATE ON alerts
        FOR EACH ROW EXECUTE FUNCTION argus_alert_changed();
    CREATE FUNCTION argus_alert_removed() RETURNS trigger LANGUAGE plpgsql
        SET search_path FROM CURRENT AS $$
    DECLARE
        number bigint;
    BEGIN
        UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO number;
        INSERT INTO alert_removals (change_seq, event_id, camera_id, removed_at)
            VALUES (number, OLD.event_id, OLD.camera_id, extract(epoch FROM clock_timestamp()));
        RETURN OLD;
    END
    $$;
    CREATE TRIGGER alerts_removed AFTER DELETE ON alerts
        FOR EACH ROW EXECUTE FUNCTION argus_alert_removed();
    """,
    # 4: track summaries for forensic search (SQLite's migration 11, which says why).
    # ``appearance`` is bytea (the same 66 bytes).
    """
    CREATE TABLE tracks (
        track_uid   text COLLATE "C" PRIMARY KEY,
        camera_id   text COLLATE "C" NOT NULL,
        run_id      text COLLATE "C",
        track_id    bigint NOT NULL,
        label       text COLLATE "C" NOT NULL,
        first_ts    double precision NOT NULL,
        last_ts     double precision NOT NULL,
        first_s     double precision,
        last_s      double precision,
        zones       text COLLATE "C" NOT NULL,
        direction   text NOT NULL
                    CHECK (direction IN ('left', 'right', 'up', 'down', 'still')),
        upper       text COLLATE "C",
        lower       text COLLATE "C",
        body        text COLLATE "C",
        upper_share double precision,
        lower_share double precision,
        body_share  double precision,
        width_px    double precision NOT NULL,
        height_px   double precision NOT NULL,
        height_frac double precision NOT NULL,
        samples     bigint NOT NULL,
        bbox_x1     double precision,
        bbox_y1     double precision,
        bbox_x2     double precision,
        bbox_y2     double precision,
        thumbnail   text,
        appearance  bytea,
        received_at double precision NOT NULL
    );
    CREATE INDEX tracks_by_time ON tracks (first_ts);
    CREATE INDEX tracks_by_camera ON tracks (camera_id, first_ts);
    CREATE INDEX tracks_by_upper ON tracks (upper, first_ts) WHERE upper IS NOT NULL;
    CREATE INDEX tracks_by_lower ON tracks (lower, first_ts) WHERE lower IS NOT NULL;
    CREATE INDEX tracks_by_body ON tracks (body, first_ts) WHERE body IS NOT NULL;
    CREATE INDEX tracks_long ON tracks (first_ts, last_ts) WHERE last_ts - first_ts > 600.0;
    CREATE INDEX tracks_long_duration ON tracks ((last_ts - first_ts))
        WHERE last_ts - first_ts > 600.0;
    """,
)
