-- Events of one stream from a version on, in version order (the columns of rows.rs).
SELECT position, event_id, stream, version, event_type, schema_version, occurred_at, recorded_at, correlation_id, causation_id, actor, traceparent, payload, hash
FROM lablet_events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3
