-- The replicas seen since a moment.
SELECT id, started_at, seen_at FROM lablet_replicas WHERE seen_at >= $1 ORDER BY id
