-- Singleton leases: which replica runs each background role, with a fencing token that grows
-- with every new holder. Times are Unix milliseconds.
CREATE TABLE leases (
    role        TEXT PRIMARY KEY,
    holder      TEXT    NOT NULL,
    token       INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);

-- Replicas that said they are alive, for the cluster view.
CREATE TABLE replicas (
    id          TEXT PRIMARY KEY,
    started_ms  INTEGER NOT NULL,
    seen_ms     INTEGER NOT NULL
);
