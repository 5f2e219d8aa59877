-- Every parked event of each subject with a redrive request, by position.
SELECT sink, event_id, position, subject, event_type, attempts, last_error, held_behind, parked_at, redrive_requested_at FROM outbox_parked
    WHERE sink = ?1 AND subject IN (
    SELECT subject FROM outbox_parked WHERE sink = ?1 AND redrive_requested_at IS NOT NULL)
    ORDER BY position
