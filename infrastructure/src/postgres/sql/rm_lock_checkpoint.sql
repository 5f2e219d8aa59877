-- Locks a projection's checkpoint row and reads its generation and position (the row exists:
-- rm_ensure_checkpoint made it in the same transaction).
SELECT generation, position FROM lablet_rm_checkpoints WHERE name = $1 FOR UPDATE
