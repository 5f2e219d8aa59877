-- Events after a position, in log order (the columns of rows.rs).
SELECT position, event_id, stream, version, event_type, schema_version, occurred_at, recorded_at, correlation_id, causation_id, actor, traceparent, payload, hash
FROM lablet_events WHERE position > $1 ORDER BY position LIMIT $2
