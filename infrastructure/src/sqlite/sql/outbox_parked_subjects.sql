-- Each held subject of a sink with its oldest parked event.
SELECT subject, event_id, min(position) FROM outbox_parked WHERE sink = ?1 GROUP BY subject
