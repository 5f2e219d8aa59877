INSERT INTO events (
    event_id, stream, version, event_type, schema_version, occurred_at, recorded_at,
    correlation_id, causation_id, actor, traceparent, payload, hash
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
