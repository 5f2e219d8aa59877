-- A projection's generation.
SELECT generation FROM projection_checkpoints WHERE name = ?1
