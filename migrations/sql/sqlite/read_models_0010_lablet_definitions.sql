-- The lablet definitions read model: one document per definition with its versions, filtered
-- by name and by the newest version's status.
CREATE TABLE lablet_definitions (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    history_count INTEGER NOT NULL DEFAULT 0,
    name          TEXT,
    status        TEXT
);
CREATE INDEX lablet_definitions_by_name ON lablet_definitions (name, id);
CREATE INDEX lablet_definitions_by_status ON lablet_definitions (status, id);
