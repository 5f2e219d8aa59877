-- Records why a projection cannot go on.
INSERT INTO lablet_rm_checkpoints (name, position, updated_at, last_error, error_position, error_at)
    VALUES ($1, 0, now(), $2, $3, now())
    ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error,
    error_position = excluded.error_position, error_at = excluded.error_at
