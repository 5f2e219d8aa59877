-- The worker templates read model: one document per template, filtered by name and license.
CREATE TABLE lablet_rm_worker_templates (
    id            text COLLATE "C" PRIMARY KEY,
    body          text   NOT NULL,
    last_position bigint NOT NULL,
    history_count integer NOT NULL DEFAULT 0,
    name          text,
    license_type  text
);
CREATE INDEX lablet_rm_worker_templates_by_name ON lablet_rm_worker_templates (name, id);
CREATE INDEX lablet_rm_worker_templates_by_license_type ON lablet_rm_worker_templates (license_type, id);
