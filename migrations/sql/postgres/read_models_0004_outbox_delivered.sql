-- How far each relay had read and what it held undelivered when it last saved (for a lag that
-- is what is really outstanding), and the subjects it delivered beyond its checkpoint (so a
-- restart does not send them again).
ALTER TABLE lablet_outbox_checkpoints ADD COLUMN read_position BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lablet_outbox_checkpoints ADD COLUMN outstanding BIGINT NOT NULL DEFAULT 0;

CREATE TABLE lablet_outbox_delivered (
    sink     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (sink, subject)
);
