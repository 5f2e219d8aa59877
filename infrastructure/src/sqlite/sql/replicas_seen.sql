-- The replicas seen since a moment.
SELECT id, started_ms, seen_ms FROM replicas WHERE seen_ms >= ?1 ORDER BY id
