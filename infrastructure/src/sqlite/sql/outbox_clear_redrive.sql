-- Clears the redrive requests a relay took.
UPDATE outbox_parked SET redrive_requested_at = NULL
    WHERE sink = ?1 AND redrive_requested_at IS NOT NULL
