-- The worker templates read model: one document per template, filtered by name and license.
CREATE TABLE worker_templates (
    id            TEXT PRIMARY KEY,
    body          TEXT    NOT NULL,
    last_position INTEGER NOT NULL,
    history_count INTEGER NOT NULL DEFAULT 0,
    name          TEXT,
    license_type  TEXT
);
CREATE INDEX worker_templates_by_name ON worker_templates (name, id);
CREATE INDEX worker_templates_by_license_type ON worker_templates (license_type, id);
