-- Locks a projection's checkpoint row and reads its generation.
SELECT generation FROM lablet_rm_checkpoints WHERE name = $1 FOR UPDATE
