-- Delivered subjects the checkpoint has passed are covered by it.
DELETE FROM outbox_delivered
WHERE sink = ?1 AND position <= (SELECT position FROM outbox_checkpoints WHERE sink = ?1)
