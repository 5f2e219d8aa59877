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

-- Operations of every document, in segments: each projection commit appends one row per
-- document holding the operations it added (a JSON array, oldest first). Segments are clustered
-- by document, so a document's history is one or two pages; a segment is deleted once the newer
-- ones hold the 50 operations a document keeps, and reads take the newest 50.
CREATE TABLE operation_history (
    collection     TEXT    NOT NULL,
    entity_id      TEXT    NOT NULL,
    first_position INTEGER NOT NULL,
    entries        INTEGER NOT NULL,
    body           TEXT    NOT NULL,
    PRIMARY KEY (collection, entity_id, first_position)
) WITHOUT ROWID;

-- Each projection's last committed position, written in the same transaction as its documents.
CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
