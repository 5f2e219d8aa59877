-- A replica says it is alive.
INSERT INTO replicas (id, started_ms, seen_ms) VALUES (?1, ?2, ?3)
ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms
