-- Forgets a parked event once it is delivered.
DELETE FROM lablet_outbox_parked WHERE sink = $1 AND event_id = $2
