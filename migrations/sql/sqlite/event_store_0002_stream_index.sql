-- The stream index moves out of the commit path. `(stream, version)` stays unique, enforced by
-- the single writer under SQLite's write lock, and is indexed in `stream_index` behind the
-- log: the writer indexes the newest events every few thousand appends and whenever it is
-- idle, in a transaction of their own. A commit then writes only pages at the end of the log
-- instead of one random index leaf per append. Events after `stream_index_progress.position`
-- (the tail, a few thousand at most) are found by scanning the tail.
CREATE TABLE events_unindexed (
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
    hash            TEXT    NOT NULL
);
INSERT INTO events_unindexed SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events_unindexed RENAME TO events;

-- Keyed by a 64-bit hash of the stream name (the writer computes it: the first 8 bytes of its
-- SHA-256) to keep entries small; readers also match `events.stream`, so a hash shared by two
-- streams costs a wasted row, never a wrong answer.
CREATE TABLE stream_index (
    stream_key INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (stream_key, version, position)
) WITHOUT ROWID;

-- Events after `position` are the unindexed tail. Existing events are indexed by the writer
-- when it first starts.
CREATE TABLE stream_index_progress (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO stream_index_progress (id, position) VALUES (1, 0);
