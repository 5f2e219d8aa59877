-- The workers read model: one document per CML worker, filtered by status and region.
CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    history_count INTEGER NOT NULL DEFAULT 0,
    status        TEXT,
    region        TEXT
);
CREATE INDEX workers_by_status ON workers (status, id);
CREATE INDEX workers_by_region ON workers (region, id);
