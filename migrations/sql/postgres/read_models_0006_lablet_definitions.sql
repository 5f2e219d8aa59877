-- The lablet definitions read model: one document per definition with its versions, filtered
-- by name and by the newest version's status.
CREATE TABLE lablet_rm_lablet_definitions (
    id            text COLLATE "C" PRIMARY KEY,
    body          text   NOT NULL,
    last_position bigint NOT NULL,
    history_count integer NOT NULL DEFAULT 0,
    name          text,
    status        text
);
CREATE INDEX lablet_rm_lablet_definitions_by_name ON lablet_rm_lablet_definitions (name, id);
CREATE INDEX lablet_rm_lablet_definitions_by_status ON lablet_rm_lablet_definitions (status, id);
