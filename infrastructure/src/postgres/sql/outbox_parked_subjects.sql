-- Each held subject of a sink with its oldest parked event.
SELECT DISTINCT ON (subject) subject, event_id FROM lablet_outbox_parked
    WHERE sink = $1 ORDER BY subject, position
