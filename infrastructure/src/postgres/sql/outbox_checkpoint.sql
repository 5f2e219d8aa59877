-- A sink's checkpoint.
SELECT position FROM lablet_outbox_checkpoints WHERE sink = $1
