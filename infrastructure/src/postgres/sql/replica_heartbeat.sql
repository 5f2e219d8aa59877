-- A replica says it is alive.
INSERT INTO lablet_replicas (id, started_at, seen_at) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
