-- Delivered subjects the checkpoint has passed are covered by it.
DELETE FROM lablet_outbox_delivered
WHERE sink = $1 AND position <= (SELECT position FROM lablet_outbox_checkpoints WHERE sink = $1)
