-- Parked events of one sink or all, by position.
SELECT sink, event_id, position, subject, event_type, attempts, last_error, held_behind, parked_at, redrive_requested_at FROM outbox_parked WHERE ?1 IS NULL OR sink = ?1
    ORDER BY position, sink LIMIT ?2
