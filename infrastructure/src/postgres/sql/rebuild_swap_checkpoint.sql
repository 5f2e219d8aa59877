-- A swap: the staged checkpoint, and one more generation (the row is locked and exists).
UPDATE lablet_rm_checkpoints
SET position = $2, generation = generation + 1, updated_at = now(),
    last_error = NULL, error_position = NULL, error_at = NULL
WHERE name = $1
RETURNING generation
