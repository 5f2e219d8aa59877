SELECT position, event_id, stream, version, event_type, schema_version, occurred_at, recorded_at,
       correlation_id, causation_id, actor, traceparent, payload, hash
FROM events
