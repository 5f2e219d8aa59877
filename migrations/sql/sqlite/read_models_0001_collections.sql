-- Read-model documents: the body is JSON text served as it is stored; the fields queries filter
-- on are copied into indexed columns by the adapter on every write. `last_position` is the last
-- event applied to the document; `history_count` how many operation_history rows it has.
CREATE TABLE lab_records (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    history_count INTEGER NOT NULL DEFAULT 0,
    worker_id     TEXT,
    state         TEXT,
    removed_at    TEXT
);
CREATE INDEX lab_records_by_worker ON lab_records (worker_id, id);
CREATE INDEX lab_records_by_state ON lab_records (state, id);

CREATE TABLE lablet_instances (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    history_count INTEGER NOT NULL DEFAULT 0,
    state         TEXT,
    owner_id      TEXT,
    worker_id     TEXT
);
CREATE INDEX lablet_instances_by_state ON lablet_instances (state, id);
CREATE INDEX lablet_instances_by_owner ON lablet_instances (owner_id, id);
CREATE INDEX lablet_instances_by_worker ON lablet_instances (worker_id, id);

CREATE TABLE work_orders (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    history_count INTEGER NOT NULL DEFAULT 0,
    state         TEXT,
    kind          TEXT
);
CREATE INDEX work_orders_by_state ON work_orders (state, id);
CREATE INDEX work_orders_by_kind ON work_orders (kind, id);

-- Operations of every document, newest kept: rows beyond the 50 most recent are trimmed in
-- bulk once a document has gathered a few more than that, and reads take the newest 50.
CREATE TABLE operation_history (
    collection TEXT    NOT NULL,
    entity_id  TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    entry      TEXT    NOT NULL
);
CREATE UNIQUE INDEX operation_history_by_entity ON operation_history (collection, entity_id, position);

-- Each projection's last committed position, written in the same transaction as its documents.
CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
