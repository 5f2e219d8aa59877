-- The outbox relays' state: how far each sink got, and the events it parked.
CREATE TABLE outbox_checkpoints (
    sink       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE outbox_parked (
    sink                 TEXT NOT NULL,
    event_id             TEXT NOT NULL,
    position             INTEGER NOT NULL,
    subject              TEXT NOT NULL,
    event_type           TEXT NOT NULL,
    attempts             INTEGER NOT NULL,
    last_error           TEXT NOT NULL,
    held_behind          TEXT,
    parked_at            TEXT NOT NULL,
    redrive_requested_at TEXT,
    PRIMARY KEY (sink, event_id)
) WITHOUT ROWID;

CREATE INDEX outbox_parked_by_position ON outbox_parked (position, sink);
CREATE INDEX outbox_parked_by_subject ON outbox_parked (sink, subject, position);
