-- Where event ids of a batch were stored already, if anywhere.
SELECT event_id, stream, version, position FROM lablet_events WHERE event_id = ANY($1)
