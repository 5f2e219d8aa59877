-- Parks an event, or adds the attempts of a failed redrive to it.
INSERT INTO outbox_parked (sink, event_id, position, subject, event_type, attempts, last_error,
    held_behind, parked_at, redrive_requested_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)
    ON CONFLICT (sink, event_id) DO UPDATE SET
    attempts = outbox_parked.attempts + excluded.attempts,
    last_error = excluded.last_error,
    held_behind = excluded.held_behind,
    parked_at = excluded.parked_at
