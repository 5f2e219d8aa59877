-- Singleton leases: which replica runs each background role, with a fencing token that grows
-- with every new holder.
CREATE TABLE lablet_leases (
    role        text PRIMARY KEY,
    holder      text        NOT NULL,
    token       bigint      NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- Replicas that said they are alive, for the cluster view.
CREATE TABLE lablet_replicas (
    id          text PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL
);
