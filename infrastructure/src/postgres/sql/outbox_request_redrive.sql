-- Asks the relays to redrive one parked event, or every one.
UPDATE lablet_outbox_parked SET redrive_requested_at = now() WHERE $1::uuid IS NULL OR event_id = $1
