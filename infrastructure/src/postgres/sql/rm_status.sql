-- A projection's checkpoint and error.
SELECT position, last_error, error_position, error_at FROM lablet_rm_checkpoints WHERE name = $1
