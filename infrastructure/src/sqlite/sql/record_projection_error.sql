INSERT INTO projection_checkpoints (name, position, updated_at, last_error, error_position, error_at)
VALUES (?1, 0, ?4, ?2, ?3, ?4)
ON CONFLICT (name) DO UPDATE SET
    last_error = excluded.last_error,
    error_position = excluded.error_position,
    error_at = excluded.error_at
