-- A projection's generation.
SELECT generation FROM lablet_rm_checkpoints WHERE name = $1
