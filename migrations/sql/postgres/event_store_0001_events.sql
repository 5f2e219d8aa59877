-- The event log on PostgreSQL.
--
-- Positions are handed out by the one row of lablet_log_head, which every append transaction
-- locks (UPDATE … RETURNING) and holds until it commits. Appends therefore commit one after the
-- other in position order, with no gaps (a rolled-back append rolls its positions back too),
-- and a reader that has seen position N has seen every committed position below N.
-- (stream, version) is unique, so no race can store two events at one version of a stream.
-- The payload is kept as the exact text that was hashed (json would accept, jsonb reorders).

CREATE TABLE lablet_log_head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint  NOT NULL
);
INSERT INTO lablet_log_head (id, position) VALUES (true, 0);

CREATE TABLE lablet_events (
    position       bigint      PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    stream         text        NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    correlation_id text,
    causation_id   text,
    actor          text        NOT NULL,
    traceparent    text,
    payload        text        NOT NULL,
    hash           text        NOT NULL,
    CONSTRAINT lablet_events_stream_version UNIQUE (stream, version),
    CHECK (position > 0 AND version > 0)
);
