-- Every event of a batch in one statement.
INSERT INTO lablet_events (position, event_id, stream, version, event_type, schema_version,
                           occurred_at, recorded_at, correlation_id, causation_id, actor,
                           traceparent, payload, hash)
SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[],
                     $6::integer[], $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[],
                     $11::text[], $12::text[], $13::text[], $14::text[])
