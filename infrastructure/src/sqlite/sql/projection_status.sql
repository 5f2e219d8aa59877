SELECT position, updated_at, last_error, error_position, error_at FROM projection_checkpoints WHERE name = ?1
