SELECT e.position, e.event_id, e.stream, e.version, e.event_type, e.schema_version, e.occurred_at, e.recorded_at,
       e.correlation_id, e.causation_id, e.actor, e.traceparent, e.payload, e.hash
FROM stream_index i JOIN events e ON e.position = i.position
WHERE i.stream_key = ?1 AND e.stream = ?2 AND i.version >= ?3
ORDER BY i.version
LIMIT ?4
