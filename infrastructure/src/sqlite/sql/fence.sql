-- A projection's generation and checkpoint, which a commit must still find.
SELECT generation, position FROM projection_checkpoints WHERE name = ?1
