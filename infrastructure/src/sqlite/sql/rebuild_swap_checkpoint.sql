-- A swap: the rebuilt checkpoint, and one more generation.
INSERT INTO main.projection_checkpoints (name, position, updated_at, generation) VALUES (?1, ?2, ?3, 1)
    ON CONFLICT (name) DO UPDATE SET
    position = excluded.position, updated_at = excluded.updated_at, generation = generation + 1,
    last_error = NULL, error_position = NULL, error_at = NULL
