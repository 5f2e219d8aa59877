-- Read models on PostgreSQL: one table per collection (the body as the JSON text it is served
-- as, plus the fields queries filter on, copied from the body on every write, and how many
-- operations its history rows hold), history segments, and each projection's checkpoint,
-- generation and error, all written in one transaction per projection batch.

CREATE TABLE lablet_rm_lab_records (
    id            text COLLATE "C" PRIMARY KEY,
    body          text   NOT NULL,
    last_position bigint NOT NULL,
    history_count integer NOT NULL DEFAULT 0,
    worker_id     text,
    state         text,
    removed_at    text
);
CREATE INDEX lablet_rm_lab_records_by_worker ON lablet_rm_lab_records (worker_id, id);
CREATE INDEX lablet_rm_lab_records_by_state ON lablet_rm_lab_records (state, id);

CREATE TABLE lablet_rm_lablet_instances (
    id            text COLLATE "C" PRIMARY KEY,
    body          text   NOT NULL,
    last_position bigint NOT NULL,
    history_count integer NOT NULL DEFAULT 0,
    state         text,
    owner_id      text,
    worker_id     text
);
CREATE INDEX lablet_rm_lablet_instances_by_state ON lablet_rm_lablet_instances (state, id);
CREATE INDEX lablet_rm_lablet_instances_by_owner ON lablet_rm_lablet_instances (owner_id, id);
CREATE INDEX lablet_rm_lablet_instances_by_worker ON lablet_rm_lablet_instances (worker_id, id);

CREATE TABLE lablet_rm_work_orders (
    id            text COLLATE "C" PRIMARY KEY,
    body          text   NOT NULL,
    last_position bigint NOT NULL,
    history_count integer NOT NULL DEFAULT 0,
    state         text,
    kind          text
);
CREATE INDEX lablet_rm_work_orders_by_state ON lablet_rm_work_orders (state, id);
CREATE INDEX lablet_rm_work_orders_by_kind ON lablet_rm_work_orders (kind, id);

-- Operations of every document, in segments: each projection commit adds one row per document
-- holding the operations it added (a JSON array, oldest first). A segment is deleted once the
-- newer ones hold the 50 operations a document keeps; reads take the newest 50.
CREATE TABLE lablet_rm_history (
    collection     text    COLLATE "C" NOT NULL,
    entity_id      text    COLLATE "C" NOT NULL,
    first_position bigint  NOT NULL,
    entries        integer NOT NULL,
    body           text    NOT NULL,
    PRIMARY KEY (collection, entity_id, first_position)
);

CREATE TABLE lablet_rm_checkpoints (
    name           text PRIMARY KEY,
    position       bigint      NOT NULL,
    generation     bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL,
    last_error     text,
    error_position bigint,
    error_at       timestamptz
);

-- The outbox relays' state: how far each sink got, and the events it parked.
CREATE TABLE lablet_outbox_checkpoints (
    sink       text PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE lablet_outbox_parked (
    sink                 text        NOT NULL,
    event_id             uuid        NOT NULL,
    position             bigint      NOT NULL,
    subject              text        NOT NULL,
    event_type           text        NOT NULL,
    attempts             integer     NOT NULL,
    last_error           text        NOT NULL,
    held_behind          uuid,
    parked_at            timestamptz NOT NULL,
    redrive_requested_at timestamptz,
    PRIMARY KEY (sink, event_id)
);
CREATE INDEX lablet_outbox_parked_by_position ON lablet_outbox_parked (position, sink);
CREATE INDEX lablet_outbox_parked_by_subject ON lablet_outbox_parked (sink, subject, position);

-- API keys for machine callers: the secret is kept only as its SHA-256.
CREATE TABLE lablet_api_keys (
    id            text COLLATE "C" PRIMARY KEY,
    name          text        NOT NULL,
    roles         text[]      NOT NULL,
    secret_sha256 text        NOT NULL,
    created_at    timestamptz NOT NULL,
    created_by    text        NOT NULL,
    revoked_at    timestamptz
);
