-- The event log. `position` is the global order (rowid, assigned in commit order by the single
-- writer); `(stream, version)` is unique so two writers can never both append version n.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    event_id        TEXT    NOT NULL UNIQUE,
    stream          TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    correlation_id  TEXT,
    causation_id    TEXT,
    actor           TEXT    NOT NULL,
    traceparent     TEXT,
    payload         TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    UNIQUE (stream, version)
);
