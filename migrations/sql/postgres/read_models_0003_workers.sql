-- The workers read model: one document per CML worker, filtered by status and region.
CREATE TABLE lablet_rm_workers (
    id            text COLLATE "C" PRIMARY KEY,
    body          text   NOT NULL,
    last_position bigint NOT NULL,
    history_count integer NOT NULL DEFAULT 0,
    status        text,
    region        text
);
CREATE INDEX lablet_rm_workers_by_status ON lablet_rm_workers (status, id);
CREATE INDEX lablet_rm_workers_by_region ON lablet_rm_workers (region, id);
