-- A projection's checkpoint, under the generation it committed with.
INSERT INTO lablet_rm_checkpoints (name, position, generation, updated_at)
    VALUES ($1, $2, $3, now())
    ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now(),
    last_error = NULL, error_position = NULL, error_at = NULL
