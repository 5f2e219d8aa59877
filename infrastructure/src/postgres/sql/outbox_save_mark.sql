-- A relay's mark: the checkpoint and read position only move forward.
INSERT INTO lablet_outbox_checkpoints (sink, position, read_position, outstanding, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (sink) DO UPDATE SET
    position = greatest(lablet_outbox_checkpoints.position, excluded.position),
    read_position = greatest(lablet_outbox_checkpoints.read_position, excluded.read_position),
    outstanding = excluded.outstanding,
    updated_at = now()
