-- A sink's checkpoint.
SELECT position FROM outbox_checkpoints WHERE sink = ?1
