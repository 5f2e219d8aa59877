-- Read-model documents: the body is JSON; the fields queries filter on are generated columns
-- with indexes. `last_position` is the last event applied to the document.
CREATE TABLE lab_records (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    worker_id     TEXT GENERATED ALWAYS AS (json_extract(body, '$.worker_id')) VIRTUAL,
    state         TEXT GENERATED ALWAYS AS (json_extract(body, '$.state')) VIRTUAL,
    removed_at    TEXT GENERATED ALWAYS AS (json_extract(body, '$.removed_at')) VIRTUAL
);
CREATE INDEX lab_records_by_worker ON lab_records (worker_id, id);
CREATE INDEX lab_records_by_state ON lab_records (state, id);

CREATE TABLE lablet_instances (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    state         TEXT GENERATED ALWAYS AS (json_extract(body, '$.state')) VIRTUAL,
    owner_id      TEXT GENERATED ALWAYS AS (json_extract(body, '$.owner_id')) VIRTUAL,
    worker_id     TEXT GENERATED ALWAYS AS (json_extract(body, '$.worker_id')) VIRTUAL
);
CREATE INDEX lablet_instances_by_state ON lablet_instances (state, id);
CREATE INDEX lablet_instances_by_owner ON lablet_instances (owner_id, id);
CREATE INDEX lablet_instances_by_worker ON lablet_instances (worker_id, id);

CREATE TABLE work_orders (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    state         TEXT GENERATED ALWAYS AS (json_extract(body, '$.state')) VIRTUAL,
    kind          TEXT GENERATED ALWAYS AS (json_extract(body, '$.kind')) VIRTUAL
);
CREATE INDEX work_orders_by_state ON work_orders (state, id);
CREATE INDEX work_orders_by_kind ON work_orders (kind, id);

-- The 50 most recent operations of every document, trimmed as they are appended.
CREATE TABLE operation_history (
    collection TEXT    NOT NULL,
    entity_id  TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    entry      TEXT    NOT NULL,
    PRIMARY KEY (collection, entity_id, position)
) WITHOUT ROWID;

-- Each projection's last committed position, written in the same transaction as its documents.
CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
