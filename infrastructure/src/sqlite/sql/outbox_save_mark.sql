-- A relay's mark: the checkpoint and read position only move forward.
INSERT INTO outbox_checkpoints (sink, position, read_position, outstanding, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (sink) DO UPDATE SET
    position = max(position, excluded.position),
    read_position = max(read_position, excluded.read_position),
    outstanding = excluded.outstanding,
    updated_at = excluded.updated_at
