-- Asks the relays to redrive one parked event, or every one.
UPDATE outbox_parked SET redrive_requested_at = ?1 WHERE ?2 IS NULL OR event_id = ?2
