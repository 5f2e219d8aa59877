INSERT INTO projection_checkpoints (name, position, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET
    position = excluded.position,
    updated_at = excluded.updated_at,
    last_error = NULL,
    error_position = NULL,
    error_at = NULL
