-- A projection's checkpoint.
SELECT position FROM lablet_rm_checkpoints WHERE name = $1
